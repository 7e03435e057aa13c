// Package container is the driver whose hosts are systemd containers on a local Docker engine:
// each with its own hostname, address, sshd and dockerd, provisioned over SSH like any other
// host. It is the default driver when a local engine answers.
package container

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"github.com/gofrs/flock"

	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/internal/wait"
)

// Name is the driver's name.
const Name = "container"

// DefaultEngineHost is the local engine the hosts run on.
const DefaultEngineHost = "unix:///var/run/docker.sock"

// Labels put on what the driver makes.
const (
	LabelMachine = "io.machine.name"
	LabelCreated = "io.machine.created" // a network the driver made (removed with its last host)
	LabelStore   = "io.machine.store"   // the store whose machine it is (CreateSpec.Owner)
)

// Privilege modes.
const (
	ModePrivileged   = "privileged"
	ModeCapabilities = "capabilities: ALL but SYS_RESOURCE, seccomp/apparmor/systempaths unconfined"
)

// Driver is one host container.
type Driver struct {
	EngineHost    string   `json:"EngineHost"`
	Image         string   `json:"Image,omitempty"`   // empty: the built-in image, built when missing
	Variant       string   `json:"Variant,omitempty"` // of the built-in image: docker (default) or base
	Release       string   `json:"Release,omitempty"` // of the built-in image: debian-11, debian-12 (default), debian-13
	Network       string   `json:"Network"`
	Subnet        string   `json:"Subnet,omitempty"` // for a network the driver makes
	IP            string   `json:"IP,omitempty"`
	ExtraNetworks []string `json:"ExtraNetworks,omitempty"`
	// CPUShares is the host's CPU weight against the local engine's other containers (0: the
	// engine's default, 1024).
	CPUShares     int    `json:"CPUShares,omitempty"`
	Privileges    string `json:"Privileges,omitempty"`
	ContainerName string `json:"ContainerName"`
	ContainerID   string `json:"ContainerID,omitempty"`
	Volume        string `json:"Volume,omitempty"`
	// CreatedNetworks are the networks this machine's create made.
	CreatedNetworks []string `json:"CreatedNetworks,omitempty"`

	progress     func(string)
	builtinImage bool // the image is the built-in one, which takes the key from the environment
}

// New returns a driver with the defaults.
func New() drivers.Driver {
	return &Driver{EngineHost: DefaultEngineHost, Network: "machine", Variant: VariantDocker}
}

// DriverName implements drivers.Driver.
func (d *Driver) DriverName() string { return Name }

func (d *Driver) say(format string, a ...any) {
	if d.progress != nil {
		d.progress(fmt.Sprintf(format, a...))
	}
}

// Client opens the local engine: never DOCKER_HOST, which `machine env` points at a machine.
func (d *Driver) Client() (*client.Client, error) {
	host := d.EngineHost
	if host == "" {
		host = DefaultEngineHost
	}
	return client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
}

// EngineError is a local engine that does not answer.
type EngineError struct {
	Host string
	Err  error
}

func (e *EngineError) Error() string {
	return fmt.Sprintf("the container driver cannot reach the Docker engine at %s (%v): start dockerd, or point --container-engine-host (MACHINE_CONTAINER_ENGINE_HOST) at a running engine", e.Host, firstLine(e.Err))
}

func (e *EngineError) Unwrap() error { return e.Err }

// Ping checks that the engine answers.
func Ping(ctx context.Context, host string) error {
	d := &Driver{EngineHost: host}
	cli, err := d.Client()
	if err != nil {
		return &EngineError{Host: host, Err: err}
	}
	defer cli.Close()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx); err != nil {
		return &EngineError{Host: host, Err: err}
	}
	return nil
}

