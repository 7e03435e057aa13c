package libvirt

import (
	"fmt"

	"libvirt.org/go/libvirtxml"
)

// DomainSpec is what the domain XML is made from (a pure planner: no libvirt calls).
type DomainSpec struct {
	Name       string
	Type       string // kvm or qemu
	CPUs       int
	MemoryMiB  int
	Overlay    string // path of the machine's qcow2 overlay
	CidataISO  string // path of the cloud-init ISO
	Networks   []string
	MACs       []string
	Kernel     string
	Initrd     string
	Cmdline    string
	ConsoleLog string
}

// DomainXML builds the domain definition with libvirtxml.
func DomainXML(s DomainSpec) (string, error) {
	if len(s.Networks) != len(s.MACs) {
		return "", fmt.Errorf("internal error: %d networks, %d MACs", len(s.Networks), len(s.MACs))
	}
	os := &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"}}
	if s.Kernel != "" {
		os.Kernel, os.Initrd, os.Cmdline = s.Kernel, s.Initrd, s.Cmdline
	} else {
		os.BootDevices = []libvirtxml.DomainBootDevice{{Dev: "hd"}}
	}
	disks := []libvirtxml.DomainDisk{
		{
			Device: "disk",
			Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2"},
			Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: s.Overlay}},
			Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
		},
	}
	if s.CidataISO != "" {
		disks = append(disks, libvirtxml.DomainDisk{
			Device:   "cdrom",
			Driver:   &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"},
			Source:   &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: s.CidataISO}},
			Target:   &libvirtxml.DomainDiskTarget{Dev: "sda", Bus: "sata"},
			ReadOnly: &libvirtxml.DomainDiskReadOnly{},
		})
	}
	var ifaces []libvirtxml.DomainInterface
	for i, n := range s.Networks {
		ifaces = append(ifaces, libvirtxml.DomainInterface{
			MAC:    &libvirtxml.DomainInterfaceMAC{Address: s.MACs[i]},
			Source: &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: n}},
			Model:  &libvirtxml.DomainInterfaceModel{Type: "virtio"},
		})
	}
	serial := libvirtxml.DomainSerial{Target: &libvirtxml.DomainSerialTarget{Port: new(uint)}}
	if s.ConsoleLog != "" {
		serial.Source = &libvirtxml.DomainChardevSource{File: &libvirtxml.DomainChardevSourceFile{Path: s.ConsoleLog}}
	} else {
		serial.Source = &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}}
	}
	d := &libvirtxml.Domain{
		Type:       s.Type,
		Name:       s.Name,
		Metadata:   &libvirtxml.DomainMetadata{XML: `<machine:machine xmlns:machine="https://github.com/machine-tools/machine">` + s.Name + `</machine:machine>`},
		Memory:     &libvirtxml.DomainMemory{Value: uint(s.MemoryMiB), Unit: "MiB"},
		VCPU:       &libvirtxml.DomainVCPU{Value: uint(s.CPUs)},
		OS:         os,
		Features:   &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}},
		OnPoweroff: "destroy", OnReboot: "restart", OnCrash: "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Disks:      disks,
			Interfaces: ifaces,
			Serials:    []libvirtxml.DomainSerial{serial},
			// The QEMU guest agent's channel: images that run qemu-guest-agent report their
			// addresses through it (the driver's second address source).
			Channels: []libvirtxml.DomainChannel{{
				Source: &libvirtxml.DomainChardevSource{UNIX: &libvirtxml.DomainChardevSourceUNIX{Mode: "bind"}},
				Target: &libvirtxml.DomainChannelTarget{VirtIO: &libvirtxml.DomainChannelTargetVirtIO{Name: "org.qemu.guest_agent.0"}},
			}},
			RNGs: []libvirtxml.DomainRNG{{Model: "virtio", Backend: &libvirtxml.DomainRNGBackend{Random: &libvirtxml.DomainRNGBackendRandom{Device: "/dev/urandom"}}}},
		},
	}
	if s.Type == "kvm" {
		d.CPU = &libvirtxml.DomainCPU{Mode: "host-passthrough"}
	}
	return d.Marshal()
}

// OverlayXML is a qcow2 volume on a read-only base image.
func OverlayXML(name string, capacity uint64, basePath, baseFormat string) (string, error) {
	v := &libvirtxml.StorageVolume{
		Name:     name,
		Capacity: &libvirtxml.StorageVolumeSize{Value: capacity, Unit: "bytes"},
		Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "qcow2"}},
		BackingStore: &libvirtxml.StorageVolumeBackingStore{
			Path:   basePath,
			Format: &libvirtxml.StorageVolumeTargetFormat{Type: baseFormat},
		},
	}
	return v.Marshal()
}

// RawVolumeXML is a plain file volume of size bytes (a base image, an ISO).
func RawVolumeXML(name string, size uint64) (string, error) {
	v := &libvirtxml.StorageVolume{
		Name:     name,
		Capacity: &libvirtxml.StorageVolumeSize{Value: size, Unit: "bytes"},
		Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "raw"}},
	}
	return v.Marshal()
}

// DirPoolXML is a directory storage pool.
func DirPoolXML(name, path string) (string, error) {
	p := &libvirtxml.StoragePool{Type: "dir", Name: name, Target: &libvirtxml.StoragePoolTarget{Path: path}}
	return p.Marshal()
}
