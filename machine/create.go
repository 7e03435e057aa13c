package machine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/drivers/container"
	"github.com/machine-tools/machine/drivers/plugin"
	"github.com/machine-tools/machine/internal/fanout"
	"github.com/machine-tools/machine/internal/fsutil"
	"github.com/machine-tools/machine/internal/sshclient"
	"github.com/machine-tools/machine/internal/store"
	"github.com/machine-tools/machine/provision"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// CreateOptions say how a machine is made. Everything has a default: CreateOptions{} makes a
// container host with the built-in image.
type CreateOptions struct {
	// Driver is the driver's name (default: container, when a local Docker engine answers).
	Driver string
	// DriverOptions are the driver's options by name, as a cluster file's driver-options has
	// them: {"ip-address": "203.0.113.5", "ssh-key": "~/.ssh/id_ed25519"} for generic. See
	// the driver's Registration().Options.
	DriverOptions map[string]any
	Engine        EngineOptions
	// TLSSANs are extra names and addresses for the engine's certificate.
	TLSSANs []string
	// InsecureHostKey neither pins nor checks the host's SSH key (throw-away hosts only).
	InsecureHostKey bool
	// SSHWait bounds the wait for SSH once the host is made (default: the driver's figure).
	SSHWait time.Duration
	// Progress hears short status lines; Download wraps image downloads (VM drivers).
	Progress func(string)
	Download DownloadProgress
	// OptionLabel names a driver option in errors (the CLI: its flag); default: the name.
	OptionLabel func(driver, option string) string
}

// PreCreateError is a driver's check before anything is made that failed, in docker-machine's
// words (its exit status was 3).
type PreCreateError struct{ Err error }

func (e *PreCreateError) Error() string { return "Error with pre-create check: " + e.Err.Error() }
func (e *PreCreateError) Unwrap() error { return e.Err }

// ErrNoLocalEngine is a create with no driver named and no local Docker engine to default to.
var ErrNoLocalEngine = errors.New("no --driver given and no local Docker engine answers")

// CreateError is a create that stopped: in which phase, and whether something is left.
type CreateError struct {
	Machine, Phase string
	Err            error
	Left           bool // something is left that `machine rm -f` removes
}

func (e *CreateError) Error() string {
	tail := "; nothing was left behind"
	if e.Left {
		tail = fmt.Sprintf("; remove what is left with `machine rm -f %s`", e.Machine)
	}
	return fmt.Sprintf("creating %q failed while %s: %v%s", e.Machine, e.Phase, e.Err, tail)
}

func (e *CreateError) Unwrap() error { return e.Err }

// Create makes, reaches and provisions a new machine: its checks first (nothing is made when
// one fails), then createSteps. When a step fails after the record was made, what was made is
// removed; if that fails too, the record stays for `machine rm -f`.
func (a *API) Create(ctx context.Context, name string, o CreateOptions) (*Host, error) {
	if err := store.ValidateNewName(name); err != nil {
		return nil, err
	}
	if err := provision.CheckEngine(o.Engine, func(n string) string { return "--engine-" + n }); err != nil {
		return nil, err
	}
	interrupted := func(err error) error {
		if ctx.Err() != nil { // Ctrl-C during the checks: say that, not what it broke
			return fmt.Errorf("creating %q: interrupted before anything was made (%v)", name, context.Cause(ctx))
		}
		return err
	}
	reg, set, err := a.configure(ctx, o)
	if err != nil {
		return nil, interrupted(err)
	}
	if a.Store.Exists(name) {
		return nil, &store.ExistsError{Name: name}
	}
	if v, ok := set.Driver.(drivers.Validator); ok {
		if err := v.Validate(ctx, name); err != nil {
			return nil, interrupted(&PreCreateError{Err: err})
		}
	}
	if set.SSHKey != "" {
		if _, err := os.Stat(set.SSHKey); err != nil {
			return nil, fmt.Errorf("the SSH key %s cannot be read (%v): pass the path of a private key", set.SSHKey, err)
		}
	}
	d := set.Driver
	m := &store.Machine{Name: name, DriverName: d.DriverName(), Engine: o.Engine, TLSSANs: o.TLSSANs}
	if set.EnginePort != 0 {
		m.Engine.Port = set.EnginePort
	}
	if m.Engine.Port == 0 {
		m.Engine.Port = 2376
	}
	// Under way for as long as this process runs it, from the moment its folder exists: `ls`
	// says Creating, `rm -f` waits its turn.
	release, err := a.Store.ReserveHeld(m)
	if err != nil {
		return nil, err
	}
	defer release()
	c := &creation{a: a, o: o, reg: reg, set: set, h: &Host{Machine: m, Driver: d, reg: reg, api: a}}
	defer func() {
		if c.ssh != nil {
			c.ssh.Close()
		}
	}()
	for _, st := range createSteps {
		if err := st.do(c, ctx); err != nil {
			phase := st.name
			var pe *phaseErr
			if errors.As(err, &pe) {
				phase, err = pe.phase, pe.err
			}
			return nil, c.fail(ctx, phase, err)
		}
		if c.done {
			break
		}
	}
	return c.h, nil
}