// Validate checks everything that can be checked before a container is made.
func (d *Driver) Validate(ctx context.Context, name string) error {
	cname := d.ContainerName
	if cname == "" {
		cname = ContainerName(name)
	}
	if err := Ping(ctx, d.EngineHost); err != nil {
		return err
	}
	cli, err := d.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	if id, err := findByName(ctx, cli, cname); err == nil && id != "" {
		return fmt.Errorf("a container named %q already exists on the engine at %s: pick another machine name, or remove that container (docker rm -f %s)", cname, d.EngineHost, cname)
	}
	if d.Subnet != "" {
		if _, err := netip.ParsePrefix(d.Subnet); err != nil {
			return fmt.Errorf("--container-subnet %q is not a CIDR such as 10.30.0.0/24", d.Subnet)
		}
	}
	if d.IP != "" {
		if _, err := netip.ParseAddr(d.IP); err != nil {
			return fmt.Errorf("--container-ip %q is not an IP address", d.IP)
		}
	}
	nets, err := cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return err
	}
	var subnet string
	found := false
	for _, n := range nets {
		if n.Name == d.Network {
			found = true
			if len(n.IPAM.Config) > 0 {
				subnet = n.IPAM.Config[0].Subnet
			}
			if d.Subnet != "" && subnet != "" && subnet != d.Subnet {
				return fmt.Errorf("network %q exists with subnet %s, not %s: leave --container-subnet out, or name another network", d.Network, subnet, d.Subnet)
			}
			continue
		}
		if d.Subnet == "" {
			continue
		}
		for _, c := range n.IPAM.Config {
			if overlaps(c.Subnet, d.Subnet) {
				return fmt.Errorf("--container-subnet %s overlaps network %q (%s): choose a free range", d.Subnet, n.Name, c.Subnet)
			}
		}
	}
	if !found {
		subnet = d.Subnet
		if d.IP != "" && subnet == "" {
			return fmt.Errorf("--container-ip %s needs a network with a known subnet: network %q does not exist yet, so pass --container-subnet too", d.IP, d.Network)
		}
	}
	if d.IP != "" && subnet != "" {
		p, err := netip.ParsePrefix(subnet)
		if err == nil && !p.Contains(netip.MustParseAddr(d.IP)) {
			return fmt.Errorf("--container-ip %s is outside network %q (%s): pick an address inside it", d.IP, d.Network, subnet)
		}
	}
	for _, x := range d.ExtraNetworks {
		if x == d.Network {
			return fmt.Errorf("--container-extra-network %q is the machine's main network already", x)
		}
	}
	if d.Release != "" && Releases[d.Release] == "" {
		return fmt.Errorf("--container-image-release %q: use %s", d.Release, strings.Join(ReleaseNames(), ", "))
	}
	if d.Variant != "" && d.Variant != VariantDocker && d.Variant != VariantBase {
		return fmt.Errorf("--container-image-variant %q: use %s or %s", d.Variant, VariantDocker, VariantBase)
	}
	return nil
}

func overlaps(a, b string) bool {
	pa, err1 := netip.ParsePrefix(a)
	pb, err2 := netip.ParsePrefix(b)
	return err1 == nil && err2 == nil && pa.Overlaps(pb)
}

// lockNetworks serialises network creation and address choice across processes on this machine.
func lockNetworks(ctx context.Context) (func(), error) {
	l := flock.New(filepath.Join(os.TempDir(), "machine-container-networks.lock"))
	if _, err := l.TryLockContext(ctx, 50*time.Millisecond); err != nil {
		return nil, err
	}
	return func() { _ = l.Unlock() }, nil
}

