package main

import (
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/drivers/container"
	"github.com/machine-tools/machine/drivers/generic"
	"github.com/machine-tools/machine/drivers/libvirt"
	"github.com/machine-tools/machine/drivers/virtualbox"
	"github.com/machine-tools/machine/internal/imagecache"
	"github.com/machine-tools/machine/internal/store"
	"github.com/machine-tools/machine/machine"
)

func engineFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "engine-install-url", EnvVars: []string{"MACHINE_DOCKER_INSTALL_URL"}, Usage: "a script that installs Docker (default: the distribution's own packages)"},
		&cli.StringSliceFlag{Name: "engine-opt", Usage: "a dockerd flag, as key=value (repeatable)"},
		&cli.StringSliceFlag{Name: "engine-insecure-registry", Usage: "a registry the engine may reach without TLS verification (repeatable)"},
		&cli.StringSliceFlag{Name: "engine-registry-mirror", Usage: "a registry mirror (repeatable)"},
		&cli.StringSliceFlag{Name: "engine-label", Usage: "an engine label, key=value (repeatable)"},
		&cli.StringFlag{Name: "engine-storage-driver", Usage: "the engine's storage driver"},
		&cli.StringSliceFlag{Name: "engine-env", Usage: "an environment variable for dockerd, KEY=value (repeatable)"},
		&cli.StringSliceFlag{Name: "engine-registry-ca", Usage: "HOST:PORT=FILE: trust FILE as the CA of that registry (repeatable)"},
		&cli.StringSliceFlag{Name: "tls-san", Usage: "an extra name or address for the engine's certificate (repeatable)"},
	}
}

func createCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "driver", Aliases: []string{"d"}, EnvVars: []string{"MACHINE_DRIVER"}, Usage: "the driver: container (default when a local Docker engine answers), generic, libvirt, virtualbox"},
		&cli.BoolFlag{Name: "insecure-skip-host-key-check", Usage: "do not pin or check the host's SSH key (unsafe: for throw-away hosts only)"},
		&cli.DurationFlag{Name: "ssh-wait", Value: 0, Usage: "how long to wait for SSH once the host is made (default: 30s for generic, 2m otherwise)"},
		// generic
		&cli.StringFlag{Name: "generic-ip-address", EnvVars: []string{"GENERIC_IP_ADDRESS"}, Usage: "generic: the host's IP address or name"},
		&cli.StringFlag{Name: "generic-ssh-user", EnvVars: []string{"GENERIC_SSH_USER"}, Value: "root", Usage: "generic: the SSH user (not root: passwordless sudo)"},
		&cli.StringFlag{Name: "generic-ssh-key", EnvVars: []string{"GENERIC_SSH_KEY"}, Usage: "generic: the SSH private key (default: the ssh-agent)"},
		&cli.IntFlag{Name: "generic-ssh-port", EnvVars: []string{"GENERIC_SSH_PORT"}, Value: 22, Usage: "generic: the SSH port"},
		&cli.IntFlag{Name: "generic-engine-port", EnvVars: []string{"GENERIC_ENGINE_PORT"}, Value: 2376, Usage: "generic: the engine's TLS port"},
		// container
		&cli.StringFlag{Name: "container-engine-host", EnvVars: []string{"MACHINE_CONTAINER_ENGINE_HOST"}, Value: container.DefaultEngineHost, Usage: "container: the local engine that runs the hosts (DOCKER_HOST is ignored: it may point at a machine)"},
		&cli.StringFlag{Name: "container-network", Value: "machine", Usage: "container: the host's network (made when missing)"},
		&cli.StringFlag{Name: "container-subnet", Usage: "container: the subnet of a network the driver makes, e.g. 10.30.0.0/24"},
		&cli.StringFlag{Name: "container-ip", Usage: "container: the host's address on its network (default: the first free one)"},
		&cli.StringSliceFlag{Name: "container-extra-network", Usage: "container: another network to attach, for a second NIC (repeatable)"},
		&cli.StringFlag{Name: "container-image", Usage: "container: a host image of your own (default: the built-in image, built when missing)"},
		&cli.StringFlag{Name: "container-image-variant", Value: container.VariantDocker, Usage: "container: the built-in image with Docker (docker) or without (base: the provisioner installs it)"},
		// libvirt
		&cli.StringFlag{Name: "libvirt-image", Usage: "libvirt: the disk image (qcow2 or raw; a path, or a URL downloaded once)"},
		&cli.StringFlag{Name: "libvirt-image-checksum", Usage: "libvirt: the image's sha256 (sha256:HEX), checked after a download"},
		&cli.StringFlag{Name: "libvirt-uri", Value: "qemu:///system", Usage: "libvirt: the connection URI"},
		&cli.StringFlag{Name: "libvirt-socket", Value: "/var/run/libvirt/libvirt-sock", Usage: "libvirt: libvirtd's socket"},
		&cli.IntFlag{Name: "libvirt-cpu-count", Value: 1, Usage: "libvirt: virtual CPUs"},
		&cli.IntFlag{Name: "libvirt-memory", Value: 1024, Usage: "libvirt: memory in MiB"},
		&cli.StringFlag{Name: "libvirt-disk-size", Value: "10G", Usage: "libvirt: the disk's size (the overlay grows to it)"},
		&cli.StringSliceFlag{Name: "libvirt-network", Usage: "libvirt: a network (repeatable; the first is the machine's address; default: default)"},
		&cli.StringFlag{Name: "libvirt-pool", Value: "default", Usage: "libvirt: the storage pool (made as a directory pool when missing)"},
		&cli.StringFlag{Name: "libvirt-domain-type", Value: "auto", Usage: "libvirt: auto (KVM when it really works, else QEMU), kvm or qemu"},
		&cli.StringFlag{Name: "libvirt-ssh-user", Value: "debian", Usage: "libvirt: the user cloud-init makes with the machine's key"},
		&cli.StringFlag{Name: "libvirt-kernel", Usage: "libvirt: boot this kernel directly (no bootloader)"},
		&cli.StringFlag{Name: "libvirt-initrd", Usage: "libvirt: the initrd for --libvirt-kernel"},
		&cli.StringFlag{Name: "libvirt-cmdline", Usage: "libvirt: the kernel command line for --libvirt-kernel"},
		// virtualbox (flag names and defaults as docker-machine's VirtualBox driver)
		&cli.IntFlag{Name: "virtualbox-cpu-count", EnvVars: []string{"VIRTUALBOX_CPU_COUNT"}, Value: 1, Usage: "virtualbox: virtual CPUs"},
		&cli.IntFlag{Name: "virtualbox-memory", EnvVars: []string{"VIRTUALBOX_MEMORY_SIZE"}, Value: 1024, Usage: "virtualbox: memory in MiB"},
		&cli.IntFlag{Name: "virtualbox-disk-size", EnvVars: []string{"VIRTUALBOX_DISK_SIZE"}, Value: 20000, Usage: "virtualbox: the disk's size in MB"},
		&cli.StringFlag{Name: "virtualbox-hostonly-cidr", EnvVars: []string{"VIRTUALBOX_HOSTONLY_CIDR"}, Value: "192.168.99.1/24", Usage: "virtualbox: the host's address and prefix on the host-only network (found or made)"},
		&cli.StringFlag{Name: "virtualbox-boot2docker-url", EnvVars: []string{"VIRTUALBOX_BOOT2DOCKER_URL"}, Usage: "virtualbox: the URL of the image to boot, downloaded once (a cloud disk image or an ISO with cloud-init; default: " + virtualbox.DefaultImage + ")"},
		&cli.StringFlag{Name: "virtualbox-image", Usage: "virtualbox: a local image to boot: .vmdk, .vdi, .vhd, .img/.raw disk, or .iso"},
		&cli.StringFlag{Name: "virtualbox-image-checksum", Usage: "virtualbox: the image's sha256 (sha256:HEX), checked after a download"},
		&cli.StringFlag{Name: "virtualbox-ssh-user", Value: "docker", Usage: "virtualbox: the user cloud-init makes with the machine's key"},
		&cli.StringFlag{Name: "virtualbox-nat-nictype", EnvVars: []string{"VIRTUALBOX_NAT_NICTYPE"}, Usage: "virtualbox: the NAT NIC's model (default virtio)"},
		&cli.StringFlag{Name: "virtualbox-hostonly-nictype", EnvVars: []string{"VIRTUALBOX_HOSTONLY_NIC_TYPE"}, Usage: "virtualbox: the host-only NIC's model (default virtio)"},
		&cli.StringFlag{Name: "virtualbox-hostonly-nicpromisc", EnvVars: []string{"VIRTUALBOX_HOSTONLY_NIC_PROMISC"}, Usage: "virtualbox: the host-only NIC's promiscuous mode: deny (default), allow-vms, allow-all"},
		&cli.StringFlag{Name: "virtualbox-ui-type", EnvVars: []string{"VIRTUALBOX_UI_TYPE"}, Usage: "virtualbox: headless (default), gui, sdl or separate"},
		// docker-machine flags kept so that its scripts run: these change nothing here.
		&cli.BoolFlag{Name: "virtualbox-no-share", EnvVars: []string{"VIRTUALBOX_NO_SHARE"}, Usage: "virtualbox: accepted for docker-machine scripts (machine never shares a host folder; use machine scp)"},
		&cli.BoolFlag{Name: "virtualbox-no-vtx-check", EnvVars: []string{"VIRTUALBOX_NO_VTX_CHECK"}, Usage: "virtualbox: accepted for docker-machine scripts (VT-x is not pre-checked; VirtualBox's own error says when it is off)"},
		&cli.BoolFlag{Name: "virtualbox-host-dns-resolver", EnvVars: []string{"VIRTUALBOX_HOST_DNS_RESOLVER"}, Usage: "virtualbox: accepted for docker-machine scripts (the NAT NIC always uses the host's resolver)"},
		// docker-machine flags with no equivalent: refused with the reason.
		&cli.StringFlag{Name: "virtualbox-share-folder", EnvVars: []string{"VIRTUALBOX_SHARE_FOLDER"}, Usage: "virtualbox: not supported (use machine scp)"},
		&cli.StringFlag{Name: "virtualbox-import-boot2docker-vm", Usage: "virtualbox: not supported (machine boots cloud images, not boot2docker VMs)"},
		&cli.BoolFlag{Name: "virtualbox-hostonly-no-dhcp", EnvVars: []string{"VIRTUALBOX_HOSTONLY_NO_DHCP"}, Usage: "virtualbox: not supported (the machine's address comes from the host-only DHCP server)"},
	}
	return &cli.Command{
		Name:      "create",
		Usage:     "Create a machine",
		ArgsUsage: "NAME",
		Flags:     append(flags, engineFlags()...),
		Action: func(c *cli.Context) error {
			name, err := oneName(c)
			if err != nil {
				return err
			}
			if err := store.ValidateName(name); err != nil {
				return err
			}
			a, err := api(c)
			if err != nil {
				return err
			}
			driverName := c.String("driver")
			if driverName == "" {
				if err := container.Ping(c.Context, c.String("container-engine-host")); err != nil {
					return fmt.Errorf("no --driver given and no local Docker engine answers at %s: start dockerd for container hosts, or pass --driver generic", c.String("container-engine-host"))
				}
				driverName = container.Name
			}
			reg, err := a.Drivers.Get(driverName)
			if err != nil {
				return err
			}
			d := reg.New()
			opts := machine.CreateOptions{
				Name:            name,
				Driver:          d,
				TLSSANs:         c.StringSlice("tls-san"),
				InsecureHostKey: c.Bool("insecure-skip-host-key-check"),
				SSHWait:         c.Duration("ssh-wait"),
				Progress:        progress(c, name),
				Engine: store.EngineOptions{
					InstallURL:         c.String("engine-install-url"),
					Opts:               c.StringSlice("engine-opt"),
					Labels:             c.StringSlice("engine-label"),
					InsecureRegistries: c.StringSlice("engine-insecure-registry"),
					RegistryMirrors:    c.StringSlice("engine-registry-mirror"),
					StorageDriver:      c.String("engine-storage-driver"),
					Env:                c.StringSlice("engine-env"),
				},
			}
			if opts.Engine.RegistryCAs, err = registryCAs(c.StringSlice("engine-registry-ca")); err != nil {
				return err
			}
			if err := configureDriver(c, d, &opts); err != nil {
				return err
			}
			start := time.Now()
			h, err := a.Create(c.Context, opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "(%s) ready in %s: %s\n", name, time.Since(start).Round(100*time.Millisecond), h.URL())
			fmt.Fprintf(c.App.ErrWriter, "To point your Docker client at it, run: eval \"$(machine env %s)\"\n", name)
			return nil
		},
	}
}