// creation is one create under way: what its steps share.
type creation struct {
	a      *API
	o      CreateOptions
	reg    drivers.Registration
	set    drivers.Settings
	h      *Host
	made   bool              // the driver was asked to make the host: Remove undoes it
	pubKey string            // the key the host lets in
	ssh    *sshclient.Client // the first connection, for the provisioning
	done   bool              // no step is left (an engine machine did not make)
}

// A createStep is one named step of a create; its name is the phase a CreateError names (a
// step whose error is a phaseErr names a finer one).
type createStep struct {
	name string
	do   func(c *creation, ctx context.Context) error
}

type phaseErr struct {
	phase string
	err   error
}

func (e *phaseErr) Error() string { return e.phase + ": " + e.err.Error() }

// createSteps are what a create does after its checks, in order.
var createSteps = []createStep{
	{"saving its record", (*creation).save},
	{"making the SSH key", (*creation).sshKey},
	{"creating the host", (*creation).createHost},
	{"saving its record", (*creation).save},
	{"reading the host's address", (*creation).endpoint},
	{"placing the client certificate", (*creation).engineOnly}, // the none driver's last step
	{"recording how SSH reaches the host", (*creation).recordSSH},
	{"saving its record", (*creation).save},
	{"connecting over SSH", (*creation).connect}, // booting and the host's keys on the way
	{"reading the host's address", (*creation).probeAddress},
	{"provisioning", (*creation).provision},
	{"saving its record", (*creation).ready},
}

func (c *creation) say(s string) {
	if c.o.Progress != nil {
		c.o.Progress(s)
	}
}