func (d *Driver) ensureNetwork(ctx context.Context, cli client.APIClient, name, subnet string) (network.Inspect, error) {
	n, err := cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if err == nil {
		return n, nil
	}
	if !errdefs.IsNotFound(err) {
		return n, err
	}
	opts := network.CreateOptions{Driver: "bridge", Labels: map[string]string{LabelCreated: "true"}}
	// The engine finishes a create whose request was cancelled: each step runs to its end (they
	// are quick), so that an interrupt leaves either nothing or what Remove knows of.
	whole := ctx
	ctx = context.WithoutCancel(ctx)
	if subnet == "" {
		// Fixed addresses need a subnet the user configured: let the engine choose a free one
		// for a probe network of another name (another create looking for the network by its
		// name must never find the probe, which has no configured subnet), then make the
		// network with that subnet spelt out.
		removeStaleProbes(ctx, cli)
		probeName := fmt.Sprintf("%s-subnet-probe-%d-%d", name, os.Getpid(), time.Now().UnixNano())
		resp, err := cli.NetworkCreate(ctx, probeName, opts)
		if err != nil {
			return n, fmt.Errorf("creating network %q: %w", name, err)
		}
		probe, err := cli.NetworkInspect(ctx, resp.ID, network.InspectOptions{})
		_ = cli.NetworkRemove(ctx, resp.ID)
		if err != nil || len(probe.IPAM.Config) == 0 {
			return n, fmt.Errorf("creating network %q: the engine gave it no subnet: pass --container-subnet", name)
		}
		subnet = probe.IPAM.Config[0].Subnet
	}
	opts.IPAM = &network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet}}}
	d.say("creating network %s (%s)", name, subnet)
	if _, err := cli.NetworkCreate(ctx, name, opts); err != nil {
		if there, ok := existing(ctx, cli, name, err); ok {
			return there, nil
		}
		return n, fmt.Errorf("creating network %q: %w", name, err)
	}
	d.CreatedNetworks = append(d.CreatedNetworks, name)
	if err := whole.Err(); err != nil {
		return n, err
	}
	return cli.NetworkInspect(ctx, name, network.InspectOptions{})
}

// probeMark is in every probe network's name; a probe lives for the moment of one create.
const probeMark = "-subnet-probe-"

// removeStaleProbes removes probe networks a create made and could not remove (its process
// killed between the two calls): any older than a minute, which no create still uses.
func removeStaleProbes(ctx context.Context, cli client.APIClient) {
	list, err := cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", probeMark), filters.Arg("label", LabelCreated+"=true"))})
	if err != nil {
		return // the probe that follows says what is wrong with the engine
	}
	for _, n := range list {
		if strings.Contains(n.Name, probeMark) && time.Since(n.Created) > time.Minute {
			_ = cli.NetworkRemove(ctx, n.ID) // one in use by a container stays, as it should
		}
	}
}

// existing is the network a create was refused for because it exists (the engine had not yet
// listed it, or was finishing another process's removal of it): used as it is when it answers.
func existing(ctx context.Context, cli client.APIClient, name string, err error) (network.Inspect, bool) {
	if !strings.Contains(err.Error(), "already exists") {
		return network.Inspect{}, false
	}
	for range 10 {
		if n, ierr := cli.NetworkInspect(ctx, name, network.InspectOptions{}); ierr == nil {
			return n, true
		}
		if wait.Sleep(ctx, 100*time.Millisecond) != nil {
			break
		}
	}
	return network.Inspect{}, false
}

// pickIP returns the lowest address of the network that no container (running or stopped) of the
// engine holds or has asked for, and that is not taken.
func pickIP(ctx context.Context, cli client.APIClient, n network.Inspect, taken map[netip.Addr]bool) (string, error) {
	if len(n.IPAM.Config) == 0 {
		return "", fmt.Errorf("network %q has no IPv4 subnet", n.Name)
	}
	p, err := netip.ParsePrefix(n.IPAM.Config[0].Subnet)
	if err != nil {
		return "", err
	}
	used := map[netip.Addr]bool{}
	for a := range taken {
		used[a] = true
	}
	if gw, err := netip.ParseAddr(n.IPAM.Config[0].Gateway); err == nil {
		used[gw] = true
	}
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return "", err
	}
	for _, c := range list {
		if c.NetworkSettings == nil {
			continue
		}
		for name, ep := range c.NetworkSettings.Networks {
			// A created, not yet started container has no network ID yet: match by name too.
			if ep == nil || (ep.NetworkID != n.ID && name != n.Name) {
				continue
			}
			for _, s := range []string{ep.IPAddress, ipamAddr(ep)} {
				if a, err := netip.ParseAddr(s); err == nil {
					used[a] = true
				}
			}
		}
	}
	a := p.Masked().Addr().Next() // .1 is the gateway by convention; skip it anyway
	for a = a.Next(); p.Contains(a); a = a.Next() {
		if !used[a] && p.Contains(a.Next()) { // not the broadcast address
			return a.String(), nil
		}
	}
	return "", fmt.Errorf("network %q (%s) has no free address left", n.Name, p)
}

