#!/bin/bash
# Builds tern's test guest: a kernel and an initramfs that boot under QEMU in
# a couple of seconds and run guest/memcheck (see guest/README.md).
#
# The kernel is Debian's cloud kernel, taken from its .deb without installing
# it (its serial console, devtmpfs, ext4 and gzip initramfs support are built
# in).  The initramfs holds busybox-static with its applet links, guest/init as
# /init, guest/memcheck.c compiled statically, and the few kernel modules the
# tests need (virtio PCI, blk and net; the IDE CD drive; iso9660), with their
# dependencies, in the order init loads them (/lib/modules/load-order), and
# guest/diskcheck.c, static too.  The same tree, in an ext4 filesystem
# converted to qcow2, is rootfs.qcow2: a disk the guest boots from with
# tern.root=/dev/vda (its /init runs as stage 2).
#
# The result is cached in ${TERN_GUEST_DIR:-/var/cache/tern/guest}: a stamp
# holds a hash of every input (this script, guest/init, guest/memcheck.c,
# guest/diskcheck.c, guest/net.sh if there is one, the kernel .deb's name, the
# busybox binary), so a rerun with nothing changed does
# nothing.  The kernel .deb is cached there too; delete debs/ to pick up a
# newer kernel.  Concurrent runs are serialised with flock.
#
# Prints, on stdout and last, the paths as shell assignments:
#   TERN_GUEST_KERNEL=<dir>/vmlinuz
#   TERN_GUEST_INITRD=<dir>/initrd.img
#   TERN_GUEST_ROOTFS=<dir>/rootfs.qcow2
# Everything else goes to stderr.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${TERN_GUEST_DIR:-/var/cache/tern/guest}
KERNEL_META=linux-image-cloud-amd64
# The modules init loads (their dependencies are added, first).  Early, before
# anything else: virtio's PCI transport, disks and NICs.  Late, in the
# background while the checkers start (probing the IDE ports costs ~0.4 s
# under TCG): the PIIX IDE controller and its CD drive (QEMU's ide-cd on the
# pc machine), the CD's filesystem.
MODULES_EARLY=(virtio_pci virtio_blk virtio_net)
MODULES_LATE=(ata_piix sr_mod isofs)

log() { echo "build.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

print_paths() {
	echo "TERN_GUEST_KERNEL=$OUT/vmlinuz"
	echo "TERN_GUEST_INITRD=$OUT/initrd.img"
	echo "TERN_GUEST_ROOTFS=$OUT/rootfs.qcow2"
}

# Installs what building needs, if missing and if we may.
ensure_tools() {
	local missing=()

	[ -x /bin/busybox ] || missing+=(busybox-static)
	command -v cpio >/dev/null || missing+=(cpio)
	command -v gcc >/dev/null || missing+=(build-essential)
	command -v objcopy >/dev/null || missing+=(binutils)
	command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
	command -v qemu-img >/dev/null || missing+=(qemu-utils)
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
			"$SRC/guest/memcheck.c" "$SRC/guest/diskcheck.c" \
			/bin/busybox | cut -d' ' -f1
		basename "$deb"
		echo "${MODULES_EARLY[*]} / ${MODULES_LATE[*]}"
		if [ -f "$SRC/guest/net.sh" ]; then
			sha256sum "$SRC/guest/net.sh" | cut -d' ' -f1
		fi
	} | sha256sum | cut -d' ' -f1
}

# Prints module $2's dependencies (its .modinfo "depends=") from tree $1.
module_depends() {
	local f

	f=$(find "$1" -name "$2.ko" | head -n 1)
	[ -n "$f" ] || die "kernel module $2 not found in the .deb"
	objcopy -O binary --only-section=.modinfo "$f" /dev/stdout |
		tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' ' '
}

