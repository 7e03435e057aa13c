#!/usr/bin/env bash
# Records the VBoxManage outputs that the VirtualBox driver's unit tests replay, from a real
# VirtualBox: run by scripts/vbox-record.sh inside the image of scripts/vbox-image.sh (Debian
# sid's virtualbox; no kernel driver, so no VM starts). Usage: record.sh OUTDIR (as root: it
# makes the host-only interfaces, which VBoxSVC lists as it lists any vboxnetN).
#
# It does what a create does, with the names the tests expect: the VM manager1 (its UUID fixed
# with --uuid), host-only networks vboxnet0 (192.168.56.1/24, VirtualBox's default, with the
# DHCP server VirtualBox's own settings have for it) and vboxnet1 (192.168.99.1/24), the NIC MAC
# 080027C0FFEE, SSH forwarded from 127.0.0.1:42187, files under /home/user. Each file's first
# line says which VBoxManage made it and with which command; the tests skip that line.
set -euo pipefail
out=$1
mkdir -p "$out"
# VirtualBox runs as a user of the vboxusers group, as on a desktop; the interfaces are root's.
id user >/dev/null 2>&1 || useradd -m -d /home/user -G vboxusers user
export HOME=/home/user
vbm() { runuser -u user -- /usr/lib/virtualbox/VBoxManage "$@"; } # not /usr/bin's wrapper script
V=vbm
ver=$($V --version)
vm=4b0a5a3e-6c1d-4f8e-9d36-1f0b7c9a2e51
dir="$HOME/VirtualBox VMs/manager1"

header() { printf '# recorded from VBoxManage %s by drivers/virtualbox/testdata/record.sh: %s\n' "$ver" "$*"; }
# rec FILE ARGS...: standard output of a call that succeeds.
rec() {
  local f=$1; shift
  { header "VBoxManage $*"; $V "$@"; } >"$out/$f"
}
# recerr FILE ARGS...: standard error of a call that fails.
recerr() {
  local f=$1; shift
  header "VBoxManage $* (standard error)" >"$out/$f"
  if $V "$@" 2>>"$out/$f" >/dev/null; then
    echo "record.sh: VBoxManage $* succeeded; its error was to be recorded" >&2
    exit 1
  fi
}
bridge() { # a host-only interface: VBoxSVC lists a vboxnetN bridge as one
  ip link add "$1" type bridge && ip addr add "$2" dev "$1" && ip link set "$1" up
}

rec version.txt --version
{ header "/usr/bin/VBoxManage --version (the wrapper, without /dev/vboxdrv)"; runuser -u user -- /usr/bin/VBoxManage --version 2>/dev/null; } >"$out/wrapper-version.txt"

bridge vboxnet0 192.168.56.1/24
rec list-hostonlyifs-one.txt list hostonlyifs
rec list-dhcpservers-one.txt list dhcpservers
recerr error-hostonlyif-create.txt hostonlyif create
bridge vboxnet1 192.168.99.1/24
rec list-hostonlyifs.txt list hostonlyifs
$V dhcpserver add --netname HostInterfaceNetworking-vboxnet1 --ip 192.168.99.2 --netmask 255.255.255.0 \
  --lowerip 192.168.99.100 --upperip 192.168.99.254 --enable
rec list-dhcpservers.txt list dhcpservers
recerr error-dhcpserver-exists.txt dhcpserver add --netname HostInterfaceNetworking-vboxnet1 --ip 192.168.99.2 \
  --netmask 255.255.255.0 --lowerip 192.168.99.100 --upperip 192.168.99.254 --enable

rec createvm.txt createvm --name manager1 --ostype Linux_64 --uuid "$vm" --register
recerr error-name-clash.txt createvm --name manager1 --ostype Linux_64 --register
$V createvm --name "worker 1" --ostype Linux_64 --register >/dev/null
rec list-vms.txt list vms
$V unregistervm "worker 1" --delete

# The calls of ConfigurePlan, with the tests' values.
$V modifyvm $vm --firmware bios --cpus 2 --memory 2048 --acpi on --ioapic on --rtcuseutc on --boot1 disk --boot2 dvd --boot3 none --boot4 none
$V modifyvm $vm --nic1 nat --nictype1 virtio --cableconnected1 on --natdnshostresolver1 on --natpf1 ssh,tcp,127.0.0.1,42187,,22
$V modifyvm $vm --nic2 hostonly --nictype2 virtio --nicpromisc2 deny --hostonlyadapter2 vboxnet1 --macaddress2 080027C0FFEE --cableconnected2 on
$V storagectl $vm --name SATA --add sata --portcount 3 --hostiocache on

# The disk: a cloud image of 2252 MB cloned, grown to 20000 MB in bytes; --resize refuses.
$V createmedium disk --filename "$HOME/cloud.vmdk" --size 2252 --format VMDK >/dev/null
rec clonemedium.txt clonemedium disk "$HOME/cloud.vmdk" "$dir/disk.vdi" --format VDI
$V closemedium disk "$HOME/cloud.vmdk" --delete >/dev/null
rec showmediuminfo.txt showmediuminfo disk "$dir/disk.vdi"
runuser -u user -- truncate -s 16M "$HOME/small.img"
$V convertfromraw "$HOME/small.img" "$HOME/small.vdi" --format VDI >/dev/null
recerr error-resize.txt modifymedium disk "$HOME/small.vdi" --resize 20000
$V closemedium disk "$HOME/small.vdi" --delete >/dev/null
rm -f "$HOME/small.img"
$V modifymedium disk "$dir/disk.vdi" --resizebyte $((20000 << 20)) >/dev/null
$V storageattach $vm --storagectl SATA --port 0 --device 0 --type hdd --medium "$dir/disk.vdi"
runuser -u user -- truncate -s 1M "$dir/cidata.iso" # the seed's place: VirtualBox takes any file as a DVD
$V storageattach $vm --storagectl SATA --port 1 --device 0 --type dvddrive --medium "$dir/cidata.iso"

rec showvminfo-poweroff.txt showvminfo $vm --machinereadable
rec guestproperty-enumerate-stopped.txt guestproperty enumerate $vm
recerr error-kernel-driver.txt startvm $vm --type headless
recerr error-controlvm-not-running.txt controlvm $vm acpipowerbutton

$V unregistervm $vm --delete
recerr error-not-found.txt showvminfo $vm --machinereadable
$V closemedium dvd "$dir/cidata.iso"
rm -rf "$dir"
echo "recorded $(ls "$out" | wc -l) outputs of VBoxManage $ver into $out" >&2
