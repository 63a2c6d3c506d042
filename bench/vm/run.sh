#!/bin/bash
# VM figures (issue 3, point 10): VM.start to the first memcheck line, ternd
# RSS with ten VMs, QMP round trip; each with a baseline from the same run.
# As root; about a minute.  Writes bench/vm/RESULTS.md.  Env: ROUNDS (5).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
cd "$TOP"
bash tools/setup-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
/usr/bin/python3 "$HERE/vm.py" > "$HERE/RESULTS.md.new"
mv "$HERE/RESULTS.md.new" "$HERE/RESULTS.md"
cat "$HERE/RESULTS.md"
