#!/usr/bin/env bash
# Installs and starts libvirt for the libvirt driver's tests (as root): libvirtd, virtlogd, the
# default NAT network. KVM is not usable on every machine; /dev/kvm is opened to the kvm group so
# that libvirt does not re-probe QEMU for a minute on every define.
set -euo pipefail
log() { printf 'setup-libvirt: %s\n' "$*" >&2; }
pkgs=()
command -v libvirtd >/dev/null 2>&1 || pkgs+=(libvirt-daemon-system)
command -v qemu-system-x86_64 >/dev/null 2>&1 || pkgs+=(qemu-system-x86)
command -v qemu-img >/dev/null 2>&1 || pkgs+=(qemu-utils)
command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || pkgs+=(dnsmasq-base)
command -v isoinfo >/dev/null 2>&1 || pkgs+=(genisoimage)
command -v mkfs.ext4 >/dev/null 2>&1 || pkgs+=(e2fsprogs)
command -v extlinux >/dev/null 2>&1 || pkgs+=(extlinux)
if [ ${#pkgs[@]} -gt 0 ]; then
  log "installing ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi
if [ -e /dev/kvm ]; then chgrp kvm /dev/kvm 2>/dev/null || true; chmod 0660 /dev/kvm || true; fi
pgrep -x virtlogd >/dev/null || virtlogd -d
if ! pgrep -x libvirtd >/dev/null; then
  libvirtd -d
  for _ in $(seq 1 50); do [ -S /var/run/libvirt/libvirt-sock ] && break; sleep 0.2; done
fi
virsh -c qemu:///system net-info default >/dev/null 2>&1 || virsh -c qemu:///system net-define /usr/share/libvirt/networks/default.xml >/dev/null
active=$(virsh -c qemu:///system net-info default | awk '/^Active:/ {print $2}')
[ "$active" = yes ] || virsh -c qemu:///system net-start default >/dev/null
log "libvirtd is up; network default is active"
