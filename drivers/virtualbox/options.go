package virtualbox

import (
	"errors"
	"time"

	"github.com/machine-tools/machine/drivers"
)

// Registration is the VirtualBox driver's entry in a registry: docker-machine's flag names,
// environment variables and defaults; its flags with no equivalent are refused with the reason,
// its no-op ones accepted.
func Registration() drivers.Registration {
	str := func(set func(d *Driver, v string)) func(*drivers.Settings, any) error { return drivers.Field(set) }
	return drivers.Registration{
		Name: Name, Usage: "VirtualBox VMs through VBoxManage (NAT + host-only NICs, as docker-machine made them)", New: New,
		Options: []drivers.Option{
			{Name: "cpu-count", EnvVar: "VIRTUALBOX_CPU_COUNT", Default: 1, Usage: "virtual CPUs (-1: as many as this computer has, at most 32)",
				Set: drivers.Field(func(d *Driver, v int) { d.CPUs = v })},
			{Name: "memory", EnvVar: "VIRTUALBOX_MEMORY_SIZE", Default: 1024, Usage: "memory in MiB",
				Set: drivers.Field(func(d *Driver, v int) { d.MemoryMiB = v })},
			{Name: "disk-size", EnvVar: "VIRTUALBOX_DISK_SIZE", Default: 20000, Usage: "the disk's size in MB",
				Set: drivers.Field(func(d *Driver, v int) { d.DiskSizeMB = v })},
			{Name: "hostonly-cidr", EnvVar: "VIRTUALBOX_HOSTONLY_CIDR", Default: "192.168.99.1/24", Usage: "the host's address and prefix on the host-only network (found or made)",
				Set: str(func(d *Driver, v string) { d.HostOnlyCIDR = v })},
			{Name: "boot2docker-url", EnvVar: "VIRTUALBOX_BOOT2DOCKER_URL", Default: "", Usage: "the URL of the image to boot, downloaded once (a cloud disk image or an ISO with cloud-init; default: " + DefaultImage + ")",
				Set: str(func(d *Driver, v string) { d.Image = v })},
			{Name: "image", Default: "", Path: true, Usage: "a local image to boot: .vmdk, .vdi, .vhd, .img/.raw disk, or .iso",
				Set: func(s *drivers.Settings, v any) error {
					if v.(string) == "" {
						return nil
					}
					d := s.Driver.(*Driver)
					if d.Image != "" {
						return errors.New("--virtualbox-image and --virtualbox-boot2docker-url both name an image: keep one")
					}
					d.Image = v.(string)
					return nil
				}},
			{Name: "image-checksum", Default: "", Usage: "the image's sha256 (sha256:HEX), checked after a download",
				Set: str(func(d *Driver, v string) { d.ImageChecksum = v })},
			{Name: "ssh-user", Default: "docker", Usage: "the user cloud-init makes with the machine's key",
				Set: str(func(d *Driver, v string) { d.SSHUser = v })},
			{Name: "nat-nictype", EnvVar: "VIRTUALBOX_NAT_NICTYPE", Default: "", Usage: "the NAT NIC's model (default virtio)",
				Set: str(func(d *Driver, v string) { d.NATNICType = v })},
			{Name: "hostonly-nictype", EnvVar: "VIRTUALBOX_HOSTONLY_NIC_TYPE", Default: "", Usage: "the host-only NIC's model (default virtio)",
				Set: str(func(d *Driver, v string) { d.HostOnlyNICType = v })},
			{Name: "hostonly-nicpromisc", EnvVar: "VIRTUALBOX_HOSTONLY_NIC_PROMISC", Default: "", Usage: "the host-only NIC's promiscuous mode: deny (default), allow-vms, allow-all",
				Set: str(func(d *Driver, v string) { d.HostOnlyPromisc = v })},
			{Name: "ui-type", EnvVar: "VIRTUALBOX_UI_TYPE", Default: "", Usage: "headless (default), gui, sdl or separate",
				Set: str(func(d *Driver, v string) { d.UIType = v })},
			// docker-machine flags kept so that its scripts run: these change nothing here.
			{Name: "no-share", EnvVar: "VIRTUALBOX_NO_SHARE", Default: false, Usage: "accepted for docker-machine scripts (machine never shares a host folder; use machine scp)"},
			{Name: "no-vtx-check", EnvVar: "VIRTUALBOX_NO_VTX_CHECK", Default: false, Usage: "accepted for docker-machine scripts (VT-x is not pre-checked; VirtualBox's own error says when it is off)"},
			{Name: "host-dns-resolver", EnvVar: "VIRTUALBOX_HOST_DNS_RESOLVER", Default: false, Usage: "accepted for docker-machine scripts (the NAT NIC always uses the host's resolver)"},
			{Name: "no-dns-proxy", EnvVar: "VIRTUALBOX_NO_DNS_PROXY", Default: false, Usage: "accepted for docker-machine scripts (the NAT NIC uses the host's resolver, not VirtualBox's DNS proxy)"},
			// docker-machine flags with no equivalent: refused with the reason.
			{Name: "share-folder", EnvVar: "VIRTUALBOX_SHARE_FOLDER", Default: "", Usage: "not supported (use machine scp)",
				Refused: "machine does not share host folders into VMs; copy files with `machine scp`"},
			{Name: "import-boot2docker-vm", EnvVar: "VIRTUALBOX_BOOT2DOCKER_IMPORT_VM", Default: "", Usage: "not supported (machine boots cloud images, not boot2docker VMs)",
				Refused: "create a new machine from a cloud image, or take an existing docker-machine VM over with `machine import-docker-machine`"},
			{Name: "hostonly-no-dhcp", EnvVar: "VIRTUALBOX_HOSTONLY_NO_DHCP", Default: false, Usage: "not supported (the machine's address comes from the host-only DHCP server)",
				Refused: "the machine's address comes from the host-only network's DHCP server"},
		},
		// A VM boots slower than a container.
		SSHWait:    5 * time.Minute,
		EngineWait: 3 * time.Minute,
	}
}
