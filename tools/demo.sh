#!/bin/bash
# tern's main job on one machine: two ternd hosts, a live VM moved from one
# to the other and back while a guest program checks its own memory.
#
# Sets up what it needs (packages, build, test guest), starts two ternd
# daemons on loopback (HTTPS, self-signed certificates), boots the test
# guest on host A with memcheck rewriting memory, migrates it live to B
# (managed: the client asks B for a token and hands it to A), shows its
# console going on at B with zero errors and the migration's figures, then
# migrates it back peer-to-peer (A never needed B's credentials the first
# time; this time A logs in to B itself).  Everything it started is stopped
# at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
eval "$(bash tools/guest/build.sh 2>/dev/null | grep '^TERN_GUEST_')"

TERN=$PWD/build/src/cli/tern
TERND=$PWD/build/src/daemon/ternd
DEMO=${TERN_DEMO_DIR:-/var/tmp/tern-demo}
PORT_A=${TERN_DEMO_PORT_A:-18441}
PORT_B=${TERN_DEMO_PORT_B:-18442}
rm -rf "$DEMO"
mkdir -p "$DEMO"
PW="$DEMO/password"
head -c 18 /dev/urandom | base64 > "$PW"
chmod 600 "$PW"

pids=()
cleanup() {
	for d in a b; do
		for p in "$DEMO"/$d/run/vms/*/qemu.pid; do
			[ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null || true
		done
	done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

start_host() { # name port
	local d="$DEMO/$1"
	mkdir -p "$d"
	"$TERND" --state-dir "$d/state" user add demo --role pool-admin \
		--password-file "$PW"
	"$TERND" -F --state-dir "$d/state" --run-dir "$d/run" \
		--listen "127.0.0.1:$2" --accel tcg 2>"$d/ternd.log" &
	pids+=($!)
	for _ in $(seq 100); do
		[ -S "$d/run/ternd.sock" ] && return 0
		sleep 0.1
	done
	echo "ternd $1 did not start; see $d/ternd.log" >&2
	exit 1
}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Starting host A (127.0.0.1:$PORT_A) and host B (127.0.0.1:$PORT_B)"
start_host a "$PORT_A"
start_host b "$PORT_B"
fingerprint() { # the SHA-256 of a host's self-signed certificate
	certtool --fingerprint --hash sha256 \
		--infile "$DEMO/$1/state/tls/cert.pem" 2>/dev/null
}
FP_A=$(fingerprint a)
FP_B=$(fingerprint b)
A=(-c "unix://$DEMO/a/run/ternd.sock")
B=(-c "unix://$DEMO/b/run/ternd.sock")
"$TERN" "${A[@]}" host-list
"$TERN" "${B[@]}" host-list

say "Uploading the guest's kernel and initrd into each host's boot SR"
upload() { # name file host-args...
	local name=$1 file=$2 mib vdi
	shift 2
	mib=$(( ($(stat -c %s "$file") >> 20) + 1 ))
	vdi=$("$TERN" "$@" vdi-create --sr boot --name "$name" --size "$mib")
	"$TERN" "$@" vdi-import "$vdi" "$file"
}
upload vmlinuz "$TERN_GUEST_KERNEL" "${A[@]}"
upload initrd.img "$TERN_GUEST_INITRD" "${A[@]}"
upload vmlinuz "$TERN_GUEST_KERNEL" "${B[@]}"
upload initrd.img "$TERN_GUEST_INITRD" "${B[@]}"
"$TERN" "${A[@]}" sr-list

say "Creating and booting the test guest on A (memcheck: 128 MiB, rewriting 32 MiB/s)"
"$TERN" "${A[@]}" vm-create --name demo --memory 512 --vcpus 1 \
	--kernel vmlinuz --initrd initrd.img \
	--args "console=ttyS0 quiet memcheck.mib=128 memcheck.rate=32 memcheck.interval_ms=500"
"$TERN" "${A[@]}" vm-start demo
for _ in $(seq 120); do
	"$TERN" "${A[@]}" vm-console demo | grep -q 'MEMCHECK seq=3' && break
	sleep 0.25
done
"$TERN" "${A[@]}" vm-console demo | grep MEMCHECK | tail -3
"$TERN" "${A[@]}" vm-list

say "Live migration A -> B (managed, tunnelled, encrypted)"
"$TERN" "${A[@]}" vm-migrate demo --to "https://127.0.0.1:$PORT_B" \
	--user demo --password-file "$PW" --to-fingerprint "$FP_B"

say "The guest goes on at B"
sleep 2
"$TERN" "${B[@]}" vm-console demo | grep MEMCHECK | tail -4
echo "A: $("$TERN" "${A[@]}" vm-list --json | grep -c '"uuid"' || true) VM(s); B:"
"$TERN" "${B[@]}" vm-list

say "Live migration B -> A (peer-to-peer: B logs in to A itself)"
"$TERN" "${B[@]}" vm-migrate demo --to "https://127.0.0.1:$PORT_A" \
	--user demo --password-file "$PW" --p2p --to-fingerprint "$FP_A"

say "The guest goes on at A, memory intact"
sleep 2
log=$("$TERN" "${A[@]}" vm-console demo)
echo "$log" | grep MEMCHECK | tail -4
if echo "$log" | grep -q 'MEMCHECK-ERROR'; then
	echo "memcheck found corrupt pages" >&2
	exit 1
fi
last=$(echo "$log" | grep -o 'errors=[0-9]*' | tail -1)
[ "$last" = "errors=0" ] || { echo "memcheck: $last" >&2; exit 1; }
say "Done: the VM moved A -> B -> A live, memcheck $last"