func ipamAddr(ep *network.EndpointSettings) string {
	if ep.IPAMConfig == nil {
		return ""
	}
	return ep.IPAMConfig.IPv4Address
}

// Create makes and starts the host container.
func (d *Driver) Create(ctx context.Context, spec drivers.CreateSpec) error {
	if spec.Progress != nil {
		d.progress = spec.Progress
	}
	if d.ContainerName == "" {
		d.ContainerName = ContainerName(spec.Name)
	}
	if d.Volume == "" {
		d.Volume = spec.Name + "-var-lib-docker"
	}
	if spec.Record != nil { // the names in the record before anything of them is made
		if err := spec.Record(); err != nil {
			return err
		}
	}
	cli, err := d.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	img := d.Image
	if img == "" {
		b := &ImageBuilder{Client: cli, Progress: d.progress}
		variant := d.Variant
		if variant == "" {
			variant = VariantDocker
		}
		if ok, _ := b.Has(ctx, ImageTag(variant, d.Release)); !ok {
			d.say("the host image %s is missing: building it (once)", ImageTag(variant, d.Release))
		}
		if img, err = b.Ensure(ctx, variant, d.Release, false); err != nil {
			return err
		}
		d.Image, d.builtinImage = img, true
	} else if _, err := cli.ImageInspect(ctx, img); err != nil {
		return fmt.Errorf("the host image %q is not on the engine (%v): build the built-in one with `machine image build`, or load yours", img, firstLine(err))
	}

	// Run to its end even when interrupted (the engine would finish it anyway), then stop.
	if _, err := cli.VolumeCreate(context.WithoutCancel(ctx), volume.CreateOptions{Name: d.Volume, Labels: ownLabels(spec)}); err != nil {
		return fmt.Errorf("creating volume %s: %w", d.Volume, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	modes := []string{ModePrivileged, ModeCapabilities}
	if m := rememberedMode(d.EngineHost); m == ModeCapabilities {
		modes = []string{ModeCapabilities}
	}
	pickedIP := d.IP == ""
	var lastErr error
	for _, mode := range modes {
		release, err := d.createLocked(ctx, cli, spec, mode, pickedIP)
		if err != nil {
			return err
		}
		if mode == modes[0] {
			d.say("starting container %s at %s", d.ContainerName, d.IP)
		}
		err = cli.ContainerStart(ctx, d.ContainerID, container.StartOptions{})
		release()
		if err == nil {
			d.Privileges = mode
			rememberMode(d.EngineHost, mode)
			return nil
		}
		lastErr = err
		_ = cli.ContainerRemove(ctx, d.ContainerID, container.RemoveOptions{Force: true})
		d.ContainerID = ""
		if !strings.Contains(err.Error(), "operation not permitted") && !strings.Contains(err.Error(), "caps") {
			break
		}
		d.say("the engine refuses --privileged here (%s); using an explicit capability set", firstLine(err))
	}
	return fmt.Errorf("starting the host container %s: %w", d.ContainerName, lastErr)
}

// createLocked makes the networks and picks the address while holding the lock, and reserves the
// address (a file the next pick counts as taken) so that the container is created and started
// outside the lock, side by side with other creates. Once the container exists it holds the
// address itself and the reservation goes.
// The marks stay until the caller lets go (release) once the container has started: a created
// container that has not started is not on the network yet for a remover that lists endpoints.
func (d *Driver) createLocked(ctx context.Context, cli client.APIClient, spec drivers.CreateSpec, mode string, pickIP_ bool) (release func(), err error) {
	unlock, err := lockNetworks(ctx)
	if err != nil {
		return nil, err
	}
	locked := true
	defer func() {
		if locked {
			unlock()
		}
	}()
	n, err := d.ensureNetwork(ctx, cli, d.Network, d.Subnet)
	if err != nil {
		return nil, err
	}
	for _, x := range d.ExtraNetworks {
		if _, err := d.ensureNetwork(ctx, cli, x, ""); err != nil {
			return nil, err
		}
	}
	if pickIP_ {
		if d.IP, err = pickIP(ctx, cli, n, reserved(reservations(n.Name))); err != nil {
			return nil, err
		}
	}
	// Marks on every network the container will be on, until it has started: the address taken,
	// and the network in use (a host removed meanwhile must not remove it under this create).
	var pending []string
	if d.IP != "" {
		pending = append(pending, filepath.Join(reservations(n.Name), d.IP))
	}
	for _, x := range append([]string{d.Network}, d.ExtraNetworks...) {
		pending = append(pending, filepath.Join(reservations(x), "pending-"+spec.Name))
	}
	var marked []string
	for _, p := range pending {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err == nil && os.WriteFile(p, []byte(strconv.Itoa(os.Getpid())), 0o600) == nil {
			marked = append(marked, p)
		}
	}
	release = func() {
		for _, p := range marked {
			_ = os.Remove(p)
		}
	}
	unlock()
	locked = false
	if err := d.createContainer(ctx, cli, spec, mode); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// reservations is where the addresses being handed out on a network are noted.
func reservations(network string) string {
	return filepath.Join(os.TempDir(), "machine-container-ips", network)
}

// networkPending says whether a create under way (in any process) will put a container on the
// network: it marked it (reservations) and has not made the container yet.
func networkPending(network string) bool {
	dir := reservations(network)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) > 2*time.Minute {
			continue
		}
		// A mark of a process that is gone (killed in its create) holds nothing.
		if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && len(b) > 0 {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && syscall.Kill(pid, 0) == syscall.ESRCH {
				_ = os.Remove(filepath.Join(dir, e.Name()))
				continue
			}
		}
		return true
	}
	return false
}

// reserved lists the addresses reserved in dir; reservations older than two minutes are left by
// a process that died and are removed.
func reserved(dir string) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			continue
		}
		if time.Since(info.ModTime()) > 2*time.Minute {
			_ = os.Remove(filepath.Join(dir, e.Name()))
			continue
		}
		if a, err := netip.ParseAddr(e.Name()); err == nil {
			out[a] = true
		}
	}
	return out
}