// fail undoes what was made (the host, then the record) and names the phase; when the undoing
// fails, the record stays, Failed, for `machine rm -f`.
func (c *creation) fail(ctx context.Context, phase string, err error) error {
	h, name := c.h, c.h.Name
	if errors.Is(ctx.Err(), context.Canceled) {
		err = fmt.Errorf("%w (interrupted)", err)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	var rerr error
	if c.made {
		rerr = h.Driver.Remove(cctx)
	}
	if rerr == nil {
		rerr = c.a.Store.Remove(name)
	}
	if rerr != nil {
		h.State, h.LastError = store.StateFailed, err.Error()
		_ = h.Save()
		return &CreateError{Machine: name, Phase: phase, Err: err, Left: true}
	}
	return &CreateError{Machine: name, Phase: phase, Err: err}
}

func (c *creation) save(ctx context.Context) error { return c.h.Save() }

// sshKey gives the machine its SSH key: the one given (copied), none (the agent's, for drivers
// that take the user's key), the plug-in's own, or a new one.
func (c *creation) sshKey(ctx context.Context) error {
	h, sshKey := c.h, c.set.SSHKey
	useAgent := c.reg.UserKey && sshKey == ""
	if sshKey != "" {
		b, err := os.ReadFile(sshKey)
		if err != nil {
			return &phaseErr{"reading the SSH key", err}
		}
		if err := fsutil.WriteFileAtomic(h.SSHKeyPath(), b, 0o600); err != nil {
			return &phaseErr{"copying the SSH key", err}
		}
		if pub, err := os.ReadFile(sshKey + ".pub"); err == nil {
			c.pubKey = string(pub)
			_ = fsutil.WriteFileAtomic(h.SSHKeyPath()+".pub", pub, 0o644)
		}
		h.SSH.KeyPath = h.SSHKeyPath()
	} else if !useAgent && !c.reg.Plugin { // a plug-in makes or takes its host's key itself
		pub, err := GenerateSSHKey(h.SSHKeyPath(), "machine-"+h.Name)
		if err != nil {
			return err
		}
		c.pubKey = pub
		h.SSH.KeyPath = h.SSHKeyPath()
	}
	h.SSH.UseAgent = useAgent
	h.SSH.InsecureHostKey = c.o.InsecureHostKey
	return nil
}

func (c *creation) createHost(ctx context.Context) error {
	c.say("creating the host")
	c.made = true
	h, d := c.h, c.h.Driver
	spec := drivers.CreateSpec{Name: h.Name, AuthorizedKey: c.pubKey, Progress: c.o.Progress, Download: c.o.Download, Record: h.Save, Owner: c.a.owner()}
	if err := d.Create(ctx, spec); err != nil {
		return &phaseErr{"creating the host with the " + d.DriverName() + " driver", err}
	}
	return nil
}

func (c *creation) endpoint(ctx context.Context) error {
	ep, err := c.h.Driver.Endpoint(ctx)
	if err != nil {
		return err
	}
	c.h.setEndpoint(ep)
	if c.reg.NoSSH && ep.EnginePort != 0 {
		c.h.Engine.Port = ep.EnginePort
	}
	return nil
}

// engineOnly finishes an engine machine did not make (the none driver): recorded, with the
// store's client certificate for env; nothing on it is changed.
func (c *creation) engineOnly(ctx context.Context) error {
	if !c.reg.NoSSH {
		return nil
	}
	auth, err := c.a.Store.Authority(ctx)
	if err == nil {
		_, err = c.h.ensureCerts(ctx, auth, false)
	}
	if err != nil {
		return err
	}
	c.h.State, c.h.LastError = store.StateReady, ""
	if err := c.h.Save(); err != nil {
		return &phaseErr{"saving its record", err}
	}
	c.done = true
	return nil
}

func (c *creation) recordSSH(ctx context.Context) error {
	if c.set.SSHUser != "" {
		c.h.SSH.User = c.set.SSHUser
	}
	return c.h.applySSH(c.set)
}

// connect waits for the host's SSH (while the driver watches the boot), pins its host keys
// (read from the driver where it can tell them, else those offered now) and connects.
func (c *creation) connect(ctx context.Context) error {
	h, d := c.h, c.h.Driver
	via := ""
	if n := len(h.SSH.Jumps); n > 0 {
		via = fmt.Sprintf(" via %s@%s", h.SSH.Jumps[n-1].User, net.JoinHostPort(h.SSH.Jumps[n-1].Host, strconv.Itoa(h.SSH.Jumps[n-1].Port)))
	}
	c.say(fmt.Sprintf("waiting for SSH at %s%s", net.JoinHostPort(h.SSH.Host, strconv.Itoa(h.SSH.Port)), via))
	wait := c.o.SSHWait
	if wait == 0 {
		wait = c.reg.SSHWaitOrDefault()
	}
	dctx, cancel := context.WithTimeout(ctx, wait)
	bootErr := watchBoot(dctx, cancel, d)
	cfg := h.SSHConfig()
	cfg.Pin = true // first contact: keys not known yet are trusted now (generic hosts: TOFU)
	if c.reg.Plugin && !h.SSH.InsecureHostKey {
		c.say("a plug-in cannot tell its host's SSH key: the key the host offers now is pinned")
	}
	if hk, ok := d.(drivers.HostKeyReader); ok && !h.SSH.InsecureHostKey {
		n, err := h.pinHostKeys(dctx, hk)
		if err != nil {
			cancel()
			if berr := <-bootErr; berr != nil {
				return &phaseErr{"booting", berr}
			}
			return &phaseErr{"reading the host's SSH keys", err}
		}
		cfg.Pin = n == 0
	}
	cl, err := sshclient.Dial(dctx, cfg)
	cancel()
	if err := <-bootErr; err != nil {
		if cl != nil {
			cl.Close()
		}
		return &phaseErr{"booting", err}
	}
	if err != nil {
		return err
	}
	c.ssh = cl
	return nil
}

func (c *creation) probeAddress(ctx context.Context) error {
	if _, ok := c.h.Driver.(drivers.AddressProber); ok {
		c.say("reading the host's address")
		if err := c.h.ProbeAddress(ctx, c.ssh); err != nil {
			return err
		}
	}
	c.h.learnSiblings(ctx, c.ssh)
	return nil
}

func (c *creation) provision(ctx context.Context) error {
	_, err := c.h.Provision(ctx, c.ssh, ProvisionOptions{Progress: c.o.Progress})
	return err
}

func (c *creation) ready(ctx context.Context) error {
	c.h.State, c.h.LastError = store.StateReady, ""
	return c.h.Save()
}

// configure finds the driver and applies its options (given ones, and the defaults).
func (a *API) configure(ctx context.Context, o CreateOptions) (drivers.Registration, drivers.Settings, error) {
	name := o.Driver
	if name == "" {
		host, _ := o.DriverOptions["engine-host"].(string)
		if host == "" {
			host = container.DefaultEngineHost
		}
		if err := container.Ping(ctx, host); err != nil {
			return drivers.Registration{}, drivers.Settings{}, fmt.Errorf("%w at %s: start dockerd for container hosts, or pass --driver generic", ErrNoLocalEngine, host)
		}
		name = container.Name
	}
	reg, err := a.Driver(ctx, name)
	if err != nil {
		return reg, drivers.Settings{}, err
	}
	set := drivers.Settings{Driver: reg.New()}
	label := func(opt string) string {
		if o.OptionLabel != nil {
			return o.OptionLabel(name, opt)
		}
		return opt
	}
	if err := drivers.Apply(reg.Options, &set, plugin.Canonical(reg, o.DriverOptions), label); err != nil {
		return reg, set, err
	}
	return reg, set, nil
}

// Remove removes the machine's host (through its driver) and its folder. With force, a driver
// error does not keep the folder.
//
// A create under way in another process is not removed (its process is asked to stop first); a
// record too damaged or too early to name the host has its container host found by the labels
// the container driver puts on what it makes. Whatever could not be removed is an error, also
// with force (the record is then removed and the error says what is left).
func (a *API) Remove(ctx context.Context, name string, force bool) error {
	if pid, busy := a.Store.CreateUnderWay(name); busy {
		return fmt.Errorf("machine %q is being created now (process %d): stop that create (Ctrl-C) or wait for it, then remove it", name, pid)
	}
	h, err := a.Load(name)
	if err != nil {
		if !force || !a.Store.Exists(name) {
			return err
		}
		// A damaged record: what the container driver made for it, found by its labels.
		_, lerr := container.RemoveLeftovers(ctx, container.DefaultEngineHost, name, a.owner())
		if err := a.Store.Remove(name); err != nil {
			return errors.Join(err, lerr)
		}
		if lerr != nil {
			return fmt.Errorf("its record was removed, but not all of its host: %w", lerr)
		}
		return nil
	}
	var hostErr error
	if h.Driver != nil {
		if err := h.Driver.Remove(ctx); err != nil {
			if ctx.Err() != nil {
				// Interrupted: the record stays, so that the host it names is not left behind
				// without one (force or not: a record removed over a live host was made again
				// by a later create that found its container, or its old engine state).
				return fmt.Errorf("removing the host of %q: %w", name, context.Cause(ctx))
			}
			if !force {
				return fmt.Errorf("removing the host of %q: %w (use -f to remove the machine's record anyway)", name, err)
			}
			hostErr = err
		}
	}
	if hostErr == nil && h.DriverName == container.Name {
		// A create stopped before its record named the container (an older machine's record).
		if c, ok := h.Driver.(*container.Driver); ok {
			_, hostErr = container.RemoveLeftovers(ctx, c.EngineHost, name, a.owner())
		}
	}
	if hostErr != nil && ctx.Err() != nil {
		return fmt.Errorf("removing the host of %q: %w", name, context.Cause(ctx))
	}
	if err := a.Store.Remove(name); err != nil {
		return errors.Join(err, hostErr)
	}
	if hostErr != nil {
		return fmt.Errorf("its record was removed, but its host could not be (%w): remove that by hand", hostErr)
	}
	return nil
}

// owner names this store on what drivers make (CreateSpec.Owner): its folder.
func (a *API) owner() string {
	root, err := filepath.Abs(a.Store.Root)
	if err != nil {
		return a.Store.Root
	}
	return root
}

// DriverJSON is the driver's settings, for `machine inspect`.
func (h *Host) DriverJSON() map[string]any {
	var m map[string]any
	b, _ := json.Marshal(h.Driver)
	_ = json.Unmarshal(b, &m)
	return m
}

// StorePath is the machine's folder, for DOCKER_CERT_PATH.
func (h *Host) StorePath() string { return filepath.Clean(h.Dir()) }

// watchBoot asks a BootChecker driver every half second, until ctx ends, whether its host has
// failed to come up; on a failure it cancels the wait. The channel gives that failure (or nil)
// once ctx has ended.
func watchBoot(ctx context.Context, cancel context.CancelFunc, d drivers.Driver) <-chan error {
	out := make(chan error, 1)
	bc, ok := d.(drivers.BootChecker)
	if !ok {
		out <- nil
		return out
	}
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				out <- nil
				return
			case <-t.C:
				if err := bc.CheckBoot(ctx); err != nil && ctx.Err() == nil {
					out <- err
					cancel()
					return
				}
			}
		}
	}()
	return out
}

