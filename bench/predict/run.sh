#!/bin/bash
# Predicted against actual migration time over a range of dirty rates
# (issue 5, point 6).  As root; a few minutes.  Writes
# bench/predict/RESULTS.md.  Env: RATES ("0 8 24 48 96", MiB/s rewritten by
# memcheck), MEMORY_MIB (512), MC_MIB (256), ROUNDS (2).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
cd "$TOP"
bash tools/setup-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
/usr/bin/python3 "$HERE/predict.py" > "$HERE/RESULTS.md.new"
mv "$HERE/RESULTS.md.new" "$HERE/RESULTS.md"
cat "$HERE/RESULTS.md"