// The privilege mode that worked on an engine is remembered (in the temp folder) so that later
// creates do not try --privileged again where it is refused.
func modeFile(engineHost string) string {
	h := sha256.Sum256([]byte(engineHost))
	return filepath.Join(os.TempDir(), "machine-container-mode-"+hex.EncodeToString(h[:6]))
}

func rememberedMode(engineHost string) string {
	b, _ := os.ReadFile(modeFile(engineHost))
	return strings.TrimSpace(string(b))
}

func rememberMode(engineHost, mode string) {
	_ = os.WriteFile(modeFile(engineHost), []byte(mode+"\n"), 0o644)
}

func (d *Driver) createContainer(ctx context.Context, cli client.APIClient, spec drivers.CreateSpec, mode string) error {
	env := []string{"container=docker"}
	if spec.AuthorizedKey != "" && d.builtinImage {
		// The built-in image lets this key in at boot (recipe/configure.sh).
		env = append(env, "MACHINE_AUTHORIZED_KEY="+strings.TrimSpace(spec.AuthorizedKey))
	}
	cfg := &container.Config{
		Image:      d.Image,
		Hostname:   spec.Name,
		Env:        env,
		StopSignal: "SIGRTMIN+3",
		Labels:     ownLabels(spec),
		Tty:        true, // systemd wants a console; its output goes to the container log
	}
	hc := &container.HostConfig{
		Tmpfs: map[string]string{"/run": "rw,exec", "/run/lock": "rw", "/tmp": "rw,exec"},
		// A reboot inside the host (systemd exits) brings it back, as a machine would; an explicit
		// stop keeps it stopped.
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		Binds:         []string{"/sys/fs/cgroup:/sys/fs/cgroup:rw"},
		Mounts:        []mount.Mount{{Type: mount.TypeVolume, Source: d.Volume, Target: "/var/lib/docker"}},
		Resources:     container.Resources{CPUShares: int64(d.CPUShares)},
	}
	if mode == ModePrivileged {
		hc.Privileged = true
	} else {
		hc.CapAdd = []string{"ALL"}
		hc.CapDrop = []string{"SYS_RESOURCE"}
		hc.SecurityOpt = []string{"seccomp=unconfined", "apparmor=unconfined"}
		hc.MaskedPaths = []string{} // systempaths=unconfined
		hc.ReadonlyPaths = []string{}
		// /dev/fuse, /dev/net/tun etc. are what --privileged would add; the nested engine does
		// not need them.
	}
	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		d.Network: {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: d.IP}, Aliases: []string{spec.Name}},
	}}
	// Run to its end even when interrupted (the engine would finish it anyway): the ID is then
	// recorded and Remove finds the container.
	resp, err := cli.ContainerCreate(context.WithoutCancel(ctx), cfg, hc, nc, nil, d.ContainerName)
	if err != nil {
		return fmt.Errorf("creating the host container %s: %w", d.ContainerName, err)
	}
	d.ContainerID = resp.ID
	for _, x := range d.ExtraNetworks {
		if err := cli.NetworkConnect(ctx, x, d.ContainerID, &network.EndpointSettings{Aliases: []string{spec.Name}}); err != nil {
			return fmt.Errorf("attaching %s to network %s: %w", d.ContainerName, x, err)
		}
	}
	if spec.AuthorizedKey != "" && !d.builtinImage {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		data := []byte(strings.TrimSpace(spec.AuthorizedKey) + "\n")
		_ = tw.WriteHeader(&tar.Header{Name: "root/.ssh/", Typeflag: tar.TypeDir, Mode: 0o700})
		_ = tw.WriteHeader(&tar.Header{Name: "root/.ssh/authorized_keys", Mode: 0o600, Size: int64(len(data))})
		_, _ = tw.Write(data)
		_ = tw.Close()
		if err := cli.CopyToContainer(ctx, d.ContainerID, "/", &buf, container.CopyToContainerOptions{}); err != nil {
			return fmt.Errorf("placing the SSH key in %s: %w", d.ContainerName, err)
		}
	}
	return nil
}