// Removed is what RemoveAll did to one machine.
type Removed struct {
	Name    string
	Err     error
	Context bool // the Docker context named after it was removed too
}

// RemoveAll removes the named machines at once (as Remove does) and the Docker contexts that
// `machine context` made for them.
func (a *API) RemoveAll(ctx context.Context, names []string, force bool) []Removed {
	out, _ := fanout.Map(ctx, names, 0, func(ctx context.Context, n string) (Removed, error) {
		r := Removed{Name: n}
		if !a.Exists(n) {
			r.Err = &store.NotFoundError{Name: n}
		} else if r.Err = a.Remove(ctx, n, force); r.Err == nil {
			r.Context, _ = RemoveDockerContext(n)
		}
		return r, nil
	})
	for i, n := range names {
		if out[i].Name == "" { // not started: ctx ended first
			out[i] = Removed{Name: n, Err: ctx.Err()}
		}
	}
	return out
}

// applySSH records what the driver's options resolved beyond the endpoint: jump hosts (their
// own keys copied into the machine's folder, 0600), the ssh_config alias and file, timeouts, and
// host keys known before the first connection (pinned now, so the first connection verifies).
func (h *Host) applySSH(set drivers.Settings) error {
	h.SSH.Alias, h.SSH.ConfigFile = set.SSH.Alias, set.SSH.ConfigFile
	h.SSH.ConnectTimeout, h.SSH.ServerAliveInterval = set.SSH.ConnectTimeout, set.SSH.ServerAliveInterval
	h.SSH.Jumps = nil
	for i, j := range set.SSH.Jumps {
		if j.KeyPath != "" {
			b, err := os.ReadFile(j.KeyPath)
			if err != nil {
				return fmt.Errorf("the key of jump host %s: %w", j.Host, err)
			}
			j.KeyPath = filepath.Join(h.Dir(), fmt.Sprintf("jump-%d.key", i))
			if err := fsutil.WriteFileAtomic(j.KeyPath, b, 0o600); err != nil {
				return err
			}
		}
		h.SSH.Jumps = append(h.SSH.Jumps, j)
	}
	h.setDialer()
	if len(set.SSHHostKeys) == 0 {
		return nil
	}
	return fsutil.WriteFileAtomic(h.KnownHostsPath(), []byte(strings.Join(set.SSHHostKeys, "\n")+"\n"), 0o600)
}

