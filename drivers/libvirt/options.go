package libvirt

import (
	"time"

	"github.com/machine-tools/machine/drivers"
)

// Registration is the libvirt driver's entry in a registry.
func Registration() drivers.Registration {
	return drivers.Registration{
		Name: Name, Usage: "VMs through libvirtd (KVM, or QEMU's emulation)", New: New,
		Options: []drivers.Option{
			{Name: "image", Default: "", Path: true, Usage: "the disk image (qcow2 or raw; a path, or a URL downloaded once)",
				Set: drivers.Field(func(d *Driver, v string) { d.Image = v })},
			{Name: "image-checksum", Default: "", Usage: "the image's sha256 (sha256:HEX), checked after a download",
				Set: drivers.Field(func(d *Driver, v string) { d.Checksum = v })},
			{Name: "uri", Default: "qemu:///system", Usage: "the connection URI",
				Set: drivers.Field(func(d *Driver, v string) { d.URI = v })},
			{Name: "socket", Default: "/var/run/libvirt/libvirt-sock", Usage: "libvirtd's socket",
				Set: drivers.Field(func(d *Driver, v string) { d.Socket = v })},
			{Name: "cpu-count", Default: 1, Usage: "virtual CPUs",
				Set: drivers.Field(func(d *Driver, v int) { d.CPUs = v })},
			{Name: "memory", Default: 1024, Usage: "memory in MiB",
				Set: drivers.Field(func(d *Driver, v int) { d.MemoryMiB = v })},
			{Name: "disk-size", Default: "10G", Usage: "the disk's size (the overlay grows to it)",
				Set: drivers.Field(func(d *Driver, v string) { d.DiskSize = v })},
			{Name: "network", Default: []string(nil), Usage: "a network (repeatable; the first is the machine's address; default: default)",
				Set: drivers.Field(func(d *Driver, v []string) { d.Networks = v })},
			{Name: "pool", Default: "default", Usage: "the storage pool (made as a directory pool when missing)",
				Set: drivers.Field(func(d *Driver, v string) { d.Pool = v })},
			{Name: "domain-type", Default: "auto", Usage: "auto (KVM when it really works, else QEMU), kvm or qemu",
				Set: drivers.Field(func(d *Driver, v string) { d.DomainType = v })},
			{Name: "ssh-user", Default: "debian", Usage: "the user cloud-init makes with the machine's key",
				Set: drivers.Field(func(d *Driver, v string) { d.SSHUser = v })},
			{Name: "kernel", Default: "", Path: true, Usage: "boot this kernel directly (no bootloader)",
				Set: drivers.Field(func(d *Driver, v string) { d.Kernel = v })},
			{Name: "initrd", Default: "", Path: true, Usage: "the initrd for --libvirt-kernel",
				Set: drivers.Field(func(d *Driver, v string) { d.Initrd = v })},
			{Name: "cmdline", Default: "", Usage: "the kernel command line for --libvirt-kernel",
				Set: drivers.Field(func(d *Driver, v string) { d.Cmdline = v })},
		},
		// A guest emulated by QEMU (no KVM) boots in minutes.
		SSHWait:    5 * time.Minute,
		EngineWait: 5 * time.Minute,
	}
}
