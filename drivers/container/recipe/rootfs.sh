#!/usr/bin/env bash
# Builds a machine host's root file system offline with debootstrap (no registry needed) and
# writes it as OUT/rootfs.tar for `docker import`. Usage: rootfs.sh OUT SUITE MIRROR. Needs root.
set -euo pipefail
out=$1 suite=$2 mirror=$3
here=$(cd "$(dirname "$0")" && pwd)
root=$out/rootfs
rm -rf "$root"; mkdir -p "$root"
pkgs=$(tr -s ' \n' ',' <"$here/packages" | sed 's/,$//')
debootstrap --variant=minbase --include="$pkgs" "$suite" "$root" "$mirror" >"$out/debootstrap.log" 2>&1 \
  || { tail -30 "$out/debootstrap.log" >&2; exit 1; }
sh "$here/configure.sh" "$root"
tar --numeric-owner -C "$root" -cf "$out/rootfs.tar" .
rm -rf "$root"