// setDialer gives a drivers.Tunneled driver the way through the machine's jump hosts.
func (h *Host) setDialer() {
	t, ok := h.Driver.(drivers.Tunneled)
	if !ok || len(h.SSH.Jumps) == 0 {
		return
	}
	t.SetDialer(func(ctx context.Context, _, addr string) (net.Conn, error) {
		return sshclient.DialThrough(ctx, h.SSHConfig(), addr)
	})
}

// pinHostKeys writes the host keys a driver read from the host itself into the machine's
// known_hosts, before any SSH connection; it returns how many.
func (h *Host) pinHostKeys(ctx context.Context, hk drivers.HostKeyReader) (int, error) {
	lines, err := hk.HostKeys(ctx)
	if err != nil || len(lines) == 0 {
		return 0, err
	}
	addr := knownhosts.Normalize(net.JoinHostPort(h.SSH.Host, strconv.Itoa(h.SSH.Port)))
	var out []string
	for _, l := range lines {
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(l))
		if err != nil {
			return 0, fmt.Errorf("the host's key %q: %w", l, err)
		}
		out = append(out, knownhosts.Line([]string{addr}, key))
	}
	h.api.log().Debug("host keys read from the host itself, pinned before the first SSH connection", "machine", h.Name, "keys", len(out))
	return len(out), fsutil.WriteFileAtomic(h.KnownHostsPath(), []byte(strings.Join(out, "\n")+"\n"), 0o600)
}

// Driver finds a driver by name: a built-in one, else the docker-machine driver plug-in
// docker-machine-driver-NAME on PATH (started once to read its flags). Neither: docker-machine's
// words, then the built-in drivers.
func (a *API) Driver(ctx context.Context, name string) (drivers.Registration, error) {
	reg, err := a.Drivers.Get(name)
	if err == nil {
		return reg, nil
	}
	if _, ferr := plugin.Find(name); ferr != nil {
		return reg, fmt.Errorf("Driver %q not found. Do you have the plugin binary %q accessible in your PATH? (built in: %s)", name, plugin.BinaryName(name), strings.Join(a.Drivers.Names(), ", "))
	}
	return plugin.Registration(ctx, name, a.owner())
}
