#!/bin/bash
# Installs, idempotently, the Debian 12 packages tern needs to build, test and
# run: the C toolchain and libraries named in DEVELOPERS.md (and clang with
# libFuzzer's runtime for tests/fuzz), QEMU, the pieces the test guest is
# built from (and genisoimage, which makes the CD images its tests insert),
# and pytest.  Safe to run again: apt-get only
# acts when a package is missing.
set -euo pipefail

PKGS=(
	build-essential pkg-config meson ninja-build
	libglib2.0-dev libsoup-3.0-dev libjson-glib-dev libxml2-dev
	libsqlite3-dev sqlite3 libgnutls28-dev gnutls-bin libsodium-dev glib-networking
	libnl-3-dev libnl-route-3-dev
	qemu-system-x86 qemu-utils busybox-static cpio e2fsprogs genisoimage
	python3 python3-pytest iproute2 procps
	clang libclang-rt-14-dev
)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# QEMU runs as this unprivileged system user (ternd's [qemu] user, see
# docs/configuration.md), as libvirt runs it as libvirt-qemu.
if ! getent passwd tern-qemu >/dev/null; then
	useradd --system --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin tern-qemu
fi
