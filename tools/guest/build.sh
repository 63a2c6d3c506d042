#!/bin/bash
# Builds tern's test guest: a kernel and an initramfs that boot under QEMU in
# a couple of seconds and run guest/memcheck (see guest/README.md).
#
# The kernel is Debian's cloud kernel, taken from its .deb without installing
# it (its serial console, devtmpfs and gzip initramfs support are built in, so
# no modules are needed).  The initramfs holds busybox-static with its applet
# links, guest/init as /init and guest/memcheck.c compiled statically.
#
# The result is cached in ${TERN_GUEST_DIR:-/var/cache/tern/guest}: a stamp
# holds a hash of every input (this script, guest/init, guest/memcheck.c, the
# kernel .deb's name, the busybox binary), so a rerun with nothing changed does
# nothing.  The kernel .deb is cached there too; delete debs/ to pick up a
# newer kernel.  Concurrent runs are serialised with flock.
#
# Prints, on stdout and last, the paths as shell assignments:
#   TERN_GUEST_KERNEL=<dir>/vmlinuz
#   TERN_GUEST_INITRD=<dir>/initrd.img
# Everything else goes to stderr.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${TERN_GUEST_DIR:-/var/cache/tern/guest}
KERNEL_META=linux-image-cloud-amd64

log() { echo "build.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

print_paths() {
	echo "TERN_GUEST_KERNEL=$OUT/vmlinuz"
	echo "TERN_GUEST_INITRD=$OUT/initrd.img"
}

# Installs what building needs, if missing and if we may.
ensure_tools() {
	local missing=()

	[ -x /bin/busybox ] || missing+=(busybox-static)
	command -v cpio >/dev/null || missing+=(cpio)
	command -v gcc >/dev/null || missing+=(build-essential)
	[ "${#missing[@]}" -eq 0 ] && return
	[ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}; install them or run as root"
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || {
		apt-get update -qq >&2
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
	}
}

# Prints the concrete kernel package the cloud metapackage depends on.
kernel_package() {
	apt-cache depends "$KERNEL_META" 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[^ ]*-cloud-amd64\)$/\1/p' | head -n 1
}

# Prints the path of the cached kernel .deb, downloading it the first time.
kernel_deb() {
	local deb pkg

	deb=$(find "$OUT/debs" -maxdepth 1 -name 'linux-image-*-cloud-amd64_*.deb' \
		2>/dev/null | sort -V | tail -n 1 || true)
	if [ -n "$deb" ]; then
		echo "$deb"
		return
	fi
	pkg=$(kernel_package)
	if [ -z "$pkg" ]; then
		log "refreshing the apt lists to find $KERNEL_META"
		apt-get update -qq >&2
		pkg=$(kernel_package)
	fi
	[ -n "$pkg" ] || die "cannot resolve $KERNEL_META to a kernel package"
	log "downloading $pkg"
	mkdir -p "$OUT/debs"
	# As root, apt warns that the download runs unsandboxed (_apt cannot
	# write here); that is harmless.
	(cd "$OUT/debs" && apt-get download -q "$pkg" >&2)
	deb=$(find "$OUT/debs" -maxdepth 1 -name "${pkg}_*.deb" | tail -n 1)
	[ -n "$deb" ] || die "apt-get download $pkg left no .deb in $OUT/debs"
	echo "$deb"
}

inputs_hash() {
	local deb=$1

	{
		sha256sum "$SRC/tools/guest/build.sh" "$SRC/guest/init" \
			"$SRC/guest/memcheck.c" /bin/busybox | cut -d' ' -f1
		basename "$deb"
	} | sha256sum | cut -d' ' -f1
}

build_initrd() {
	local work=$1 root=$1/root applet

	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,root,etc}
	cp /bin/busybox "$root/bin/busybox"
	for applet in $(/bin/busybox --list-full); do
		[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
	done
	install -m 0755 "$SRC/guest/init" "$root/init"
	gcc -std=c11 -static -O2 -Wall -Wextra -Werror -s \
		-o "$root/bin/memcheck" "$SRC/guest/memcheck.c"
	# The kernel opens /dev/console for init's fds before devtmpfs is up.
	if [ "$(id -u)" -eq 0 ]; then
		mknod -m 0600 "$root/dev/console" c 5 1
	else
		log "not root: no /dev/console node (init reopens it later)"
	fi
	(cd "$root" && find . -print0 | LC_ALL=C sort -z |
		cpio --null -o -H newc --owner=0:0 --quiet) | gzip -9n >"$work/initrd.img"
}

build() {
	local deb=$1 hash=$2 work

	work=$(mktemp -d "$OUT/.build.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	log "building into $OUT"
	dpkg-deb -x "$deb" "$work/kernel"
	cp "$work"/kernel/boot/vmlinuz-* "$work/vmlinuz"
	build_initrd "$work"
	mv -f "$work/vmlinuz" "$OUT/vmlinuz"
	mv -f "$work/initrd.img" "$OUT/initrd.img"
	echo "$hash" >"$OUT/stamp"
	rm -rf "$work"
	trap - EXIT
}

main() {
	local deb hash

	mkdir -p "$OUT"
	exec 9>"$OUT/.lock"
	flock 9
	ensure_tools
	deb=$(kernel_deb)
	hash=$(inputs_hash "$deb")
	if [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.img" ] &&
	    [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$hash" ]; then
		log "up to date ($(basename "$deb"))"
	else
		build "$deb" "$hash"
	fi
	print_paths
}

main "$@"