# Appends module $2 to ORDER after its dependencies (depth first), once.
module_visit() {
	local dep

	case " ${ORDER[*]} " in *" $2 "*) return ;; esac
	for dep in $(module_depends "$1" "$2"); do
		module_visit "$1" "$dep"
	done
	ORDER+=("$2")
}

# Copies the modules and their dependencies from the unpacked kernel $1 into
# the initramfs root $2, flat in /lib/modules, and writes there the order to
# load them in: load-order (early), then load-order.late.
install_modules() {
	local kernel=$1 root=$2 mod early
	local -a ORDER=()

	for mod in "${MODULES_EARLY[@]}"; do
		module_visit "$kernel/lib/modules" "$mod"
	done
	early=${#ORDER[@]}
	for mod in "${MODULES_LATE[@]}"; do
		module_visit "$kernel/lib/modules" "$mod"
	done
	mkdir -p "$root/lib/modules"
	for mod in "${ORDER[@]}"; do
		cp "$(find "$kernel/lib/modules" -name "$mod.ko" | head -n 1)" \
			"$root/lib/modules/$mod.ko"
	done
	printf '%s\n' "${ORDER[@]:0:$early}" >"$root/lib/modules/load-order"
	printf '%s\n' "${ORDER[@]:$early}" >"$root/lib/modules/load-order.late"
	log "modules: ${ORDER[*]:0:$early}; late: ${ORDER[*]:$early}"
}

build_initrd() {
	local work=$1 root=$1/root applet

	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,root,etc,mnt}
	cp /bin/busybox "$root/bin/busybox"
	for applet in $(/bin/busybox --list-full); do
		[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
	done
	install -m 0755 "$SRC/guest/init" "$root/init"
	# The network's guest side, when there is one: init runs /net.sh.
	if [ -f "$SRC/guest/net.sh" ]; then
		install -m 0755 "$SRC/guest/net.sh" "$root/net.sh"
	fi
	install_modules "$work/kernel" "$root"
	gcc -std=c11 -static -O2 -Wall -Wextra -Werror -s \
		-o "$root/bin/memcheck" "$SRC/guest/memcheck.c"
	gcc -std=c11 -static -O2 -Wall -Wextra -Werror -s \
		-o "$root/bin/diskcheck" "$SRC/guest/diskcheck.c"
	# The kernel opens /dev/console for init's fds before devtmpfs is up.
	if [ "$(id -u)" -eq 0 ]; then
		mknod -m 0600 "$root/dev/console" c 5 1
	else
		log "not root: no /dev/console node (init reopens it later)"
	fi
	(cd "$root" && find . -print0 | LC_ALL=C sort -z |
		cpio --null -o -H newc --owner=0:0 --quiet) | gzip -9n >"$work/initrd.img"
}

# The same tree as an ext4 root filesystem on a qcow2 disk, with room to
# write.  Boot an overlay of it (qemu-img create -b), never the file itself.
build_rootfs() {
	local work=$1

	mkfs.ext4 -q -F -L tern-root -d "$work/root" "$work/rootfs.ext4" 64M >&2
	qemu-img convert -f raw -O qcow2 "$work/rootfs.ext4" "$work/rootfs.qcow2"
	rm -f "$work/rootfs.ext4"
}

build() {
	local deb=$1 hash=$2 work

	work=$(mktemp -d "$OUT/.build.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	log "building into $OUT"
	dpkg-deb -x "$deb" "$work/kernel"
	cp "$work"/kernel/boot/vmlinuz-* "$work/vmlinuz"
	build_initrd "$work"
	build_rootfs "$work"
	mv -f "$work/vmlinuz" "$OUT/vmlinuz"
	mv -f "$work/initrd.img" "$OUT/initrd.img"
	mv -f "$work/rootfs.qcow2" "$OUT/rootfs.qcow2"
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
	    [ -f "$OUT/rootfs.qcow2" ] &&
	    [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$hash" ]; then
		log "up to date ($(basename "$deb"))"
	else
		build "$deb" "$hash"
	fi
	print_paths
}

main "$@"