func (d *Driver) inspect(ctx context.Context) (container.InspectResponse, *client.Client, error) {
	cli, err := d.Client()
	if err != nil {
		return container.InspectResponse{}, nil, err
	}
	ref, err := d.ref(ctx, cli)
	if err != nil {
		cli.Close()
		if errdefs.IsNotFound(err) {
			return container.InspectResponse{}, nil, err
		}
		return container.InspectResponse{}, nil, &EngineError{Host: d.EngineHost, Err: err}
	}
	ci, err := cli.ContainerInspect(ctx, ref)
	if err != nil {
		cli.Close()
		if errdefs.IsNotFound(err) {
			return ci, nil, err
		}
		return ci, nil, &EngineError{Host: d.EngineHost, Err: err}
	}
	return ci, cli, nil
}

// ContainerName is the host container's name for a machine: the machine's name, or, where the
// engine would refuse it (one character), the name with a prefix. The hostname stays the
// machine's name.
func ContainerName(machine string) string {
	if len(machine) < 2 {
		return "machine-" + machine
	}
	return machine
}

// ref is how the engine is asked for this machine's container: its ID, or its exact name. A name
// is never passed to the engine as it is, since the engine also takes it for a prefix of any
// container's ID.
func (d *Driver) ref(ctx context.Context, cli client.APIClient) (string, error) {
	if d.ContainerID != "" {
		return d.ContainerID, nil
	}
	id, err := findByName(ctx, cli, d.ContainerName)
	if err != nil {
		return "", err
	}
	if id == "" {
		return "", errdefs.NotFound(fmt.Errorf("no container named %s", d.ContainerName))
	}
	return id, nil
}

