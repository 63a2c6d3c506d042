#!/bin/bash
# Sets up a fresh Debian 12 machine (packages, build, test guest) and runs
# every test: the GTest unit tests through meson, then the pytest system
# tests that start real ternd daemons and real QEMU guests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup-deps.sh
[ -d build ] || meson setup build
ninja -C build
bash tools/guest/build.sh >/dev/null

meson test -C build --print-errorlogs
/usr/bin/python3 -m pytest -p no:cacheprovider -q tests/system "$@"
