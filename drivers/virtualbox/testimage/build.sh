#!/usr/bin/env bash
# The recipe of the image in which the VirtualBox driver's tests run a real VirtualBox:
# Debian sid with contrib's virtualbox (VBoxManage and VBoxSVC work without the vboxdrv kernel
# module; only starting a VM needs it). Usage: build.sh TAG [MIRROR]. Offline: Debian's mirror only.
set -euo pipefail
tag=$1
mirror=${2:-http://deb.debian.org/debian}
work=$(mktemp -d /var/tmp/machine-vbox.XXXXXX)
base="machine-vbox-base:${tag##*:}"
build="machine-vbox-build-$$"
cleanup() {
  docker rm -f "$build" >/dev/null 2>&1 || true
  docker rmi "$base" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
# sid's Release may be past its Valid-Until date on the mirror: debootstrap does not check it,
# apt is told not to.
debootstrap --variant=minbase --include=ca-certificates sid "$work/root" "$mirror" >&2
echo "deb $mirror sid main contrib" >"$work/root/etc/apt/sources.list"
rm -f "$work/root/etc/apt/sources.list.d/"*
tar -C "$work/root" -c . | docker import - "$base" >/dev/null
docker run --name "$build" "$base" bash -euc '
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o Acquire::Check-Valid-Until=false update -q
  apt-get install -y -q --no-install-recommends virtualbox iproute2 procps genisoimage
  apt-get clean; rm -rf /var/lib/apt/lists/*
  /usr/lib/virtualbox/VBoxManage --version
' >&2
docker commit --change 'CMD ["/bin/bash"]' "$build" "$tag" >/dev/null
