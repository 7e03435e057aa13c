#!/usr/bin/env bash
# Builds the libvirt driver's test guest offline: Debian with a kernel, systemd-networkd (DHCP with
# the MAC as client id, so clones get their own leases), sshd and cloud-init (NoCloud). Writes
# OUT/base.qcow2 (an ext4 root file system, no partition table, with EXTLINUX in its boot block so
# that it boots through a bootloader as users' images do), and OUT/vmlinuz and OUT/initrd.img for
# direct kernel boot. Usage: build.sh OUT SUITE MIRROR. Needs root, debootstrap, e2fsprogs,
# qemu-utils, extlinux and a loop device.
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
# With several NICs, "online" is the first one up (the engine waits for network-online.target).
mkdir -p "$root/etc/systemd/system/systemd-networkd-wait-online.service.d"
printf '[Service]\nExecStart=\nExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=30\n' \
  >"$root/etc/systemd/system/systemd-networkd-wait-online.service.d/10-any.conf"
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
mkdir -p "$root/boot/extlinux"
kernel=$(cd "$root/boot" && ls vmlinuz-* | head -1) initrd=$(cd "$root/boot" && ls initrd.img-* | head -1)
printf 'DEFAULT debian\nTIMEOUT 0\nLABEL debian\n  LINUX /boot/%s\n  INITRD /boot/%s\n  APPEND root=/dev/vda rw console=ttyS0\n' \
  "$kernel" "$initrd" >"$root/boot/extlinux/extlinux.conf"
truncate -s 3G "$out/disk.raw"
mkfs.ext4 -q -F -L root -O ^64bit -d "$root" "$out/disk.raw"
# EXTLINUX in the file system's boot block: the BIOS boots the unpartitioned disk through it.
mnt=$out/mnt; mkdir -p "$mnt"
mount -o loop "$out/disk.raw" "$mnt"
extlinux --install "$mnt/boot/extlinux" >/dev/null 2>&1 || { umount "$mnt"; echo "extlinux --install failed" >&2; exit 1; }
umount "$mnt"; rmdir "$mnt"
qemu-img convert -O qcow2 "$out/disk.raw" "$out/base.qcow2"
rm -rf "$root" "$out/disk.raw"
