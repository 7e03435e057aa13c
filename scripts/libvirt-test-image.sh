#!/usr/bin/env bash
# Builds (once per recipe) the libvirt driver's test guest and prints the folder that holds
# base.qcow2, vmlinuz and initrd.img. The folder is named by the hash of the recipe.
set -euo pipefail
cd "$(dirname "$0")/.."
recipe=drivers/libvirt/testimage/build.sh
hash=$(sha256sum "$recipe" | cut -c1-12)
dir=/var/cache/machine-test/libvirt-$hash
mkdir -p /var/cache/machine-test
# One build at a time: a second caller (make e2e beside a test that asks too) waits for the first.
exec 9>/var/cache/machine-test/.build.lock
flock 9
if [ ! -f "$dir/base.qcow2" ]; then
  echo "building the libvirt test guest ($dir), about 2 minutes" >&2
  rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
  bash "$recipe" "$dir.tmp" bookworm http://deb.debian.org/debian
  rm -rf "$dir"; mv "$dir.tmp" "$dir"
  # Earlier recipes' guests are no longer needed.
  find /var/cache/machine-test -maxdepth 1 -name 'libvirt-*' ! -name "libvirt-$hash" -exec rm -rf {} + 2>/dev/null || true
fi
echo "$dir"
