#!/bin/bash
# Sets up a fresh Debian 12 machine (packages, build, test guest) and runs
# every test: the GTest unit tests through meson, a few seconds of each
# fuzzer (tools/fuzz.sh), then the pytest system tests that start real
# ternd daemons and real QEMU guests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup-deps.sh
[ -d build ] || meson setup build
ninja -C build
bash tools/guest/build.sh >/dev/null

meson test -C build --print-errorlogs
# A few seconds of each fuzzer (tests/fuzz); a crash fails the run.
bash tools/fuzz.sh 5
/usr/bin/python3 -m pytest -p no:cacheprovider -q tests/system "$@"
