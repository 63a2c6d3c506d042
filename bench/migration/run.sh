#!/bin/bash
# tern live-migration benchmark, one host, one run (issue 4 point 11):
#   baseline               plain QEMU -> QEMU, no tern (tern's QEMU command line)
#   tern-direct-plain      migrate_send mode=direct    secure=false
#   tern-direct-secure     migrate_send mode=direct    secure=true
#   tern-tunnelled-secure  migrate_send mode=tunnelled secure=true (the default)
#   + libvirt 9.0 native and tunnelled rows from ../shared/peer/libvirt/run.sh
#     (reduced passes), unless LIBVIRT=0 or that directory is missing.
# Writes bench/migration/RESULTS.md.  As root; about 6-9 minutes.  See the
# "How to rerun" section of RESULTS.md for the knobs.
#
# Env: ROUNDS (5) WARMUP (1) MEMORY_MIB (1024) MC_MIB (512) MC_RATE (64)
#      DOWNTIME_MS (300) LIBVIRT (1) LV_PASSES (1) LV_ROUNDS (4)
#      WORK (/var/tmp/tern-bench-migration) QUIET_WAIT (300 s to wait for
#      other QEMUs on the machine to finish before measuring)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3
B="$HERE/bench.py"

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }

ROUNDS=${ROUNDS:-5}
WARMUP=${WARMUP:-1}
MEMORY_MIB=${MEMORY_MIB:-1024}
MC_MIB=${MC_MIB:-512}
MC_RATE=${MC_RATE:-64}
DOWNTIME_MS=${DOWNTIME_MS:-300}
LIBVIRT=${LIBVIRT:-1}
LV_PASSES=${LV_PASSES:-1}
LV_ROUNDS=${LV_ROUNDS:-4}
LV_DIR=${LV_DIR:-$ROOT/../shared/peer/libvirt}
WORK=${WORK:-/var/tmp/tern-bench-migration}
QUIET_WAIT=${QUIET_WAIT:-300}
RESULTS=${RESULTS:-$HERE/RESULTS.md}

