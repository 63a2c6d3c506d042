#!/bin/bash
# tern API benchmark, side by side with libvirtd 9.0 (issue 2, point 10).
#
#   bash bench/api/run.sh          # as root; about 4 minutes (5 passes of ~15 s tern + ~30 s libvirt)
#
# Builds the tree (ninja -C build) and the measuring client (client.c, plain
# cc into a temp dir), then runs PASSES passes.  Each pass starts a fresh
# ternd on an empty state dir (bench.py pass) and, with LIBVIRT=1, is
# followed by one pass of ../shared/peer/libvirt/api.sh (PASSES=1, its own
# defaults otherwise), so that both daemons are measured interleaved, in the
# same run, on this noisy VM.  libvirt's output goes to this run's raw
# folder, never into the peer folder.  The table also quotes libvirt's
# baseline from api-raw-2026-11-22/ (api-results-2026-11-22.md).
#
# Env knobs: PASSES (5)  N (1000)  LIBVIRT (1: rerun api.sh interleaved;
#            0: quote the 2026-11-22 file only)  GETREC_CALLS (2000)
#            GETALL_RUNS (20)  VMLIST_RUNS (10)  EVENT_RUNS (200)
#            RESULTS (bench/api/RESULTS.md)  RAW (bench/api/raw-<date>)
#            WORK (/tmp/tern_bench_api; scratch, deleted unless KEEP_RUN=1)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3
PEER=${PEER:-$(cd "$TOP/.." && pwd)/shared/peer/libvirt}
PASSES=${PASSES:-5}
N=${N:-1000}
LIBVIRT=${LIBVIRT:-1}
DATE=$(date +%F)
RESULTS=${RESULTS:-$HERE/RESULTS.md}
RAW=${RAW:-$HERE/raw-$DATE}
WORK=${WORK:-/tmp/tern_bench_api}
KEEP_RUN=${KEEP_RUN:-0}
BASELINE_DIR=$PEER/api-raw-2026-11-22

log() { echo "[run.sh $(date +%T)] $*" >&2; }
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }

RUN=$WORK/run-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$RUN" "$RAW"
rm -f "$RAW"/tern.p*.json "$RAW"/libvirt.p*.json "$RAW"/libvirt.p*.snap* "$RAW"/*.log "$RAW"/libvirt-results.md
cleanup() { if [ "$KEEP_RUN" = 0 ]; then rm -rf "$RUN"; fi; }
trap cleanup EXIT

log "building"
ninja -C "$TOP/build" >"$RUN/ninja.log" 2>&1 || { cat "$RUN/ninja.log" >&2; exit 1; }
CLIENT=$RUN/client
cc -O2 -Wall -o "$CLIENT" "$HERE/client.c"
TERND=$TOP/build/src/daemon/ternd
TERN=$TOP/build/src/cli/tern

if [ "$LIBVIRT" = 1 ] && [ ! -f "$PEER/api.sh" ]; then
    log "no $PEER/api.sh: quoting the baseline only"; LIBVIRT=0
fi

TERN_IN=() LV_IN=()
for P in $(seq 1 "$PASSES"); do
    log "pass $P/$PASSES: tern (fresh ternd)"
    "$PY" "$HERE/bench.py" pass --ternd "$TERND" --tern "$TERN" \
        --client "$CLIENT" --workdir "$RUN/p$P" --out "$RAW/tern.p$P.json" \
        --n "$N" --getrec-calls "${GETREC_CALLS:-2000}" \
        --getall-runs "${GETALL_RUNS:-20}" --vmlist-runs "${VMLIST_RUNS:-10}" \
        --event-runs "${EVENT_RUNS:-200}" 2>&1 | tee -a "$RAW/tern.log" >&2
    [ "${PIPESTATUS[0]}" = 0 ] || exit 1
    TERN_IN+=("$RAW/tern.p$P.json")
    if [ "$LIBVIRT" = 1 ]; then
        log "pass $P/$PASSES: libvirtd (api.sh, one pass)"
        "$PY" "$HERE/bench.py" snap --out "$RAW/libvirt.p$P.snap0"
        PASSES=1 N=$N RAW="$RUN/lv$P" RESULTS="$RUN/lv$P.md" KEEP_RUN=0 \
            bash "$PEER/api.sh" >"$RAW/libvirt.p$P.log" 2>&1 ||
            { tail -20 "$RAW/libvirt.p$P.log" >&2; exit 1; }
        "$PY" "$HERE/bench.py" snap --out "$RAW/libvirt.p$P.snap1"
        cp "$RUN/lv$P/api.p1.json" "$RAW/libvirt.p$P.json"
        LV_IN+=("$RAW/libvirt.p$P.json")
    fi
done

LV_MD=
if [ "$LIBVIRT" = 1 ]; then
    # libvirt's own report over this run's passes
    "$PY" "$PEER/api.py" report --out "$RAW/libvirt-results.md" \
        --header "libvirtd 9.0, passes interleaved with tern's in bench/api/run.sh, $(date -u +%FT%TZ)." \
        --raw-name "libvirt.p*.json" "${LV_IN[@]}"
    LV_MD=$(basename "$RAW")/libvirt-results.md
fi

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
HDR="Run $(date -u +%FT%TZ) on $(hostname): $(uname -srmv), $(nproc) CPUs ($CPU), \
$(awk '/MemTotal/{printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo); state directory on \
$(df -T "$WORK" | awk 'NR==2{print $2}') ($(df "$WORK" | awk 'NR==2{print $1}')), the same \
filesystem as libvirt's config. tern built from this tree (\`ninja -C build\`, \
$(grep -m1 "buildtype" "$TOP/build/meson-info/intro-buildoptions.json" >/dev/null 2>&1 &&
  "$PY" -c "import json,sys;print([o['value'] for o in json.load(open(sys.argv[1])) if o['name']=='buildtype'][0])" \
  "$TOP/build/meson-info/intro-buildoptions.json" || echo '?') build); \
ternd on its local Unix socket, no TCP listener, log level warning. $N VMs \
(256 MiB, 1 vCPU, PV_kernel), never started. $PASSES passes$([ "$LIBVIRT" = 1 ] &&
  echo ", each followed by one pass of libvirt's api.sh (libvirt \
$(dpkg-query -W -f='${Version}' libvirt-daemon 2>/dev/null)), so both were measured \
interleaved in this run" || echo "; libvirt figures quoted from \
api-results-2026-11-22.md (measured on this machine with api.sh)"). Raw samples: \
$(basename "$RAW")/. Rerun: \`bash bench/api/run.sh\` as root (PASSES=, LIBVIRT=0 to skip \
libvirt)."

BASE=()
[ -d "$BASELINE_DIR" ] && BASE=("$BASELINE_DIR"/api.p*.json)
"$PY" "$HERE/bench.py" report --out "$RESULTS" --header "$HDR" \
    --tern "${TERN_IN[@]}" --libvirt "${LV_IN[@]}" --baseline "${BASE[@]}" \
    --libvirt-md "$LV_MD" --libvirt-snaps $(ls "$RAW"/libvirt.p*.snap* 2>/dev/null | sort -V) \
    --extra "${EXTRA:-$HERE/analysis.md}"
log "results: $RESULTS"
cat "$RESULTS"