// findByName returns the ID of the container with exactly that name ("" when none).
func findByName(ctx context.Context, cli client.APIClient, name string) (string, error) {
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("name", "^/"+regexp.QuoteMeta(name)+"$"))})
	if err != nil {
		return "", err
	}
	for _, c := range list {
		for _, n := range c.Names {
			if n == "/"+name {
				return c.ID, nil
			}
		}
	}
	return "", nil
}

// State reads the container's state from the engine.
func (d *Driver) State(ctx context.Context) (drivers.State, error) {
	ci, cli, err := d.inspect(ctx)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return drivers.NotFound, nil
		}
		return drivers.Error, err
	}
	cli.Close()
	switch ci.State.Status {
	case "running":
		return drivers.Running, nil
	case "paused":
		return drivers.Paused, nil
	case "restarting":
		return drivers.Starting, nil
	case "removing":
		return drivers.Stopping, nil
	default:
		return drivers.Stopped, nil
	}
}

// Endpoint reads the container's addresses.
func (d *Driver) Endpoint(ctx context.Context) (drivers.Endpoint, error) {
	ep := drivers.Endpoint{IP: d.IP, SSHPort: 22, SSHUser: "root"}
	ci, cli, err := d.inspect(ctx)
	if err != nil {
		if ep.IP != "" {
			ep.Addresses = []string{ep.IP}
			return ep, nil
		}
		return ep, err
	}
	cli.Close()
	if ci.NetworkSettings != nil {
		if main, ok := ci.NetworkSettings.Networks[d.Network]; ok && main.IPAddress != "" {
			ep.IP = main.IPAddress
		}
		ep.Addresses = append(ep.Addresses, ep.IP)
		for name, n := range ci.NetworkSettings.Networks {
			if name != d.Network && n.IPAddress != "" {
				ep.Addresses = append(ep.Addresses, n.IPAddress)
			}
		}
	}
	if ep.IP == "" {
		return ep, errors.New("the host container has no address yet: is it running?")
	}
	return ep, nil
}

// Start starts the container.
func (d *Driver) Start(ctx context.Context) error {
	ci, cli, err := d.inspect(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	return cli.ContainerStart(ctx, ci.ID, container.StartOptions{})
}

// Stop stops the container; systemd shuts down on SIGRTMIN+3.
func (d *Driver) Stop(ctx context.Context) error {
	ci, cli, err := d.inspect(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	timeout := 30
	return cli.ContainerStop(ctx, ci.ID, container.StopOptions{Timeout: &timeout})
}

// Kill stops the container at once.
func (d *Driver) Kill(ctx context.Context) error {
	ci, cli, err := d.inspect(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	return cli.ContainerKill(ctx, ci.ID, "SIGKILL")
}

// Remove deletes the container, its volume, and the networks the driver made that no other
// container uses.
func (d *Driver) Remove(ctx context.Context) error {
	cli, err := d.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	if err := Ping(ctx, d.EngineHost); err != nil {
		return err
	}
	if d.ContainerName != "" || d.ContainerID != "" {
		ref, err := d.ref(ctx, cli)
		if err == nil {
			err = cli.ContainerRemove(ctx, ref, container.RemoveOptions{Force: true, RemoveVolumes: true})
		}
		if err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("removing container %s: %w", d.ContainerName, err)
		}
	}
	if d.Volume != "" {
		if err := cli.VolumeRemove(ctx, d.Volume, true); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("removing volume %s: %w", d.Volume, err)
		}
	}
	unlock, err := lockNetworks(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	for _, name := range append([]string{d.Network}, d.ExtraNetworks...) {
		n, err := cli.NetworkInspect(ctx, name, network.InspectOptions{})
		if err != nil || n.Labels[LabelCreated] != "true" {
			continue
		}
		if len(n.Containers) > 0 || networkPending(n.Name) || networkInUse(ctx, cli, n) {
			continue
		}
		if err := removeNetwork(ctx, cli, n.ID); err != nil {
			return fmt.Errorf("removing network %s: %w", name, err)
		}
	}
	return nil
}

// ownLabels mark what the driver makes for a machine: its name, and the store it belongs to.
func ownLabels(spec drivers.CreateSpec) map[string]string {
	l := map[string]string{LabelMachine: spec.Name}
	if spec.Owner != "" {
		l[LabelStore] = spec.Owner
	}
	return l
}

// RemoveLeftovers removes what the driver made for the machine name of the store owner (by
// their labels: containers, then volumes) on the engine at engineHost, and says what it
// removed: for a record too damaged, or too early, to name them. An engine that does not
// answer has nothing of ours to remove (nil).
func RemoveLeftovers(ctx context.Context, engineHost, name, owner string) ([]string, error) {
	if engineHost == "" {
		engineHost = DefaultEngineHost
	}
	if owner == "" || Ping(ctx, engineHost) != nil {
		return nil, nil
	}
	cli, err := (&Driver{EngineHost: engineHost}).Client()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	f := filters.NewArgs(filters.Arg("label", LabelMachine+"="+name), filters.Arg("label", LabelStore+"="+owner))
	var removed []string
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errdefs.IsNotFound(err) {
			return removed, fmt.Errorf("removing container %s: %w", strings.TrimPrefix(firstOr(c.Names, c.ID), "/"), err)
		}
		removed = append(removed, "container "+strings.TrimPrefix(firstOr(c.Names, c.ID), "/"))
	}
	vs, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		return removed, err
	}
	for _, v := range vs.Volumes {
		if err := cli.VolumeRemove(ctx, v.Name, true); err != nil && !errdefs.IsNotFound(err) {
			return removed, fmt.Errorf("removing volume %s: %w", v.Name, err)
		}
		removed = append(removed, "volume "+v.Name)
	}
	return removed, nil
}

