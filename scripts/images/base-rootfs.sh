#!/usr/bin/env bash
# Builds the Debian root filesystem that every dlgrade image starts from, as a tarball:
#   bash scripts/images/base-rootfs.sh OUT.tar
# debootstrap (variant minbase) of $DLGRADE_DEBIAN_SUITE (default bookworm, whose
# python3 is 3.11) with python3, python3-venv and ca-certificates, then every update
# the APT sources allow. Needs root and debootstrap (installed with apt-get when
# missing). The mirror is $DLGRADE_DEBIAN_MIRROR when set, else debootstrap's default.
# Updates: when this host runs the same Debian suite, its own APT sources (mirrors,
# security archive) are used inside the rootfs to apply them; elsewhere set
# DLGRADE_APT_SOURCES to a deb822 .sources file for the suite. The tarball has no APT
# lists or package caches. scripts/build_images.py imports it with `docker import`.
set -euo pipefail
out=${1:?usage: base-rootfs.sh OUT.tar}
suite=${DLGRADE_DEBIAN_SUITE:-bookworm}
packages=${DLGRADE_BASE_PACKAGES:-python3,python3-venv,ca-certificates}
[ "$(id -u)" = 0 ] || { echo "base-rootfs: debootstrap needs root" >&2; exit 2; }
if ! command -v debootstrap >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
root=$(mktemp -d /tmp/dlgrade-rootfs.XXXXXX)
chmod 755 "$root"  # apt in the chroot downloads as _apt
cleanup() {
  for m in proc sys dev/pts; do mountpoint -q "$root/$m" && umount -l "$root/$m"; done
  rm -rf "$root"
}
trap cleanup EXIT
# shellcheck disable=SC2086  # the mirror is one optional word
debootstrap --variant=minbase --include="$packages" "$suite" "$root" ${DLGRADE_DEBIAN_MIRROR:-} \
  >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
rm -f "$root.log"

sources=${DLGRADE_APT_SOURCES:-}
if [ -z "$sources" ] && [ -f /etc/os-release ] && grep -qx "VERSION_CODENAME=$suite" /etc/os-release; then
  sources=$(ls /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1 || true)
fi
if [ -n "$sources" ]; then
  rm -f "$root/etc/apt/sources.list"
  cp "$sources" "$root/etc/apt/sources.list.d/debian.sources"
  mount -t proc proc "$root/proc"
  chroot "$root" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -y -qq upgrade' \
    >/dev/null
  umount "$root/proc"
else
  echo "base-rootfs: no APT sources for $suite updates on this host (DLGRADE_APT_SOURCES): the" \
       "rootfs has the suite's release packages only" >&2
fi
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/* "$root"/tmp/* \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
tar --numeric-owner -C "$root" -cf "$out.part" .
mv "$out.part" "$out"
