#!/bin/sh
# Turns a Debian root file system (ROOT, "/" inside a Dockerfile) into a machine host:
# systemd as PID 1 in a container, sshd with a host key of its own per host, key-only logins.
set -eu
root=${1:-/}
rm -f "$root"/etc/ssh/ssh_host_*
mkdir -p "$root/etc/systemd/system/ssh.service.d" "$root/etc/ssh/sshd_config.d"
cat >"$root/etc/systemd/system/ssh.service.d/10-hostkeys.conf" <<'UNIT'
[Service]
ExecStartPre=
ExecStartPre=/bin/sh -c 'for t in ed25519 ecdsa; do [ -f /etc/ssh/ssh_host_$${t}_key ] || ssh-keygen -q -t $$t -N "" -f /etc/ssh/ssh_host_$${t}_key; done'
ExecStartPre=/usr/local/sbin/machine-authorized-key
ExecStartPre=/usr/sbin/sshd -t
UNIT
# The container driver passes the machine's public key in the container's environment; this lets
# it in before sshd starts (no archive copied into the container: that costs the engine a
# re-executed dockerd per host).
mkdir -p "$root/usr/local/sbin"
cat >"$root/usr/local/sbin/machine-authorized-key" <<'SCRIPT'
#!/bin/sh
k=$(tr '\0' '\n' </proc/1/environ | sed -n 's/^MACHINE_AUTHORIZED_KEY=//p')
[ -n "$k" ] || exit 0
mkdir -p /root/.ssh && chmod 700 /root/.ssh
grep -qxF "$k" /root/.ssh/authorized_keys 2>/dev/null || printf '%s\n' "$k" >>/root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
SCRIPT
chmod 755 "$root/usr/local/sbin/machine-authorized-key"
cat >"$root/etc/ssh/sshd_config.d/10-machine.conf" <<'CONF'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
PrintMotd no
PrintLastLog no
# Host keys are made at first boot; RSA is left out: making a 3072-bit key costs a second of CPU.
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
CONF
# No message of the day: pam_motd runs the update-motd scripts at every session, even for the
# provisioner's commands (a fifth of a session's CPU).
sed -i '/pam_motd\.so/d; /pam_mail\.so/d' "$root/etc/pam.d/sshd"
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf /lib/systemd/system/ssh.service "$root/etc/systemd/system/multi-user.target.wants/ssh.service"
# Units that make no sense in a container, and would slow or stall its boot.
for u in getty@tty1.service serial-getty@console.service console-getty.service systemd-udevd.service \
         systemd-udev-trigger.service systemd-modules-load.service sys-kernel-config.mount \
         sys-kernel-debug.mount sys-kernel-tracing.mount systemd-remount-fs.service e2scrub_reap.service \
         systemd-firstboot.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
  ln -sf /dev/null "$root/etc/systemd/system/$u"
done
# Boot work a container host does not need (the engine and Docker give it /dev, sysctls and its
# users; nothing here talks D-Bus): half of a host's boot CPU, which is what bounds how many hosts
# start at once (docs/performance.md).
for u in modprobe@.service systemd-sysctl.service systemd-journal-flush.service systemd-update-utmp.service \
         systemd-update-utmp-runlevel.service dev-hugepages.mount sys-fs-fuse-connections.mount \
         systemd-logind.service dbus.service dbus.socket systemd-sysusers.service systemd-tmpfiles-setup-dev.service \
         systemd-pstore.service systemd-random-seed.service dpkg-db-backup.timer man-db.timer logrotate.timer \
         systemd-tmpfiles-clean.timer; do
  ln -sf /dev/null "$root/etc/systemd/system/$u"
done
# Newer systemd (trixie's 257) runs more at every host's first boot: the ConditionNeedsUpdate=
# units (the image's /etc looks freshly updated to each new host: ldconfig, the journal's message
# catalog, the update stamp) and socket-activated helpers nothing here calls. A fifth of a trixie
# host's create (docs/performance.md).
for u in ldconfig.service systemd-journal-catalog-update.service systemd-update-done.service \
         systemd-tmpfiles-setup-dev-early.service systemd-creds.socket systemd-hostnamed.socket \
         systemd-sysext.socket; do
  ln -sf /dev/null "$root/etc/systemd/system/$u"
done
# The generators look for fstab entries, gettys, encrypted disks and SysV scripts at every boot.
mkdir -p "$root/etc/systemd/system-generators"
for g in "$root"/lib/systemd/system-generators/*; do
  ln -sf /dev/null "$root/etc/systemd/system-generators/${g##*/}"
done
# Made at first boot, so that every host has its own.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
mkdir -p "$root/root/.ssh"
chmod 700 "$root/root/.ssh"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
