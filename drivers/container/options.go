package container

import (
	"fmt"

	"github.com/machine-tools/machine/drivers"
)

// Registration is the container driver's entry in a registry.
func Registration() drivers.Registration {
	return drivers.Registration{
		Name: Name, Usage: "hosts as systemd containers on a local Docker engine (the default when one answers)", New: New,
		Options: []drivers.Option{
			{Name: "engine-host", EnvVar: "MACHINE_CONTAINER_ENGINE_HOST", Default: DefaultEngineHost, Usage: "the local engine that runs the hosts (DOCKER_HOST is ignored: it may point at a machine)",
				Set: drivers.Field(func(d *Driver, v string) { d.EngineHost = v })},
			{Name: "network", Default: "machine", Usage: "the host's network (made when missing)",
				Set: drivers.Field(func(d *Driver, v string) { d.Network = v })},
			{Name: "subnet", Default: "", Usage: "the subnet of a network the driver makes, e.g. 10.30.0.0/24",
				Set: drivers.Field(func(d *Driver, v string) { d.Subnet = v })},
			{Name: "ip", Default: "", Usage: "the host's address on its network (default: the first free one)",
				Set: drivers.Field(func(d *Driver, v string) { d.IP = v })},
			{Name: "extra-network", Default: []string(nil), Usage: "another network to attach, for a second NIC (repeatable)",
				Set: drivers.Field(func(d *Driver, v []string) { d.ExtraNetworks = v })},
			{Name: "cpu-shares", Default: 0, Usage: "the host's CPU weight under contention, against the engine's other containers (default 1024; swarm up gives container managers 8192)",
				Set: drivers.CheckedField(func(v int) error {
					if v != 0 && (v < 2 || v > 262144) {
						return fmt.Errorf("%d is outside the kernel's CPU weights: give 2 to 262144 (1024 is the engine's default)", v)
					}
					return nil
				}, func(d *Driver, v int) { d.CPUShares = v })},
			{Name: "image", Default: "", Usage: "a host image of your own (default: the built-in image, built when missing)",
				Set: drivers.Field(func(d *Driver, v string) { d.Image = v })},
			{Name: "image-release", Default: DefaultRelease, Usage: "the Debian release of the built-in image: debian-11, debian-12 or debian-13",
				Set: drivers.Field(func(d *Driver, v string) { d.Release = v })},
			{Name: "image-variant", Default: VariantDocker, Usage: "the built-in image with Docker (docker) or without (base: the provisioner installs it)",
				Set: drivers.Field(func(d *Driver, v string) { d.Variant = v })},
		},
	}
}