log() { printf '[run.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
T_START=$(date +%s)

rm -rf "$WORK"
mkdir -p "$WORK/raw"
RAW=$WORK/raw

# ------------------------------------------------------------ build
cd "$ROOT"
bash tools/setup-deps.sh >/dev/null
[ -d build ] || meson setup build >/dev/null
for try in 1 2 3 4 5 6; do   # others may be mid-edit: wait and retry
	if ninja -C build >"$RAW/ninja.log" 2>&1; then break; fi
	[ $try = 6 ] && { cat "$RAW/ninja.log" >&2; exit 1; }
	log "build failed (someone mid-edit?), retrying in 20 s"; sleep 20
done
eval "$(bash tools/guest/build.sh 2>/dev/null | grep '^TERN_GUEST_')"
TERND=$ROOT/build/src/daemon/ternd

# ------------------------------------------------------------ a quiet machine
# Two cores: any other QEMU running now (someone's test suite) would be
# measured too.  Wait for them to finish; record what was running.
others() { pgrep -c -x qemu-system-x86 2>/dev/null || true; }
waited=0
while [ "$(others)" != 0 ] && [ $waited -lt "$QUIET_WAIT" ]; do
	[ $((waited % 30)) = 0 ] && log "waiting for $(others) other QEMU process(es) to finish (load $(cut -d' ' -f1-3 /proc/loadavg))"
	sleep 5; waited=$((waited + 5))
done
OTHERS_AT_START=$(others)
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
[ "$OTHERS_AT_START" = 0 ] || log "WARNING: $OTHERS_AT_START other QEMU process(es) running; figures will be noisy"

COMMON=(--kernel "$TERN_GUEST_KERNEL" --initrd "$TERN_GUEST_INITRD"
	--memory-mib "$MEMORY_MIB" --mc-mib "$MC_MIB" --mc-rate "$MC_RATE"
	--downtime-ms "$DOWNTIME_MS" --rounds "$ROUNDS" --warmup "$WARMUP"
	--boot-timeout 300)

log "baseline: plain QEMU -> QEMU, $WARMUP+$ROUNDS rounds"
"$PY" "$B" baseline --work "$WORK/baseline" --out "$RAW/baseline.json" \
	"${COMMON[@]}" 2>>"$RAW/bench.log"
log "baseline + QEMU TLS-PSK (reference: the encryption alone, no tern)"
"$PY" "$B" baseline --tls --work "$WORK/baseline-tls" --out "$RAW/baseline-tls.json" \
	"${COMMON[@]}" 2>>"$RAW/bench.log"
# One block per tern mode, each with a fresh pair of ternd hosts and a freshly
# booted guest.  (Interleaving the modes on one guest, which would spread
# noise better, loses the VM now and then: see RESULTS.md, "Bugs found".)
TERN_OUT=()
for MODE in tern-direct-plain tern-direct-secure tern-tunnelled-secure; do
	log "$MODE: $WARMUP+$ROUNDS rounds"
	"$PY" "$B" tern --modes "$MODE" --work "$WORK/$MODE" --out "$RAW/$MODE.json" \
		--ternd "$TERND" "${COMMON[@]}" 2>>"$RAW/bench.log"
	grep -q '"failed": null' "$RAW/$MODE.json" ||
		log "$MODE: run aborted (see $RAW/bench.log); its rounds so far are reported"
	cp "$WORK/$MODE/a/ternd.log" "$RAW/$MODE.ternd-a.log"
	cp "$WORK/$MODE/b/ternd.log" "$RAW/$MODE.ternd-b.log"
	TERN_OUT+=("$RAW/$MODE.json")
done
OTHERS_AFTER_TERN=$(others)

LV_RESULTS=
if [ "$LIBVIRT" = 1 ] && [ -f "$LV_DIR/run.sh" ]; then
	log "libvirt 9.0 reference: $LV_DIR/run.sh PASSES=$LV_PASSES ROUNDS=$LV_ROUNDS"
	LV_RESULTS=$RAW/libvirt-results.md
	if ! PASSES=$LV_PASSES ROUNDS=$LV_ROUNDS WARMUP=1 KEEP_RUN=0 \
		WORK=$WORK/libvirt RESULTS=$LV_RESULTS RAW=$RAW/libvirt-raw \
		GUEST_KERNEL=$TERN_GUEST_KERNEL \
		bash "$LV_DIR/run.sh" >"$RAW/libvirt-run.log" 2>&1; then
		log "libvirt run failed (see $RAW/libvirt-run.log); its rows are left out"
		LV_RESULTS=
	fi
fi

# ------------------------------------------------------------ report
T_END=$(date +%s)
cat >"$RAW/meta.json" <<EOF
{"date": "$(date -u +%FT%TZ)", "raw": "$RAW", "work": "$WORK", "rounds": $ROUNDS,
 "warmup": $WARMUP, "memory_mib": $MEMORY_MIB, "mc_mib": $MC_MIB,
 "mc_rate": $MC_RATE, "downtime_ms": $DOWNTIME_MS,
 "uname": "$(uname -a)", "nproc": "$(nproc)",
 "cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')",
 "qemu": "$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null)",
 "gnutls": "$(dpkg-query -W -f='${Version}' libgnutls30 2>/dev/null)",
 "kernel_guest": "$(basename "$(readlink -f "$TERN_GUEST_KERNEL")")",
 "others_at_start": $OTHERS_AT_START, "others_after_tern": $OTHERS_AFTER_TERN, "load_at_start": "$LOAD_AT_START",
 "load_at_end": "$(cut -d' ' -f1-3 /proc/loadavg)",
 "libvirt": "$LV_RESULTS", "libvirt_passes": $LV_PASSES,
 "libvirt_rounds": $LV_ROUNDS, "duration_s": $((T_END - T_START))}
EOF
"$PY" "$B" report --baseline "$RAW/baseline.json" --baseline-tls "$RAW/baseline-tls.json" --tern "${TERN_OUT[@]}" \
	--meta "$RAW/meta.json" ${LV_RESULTS:+--libvirt "$LV_RESULTS"} \
	--out "$RESULTS"
rm -rf "$HERE/raw"; mkdir -p "$HERE/raw"
cp "$RAW"/*.json "$HERE/raw/"
[ -z "$LV_RESULTS" ] || cp "$LV_RESULTS" "$HERE/raw/"
log "done in $((T_END - T_START)) s: $RESULTS"
sed -n '/^## Summary/,/^Definitions/p' "$RESULTS"
