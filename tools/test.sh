#!/bin/bash
# Sets up a fresh Debian 12 machine (packages, build, test guest) and runs
# every test: the GTest unit tests through meson, a few seconds of each
# fuzzer (tools/fuzz.sh), then the pytest system tests that start real
# ternd daemons and real QEMU guests.  Then the same unit and system tests
# again on a second build, build-asan, compiled with AddressSanitizer and
# UndefinedBehaviorSanitizer: any sanitizer report fails the run
# (docs/reliability.md, "Sanitizers").
#
# TERN_TEST_QUICK=1 skips the sanitizer pass (a developer's quick loop).
# Arguments are passed to both pytest runs.
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

if [ "${TERN_TEST_QUICK:-0}" = 1 ]; then
	echo "test.sh: TERN_TEST_QUICK=1, sanitizer pass skipped"
	exit 0
fi
# UBSan stops at its first report (-fno-sanitize-recover), so a report is
# a failed test; frame pointers make the reports' stacks whole.
[ -d build-asan ] || meson setup build-asan \
	-Db_sanitize=address,undefined -Db_lundef=false \
	-Dc_args='-fno-omit-frame-pointer -fno-sanitize-recover=undefined' \
	-Dc_link_args=-fno-sanitize-recover=undefined
ninja -C build-asan
start=$(date +%s)
meson test -C build-asan --print-errorlogs
# Two files run on the normal build only: the quick fault tier, whose
# faults last a fixed time (a 100 s cut, 30 s freezes) that a sanitized
# ternd's slower recovery, judged with the same bounds, does not fit on
# 2 cores; and the guest's own test, which runs QEMU without any tern code.
TERN_BUILD_DIR=build-asan /usr/bin/python3 -m pytest -p no:cacheprovider -q \
	--ignore=tests/system/test_fault_matrix_quick.py \
	--ignore=tests/system/test_guest_memcheck.py tests/system "$@"
echo "test.sh: sanitizer pass took $(( $(date +%s) - start )) s"