// configureDriver moves the driver's flags into the driver: flags stay in the CLI layer.
func configureDriver(c *cli.Context, d drivers.Driver, o *machine.CreateOptions) error {
	switch d := d.(type) {
	case *generic.Driver:
		d.IPAddress = c.String("generic-ip-address")
		d.SSHUser = c.String("generic-ssh-user")
		d.SSHPort = c.Int("generic-ssh-port")
		o.SSHUser = d.SSHUser
		o.SSHKey = expandHome(c.String("generic-ssh-key"))
		o.UseAgent = o.SSHKey == ""
		o.Engine.Port = c.Int("generic-engine-port")
		if o.SSHWait == 0 {
			o.SSHWait = 30 * time.Second
		}
	case *container.Driver:
		d.EngineHost = c.String("container-engine-host")
		d.Network = c.String("container-network")
		d.Subnet = c.String("container-subnet")
		d.IP = c.String("container-ip")
		d.ExtraNetworks = c.StringSlice("container-extra-network")
		d.Image = c.String("container-image")
		d.Variant = c.String("container-image-variant")
	case *libvirt.Driver:
		d.Image = expandHome(c.String("libvirt-image"))
		d.Checksum = c.String("libvirt-image-checksum")
		d.URI = c.String("libvirt-uri")
		d.Socket = c.String("libvirt-socket")
		d.CPUs = c.Int("libvirt-cpu-count")
		d.MemoryMiB = c.Int("libvirt-memory")
		d.DiskSize = c.String("libvirt-disk-size")
		d.Networks = c.StringSlice("libvirt-network")
		d.Pool = c.String("libvirt-pool")
		d.DomainType = c.String("libvirt-domain-type")
		d.SSHUser = c.String("libvirt-ssh-user")
		d.Kernel = expandHome(c.String("libvirt-kernel"))
		d.Initrd = expandHome(c.String("libvirt-initrd"))
		d.Cmdline = c.String("libvirt-cmdline")
	case *virtualbox.Driver:
		d.CPUs = c.Int("virtualbox-cpu-count")
		d.MemoryMiB = c.Int("virtualbox-memory")
		d.DiskSizeMB = c.Int("virtualbox-disk-size")
		d.HostOnlyCIDR = c.String("virtualbox-hostonly-cidr")
		d.Image = c.String("virtualbox-boot2docker-url")
		if img := c.String("virtualbox-image"); img != "" {
			if d.Image != "" {
				return errors.New("--virtualbox-image and --virtualbox-boot2docker-url both name an image: keep one")
			}
			d.Image = expandHome(img)
		}
		d.ImageChecksum = c.String("virtualbox-image-checksum")
		d.SSHUser = c.String("virtualbox-ssh-user")
		d.NATNICType = c.String("virtualbox-nat-nictype")
		d.HostOnlyNICType = c.String("virtualbox-hostonly-nictype")
		d.HostOnlyPromisc = c.String("virtualbox-hostonly-nicpromisc")
		d.UIType = c.String("virtualbox-ui-type")
		switch {
		case c.IsSet("virtualbox-share-folder"):
			return errors.New("--virtualbox-share-folder is not supported: machine does not share host folders into VMs; copy files with `machine scp`")
		case c.IsSet("virtualbox-import-boot2docker-vm"):
			return errors.New("--virtualbox-import-boot2docker-vm is not supported: create a new machine from a cloud image, or take an existing docker-machine VM over with `machine import-docker-machine`")
		case c.Bool("virtualbox-hostonly-no-dhcp"):
			return errors.New("--virtualbox-hostonly-no-dhcp is not supported: the machine's address comes from the host-only network's DHCP server")
		}
	default:
		return errors.New("internal error: no flags for this driver")
	}
	// VM drivers: images downloaded with a progress bar, and minutes to boot.
	if dl, ok := d.(interface{ SetDownloadProgress(imagecache.Progress) }); ok {
		if bar := byteBar(c.App.ErrWriter); bar != nil {
			dl.SetDownloadProgress(bar)
		}
	}
	if _, slow := d.(drivers.SlowBooter); slow && o.SSHWait == 0 {
		o.SSHWait = 5 * time.Minute
	}
	return nil
}

// expandHome expands a leading ~/ (cluster files and quoted flags do not get the shell's).
func expandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[2:])
		}
	}
	return p
}

// registryCAs reads --engine-registry-ca HOST:PORT=FILE values.
func registryCAs(vals []string) (map[string]string, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, v := range vals {
		hp, file, ok := strings.Cut(v, "=")
		if _, _, err := net.SplitHostPort(hp); !ok || err != nil || strings.ContainsAny(hp, "/ ") {
			return nil, fmt.Errorf("--engine-registry-ca %q: use HOST:PORT=FILE, e.g. reg.example.com:5000=ca.pem", v)
		}
		b, err := os.ReadFile(expandHome(file))
		if err != nil {
			return nil, fmt.Errorf("--engine-registry-ca %s: %w", hp, err)
		}
		if block, _ := pem.Decode(b); block == nil || block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("--engine-registry-ca %s: %s holds no PEM certificate", hp, file)
		}
		out[hp] = string(b)
	}
	return out, nil
}