func firstOr(list []string, def string) string {
	if len(list) > 0 {
		return list[0]
	}
	return def
}

// removeNetwork removes a network no container is listed on. Hosts removed at the same time
// leave it as their containers go: until their endpoints are gone the engine says "has active
// endpoints", so that is waited out while another host container on it still exists (10 s at most);
// with none left, the endpoint is one the engine lost (it happens under heavy load) and the
// network is left to it, as it is after the 10 s.
func removeNetwork(ctx context.Context, cli client.APIClient, id string) error {
	for start := time.Now(); ; {
		err := cli.NetworkRemove(ctx, id)
		switch {
		case err == nil || errdefs.IsNotFound(err):
			return nil
		case !strings.Contains(err.Error(), "active endpoints"):
			return err
		case time.Since(start) > 10*time.Second:
			return nil
		}
		hosts, lerr := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelMachine), filters.Arg("network", id))})
		if lerr == nil && len(hosts) == 0 {
			return nil
		}
		if err := wait.Sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// Describe adds the container's facts to `machine inspect`.
func (d *Driver) Describe(ctx context.Context) map[string]any {
	out := map[string]any{"Privileges": d.Privileges, "Image": d.Image}
	ci, cli, err := d.inspect(ctx)
	if err != nil {
		return out
	}
	cli.Close()
	nets := map[string]string{}
	if ci.NetworkSettings != nil {
		for name, n := range ci.NetworkSettings.Networks {
			nets[name] = n.IPAddress
		}
	}
	out["Networks"] = nets
	out["ContainerID"] = ci.ID
	out["Status"] = ci.State.Status
	return out
}

// networkInUse reports whether any container, running, stopped or only created (which has no
// network ID yet, so it is matched by name), is attached to the network.
func networkInUse(ctx context.Context, cli client.APIClient, n network.Inspect) bool {
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return true // when in doubt, keep it
	}
	for _, c := range list {
		if c.NetworkSettings == nil {
			continue
		}
		for name, ep := range c.NetworkSettings.Networks {
			if name == n.Name || (ep != nil && ep.NetworkID == n.ID) {
				return true
			}
		}
	}
	return false
}
