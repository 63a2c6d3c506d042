#!/bin/bash
# Builds the libFuzzer targets (tests/fuzz, clang, ASan+UBSan) in build-fuzz
# and fuzzes each for SECONDS (default 60), one process each, one after the
# other.  Usage: tools/fuzz.sh [SECONDS] [TARGET...]   (targets: xmlrpc
# jsonrpc channel qmp; default all).  Each starts from the seed corpus in
# tests/fuzz/corpus/<target> plus what earlier runs found
# (build-fuzz/corpus/<target>; the tree's seeds are never written).  Prints
# per target the executions, corpus size and crashes; an input that
# crashed is kept under build-fuzz/crashes/<target>/ and the script exits 1.
# Reproduce one with: build-fuzz/tests/fuzz/fuzz-<target> <file>.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(xmlrpc jsonrpc channel qmp)

if [ ! -f build-fuzz/build.ninja ]; then
	CC=clang meson setup build-fuzz -Dfuzz=true >build-fuzz.setup.log 2>&1 ||
		{ cat build-fuzz.setup.log; exit 1; }
	mv build-fuzz.setup.log build-fuzz/
fi
ninja -C build-fuzz "${targets[@]/#/tests/fuzz/fuzz-}" >/dev/null

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export G_SLICE=always-malloc G_DEBUG=gc-friendly

declare -A dict=([xmlrpc]=xmlrpc.dict [jsonrpc]=json.dict
		 [channel]=json.dict [qmp]=json.dict)
# A channel reads 16 KiB at a time: longer inputs cross a read boundary.
declare -A maxlen=([xmlrpc]=8192 [jsonrpc]=8192 [channel]=40000 [qmp]=8192)

failed=0
report=()
for t in "${targets[@]}"; do
	work=build-fuzz/corpus/$t crashes=build-fuzz/crashes/$t
	log=build-fuzz/fuzz-$t.log
	mkdir -p "$work" "$crashes"
	# This run's crashes only: an input worth keeping goes into
	# tests/fuzz/corpus/<target>/ with the fix.
	find "$crashes" -type f -delete
	rc=0
	build-fuzz/tests/fuzz/fuzz-"$t" "$work" tests/fuzz/corpus/"$t" \
		-dict=tests/fuzz/"${dict[$t]}" -max_len="${maxlen[$t]}" \
		-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$crashes/" -print_final_stats=1 \
		>"$log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	corpus=$(find "$work" -type f | wc -l)
	ncrash=$(find "$crashes" -type f | wc -l)
	if [ "$rc" -ne 0 ]; then
		failed=1
		echo "== fuzz-$t failed (exit $rc); the end of $log:"
		grep -E "ERROR|SUMMARY|fuzz check|runtime error|Test unit written" "$log" | head -20
	fi
	report+=("$(printf '%-8s %6ss %12s %8s %8s' "$t" "$secs" \
		"${execs:-?}" "$corpus" "$ncrash")")
done

printf '%-8s %7s %12s %8s %8s\n' target time executions corpus crashes
printf '%s\n' "${report[@]}"
if [ "$failed" -ne 0 ]; then
	echo "fuzz: a target crashed; inputs are in build-fuzz/crashes/"
	exit 1
fi
