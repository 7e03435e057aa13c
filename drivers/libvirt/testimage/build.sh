#!/usr/bin/env bash
# Builds the libvirt driver's test guest offline: Debian with a kernel, systemd-networkd (DHCP with
# the MAC as client id, so clones get their own leases), sshd and cloud-init (NoCloud). Writes
# OUT/base.qcow2 (an ext4 root file system, no partition table), OUT/vmlinuz and OUT/initrd.img for
# direct kernel boot. Usage: build.sh OUT SUITE MIRROR. Needs root, debootstrap, e2fsprogs, qemu-utils.
set -euo pipefail
out=$1 suite=${2:-bookworm} mirror=${3:-http://deb.debian.org/debian}
root=$out/rootfs
rm -rf "$root"; mkdir -p "$root"
debootstrap --variant=minbase \
  --include=linux-image-amd64,docker.io,systemd,systemd-sysv,dbus,udev,openssh-server,sudo,iproute2,ca-certificates,curl,cloud-init,python3-cffi-backend,netbase,ifupdown,isc-dhcp-client \
  "$suite" "$root" "$mirror" >"$out/debootstrap.log" 2>&1 || { tail -30 "$out/debootstrap.log" >&2; exit 1; }
mkdir -p "$root/etc/systemd/network" "$root/etc/cloud/cloud.cfg.d"
cat >"$root/etc/systemd/network/10-dhcp.network" <<'NET'
[Match]
Name=en* eth*

[Network]
DHCP=ipv4

[DHCPv4]
ClientIdentifier=mac
NET
chroot "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1
cat >"$root/etc/cloud/cloud.cfg.d/99-machine.cfg" <<'CFG'
datasource_list: [NoCloud, None]
network: {config: disabled}
locale: false
CFG
echo "/dev/vda / ext4 defaults 0 1" >"$root/etc/fstab"
rm -f "$root"/etc/ssh/ssh_host_*
: >"$root/etc/machine-id"
cp "$root"/boot/vmlinuz-* "$out/vmlinuz"
cp "$root"/boot/initrd.img-* "$out/initrd.img"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
truncate -s 3G "$out/disk.raw"
mkfs.ext4 -q -F -L root -d "$root" "$out/disk.raw"
qemu-img convert -O qcow2 "$out/disk.raw" "$out/base.qcow2"
rm -rf "$root" "$out/disk.raw"
