package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/machine-tools/machine/drivers"
)

// Driver is a machine whose host a plug-in makes and manages. What the plug-in keeps of the
// host (its GetConfigRaw: an instance ID, an address, its SSH key's path) is Config, saved in
// the machine's record and handed back (SetConfigRaw) before every later call. Every call starts
// the plug-in and closes it after: no plug-in process outlives the command.
type Driver struct {
	Name   string          `json:"Plugin"`
	Config json.RawMessage `json:"Config,omitempty"`

	// values are the create flags' values by the plug-in's flag names (set by the option table).
	values    map[string]any
	flags     []Flag
	storePath string
	progress  func(string)
}

// DriverName implements drivers.Driver.
func (d *Driver) DriverName() string { return d.Name }

// createGrace: a create interrupted while the plug-in's Create runs is let finish (so that its
// Remove then knows what it made) for at most this long.
const createGrace = 2 * time.Minute

// session runs fn on a started plug-in that holds the machine's configuration, and keeps the
// configuration it has after.
func (d *Driver) session(ctx context.Context, fn func(c *client) error) error {
	path, err := Find(d.Name)
	if err != nil {
		return fmt.Errorf("Driver %q not found. Do you have the plugin binary %q accessible in your PATH?", d.Name, BinaryName(d.Name))
	}
	c, err := start(ctx, d.Name, path, func(line string) {
		// Its log as progress lines, less libmachine's own chatter about the plug-in's life.
		if d.progress != nil && !strings.Contains(line, "Closing plugin on server side") {
			d.progress(drivers.PlainLine(line))
		}
	})
	if err != nil {
		return err
	}
	defer c.close()
	if len(d.Config) > 0 {
		if err := c.call(ctx, "SetConfigRaw", []byte(d.Config), nil); err != nil {
			return fmt.Errorf("handing the plug-in its configuration: %w", err)
		}
	}
	ferr := fn(c)
	// What the plug-in knows now (also after a failure: what it made so far).
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeGrace)
	defer cancel()
	var raw []byte
	if err := c.call(cctx, "GetConfigRaw", struct{}{}, &raw); err == nil && json.Valid(raw) {
		d.Config = raw
	}
	return ferr
}

// Create implements drivers.Driver: the flags, the plug-in's own checks, its configuration in
// the record, then its Create.
func (d *Driver) Create(ctx context.Context, spec drivers.CreateSpec) error {
	if spec.Progress != nil {
		d.progress = func(s string) { spec.Progress(s) }
	}
	d.storePath = spec.Owner
	return d.fresh(ctx, spec.Name, func(c *client) error {
		var raw []byte
		if err := c.call(ctx, "GetConfigRaw", struct{}{}, &raw); err == nil && json.Valid(raw) {
			d.Config = raw
		}
		if spec.Record != nil {
			if err := spec.Record(); err != nil {
				return err
			}
		}
		// Interrupted: its Create is let finish, so that what it made is in its configuration
		// for the Remove that follows.
		return c.callWithGrace(ctx, createGrace, "Create", struct{}{}, nil)
	})
}

// Validate implements drivers.Validator: the flags and the plug-in's PreCreateCheck, before
// anything is made.
func (d *Driver) Validate(ctx context.Context, name string) error {
	return d.fresh(ctx, name, func(c *client) error {
		if err := c.call(ctx, "PreCreateCheck", struct{}{}, nil); err != nil {
			return fmt.Errorf("the %s plug-in's checks: %w", d.Name, err)
		}
		return nil
	})
}

// fresh runs fn on a plug-in given a new machine's first configuration (its name and this store)
// and the create flags, as docker-machine's create does.
func (d *Driver) fresh(ctx context.Context, name string, fn func(c *client) error) error {
	base, err := json.Marshal(baseDriver{MachineName: name, StorePath: d.storePath})
	if err != nil {
		return err
	}
	d.Config = base
	return d.session(ctx, func(c *client) error {
		if err := d.setFlags(ctx, c); err != nil {
			return err
		}
		return fn(c)
	})
}

// setFlags sends every flag of the plug-in: the given value, else its default (false for a
// boolean), as docker-machine does; and docker-machine's classic swarm flags, which drivers read.
func (d *Driver) setFlags(ctx context.Context, c *client) error {
	values := map[string]any{"swarm-master": false, "swarm-host": "", "swarm-discovery": ""}
	for _, f := range d.flags {
		switch f := f.(type) {
		case *StringFlag:
			values[f.Name] = f.Value
		case *StringSliceFlag:
			values[f.Name] = append([]string{}, f.Value...)
		case *IntFlag:
			values[f.Name] = f.Value
		case *BoolFlag:
			values[f.Name] = false
		}
	}
	for k, v := range d.values {
		values[k] = v
	}
	var opts any = rpcFlags{Values: values}
	err := c.call(ctx, "SetConfigFromFlags", &opts, nil)
	if err != nil && strings.Contains(err.Error(), "rpcdriver.RPCFlags") { // built against an older libmachine
		opts = rpcFlagsV0{Values: values}
		err = c.call(ctx, "SetConfigFromFlags", &opts, nil)
	}
	if err != nil {
		return fmt.Errorf("the %s plug-in refused its flags: %w", d.Name, err)
	}
	return nil
}

// Remove implements drivers.Driver.
func (d *Driver) Remove(ctx context.Context) error {
	return d.session(ctx, func(c *client) error { return c.call(ctx, "Remove", struct{}{}, nil) })
}

// State implements drivers.Driver.
func (d *Driver) State(ctx context.Context) (drivers.State, error) {
	var s State
	err := d.session(ctx, func(c *client) error { return c.call(ctx, "GetState", struct{}{}, &s) })
	if err != nil {
		return drivers.Error, err
	}
	switch s {
	case StateRunning:
		return drivers.Running, nil
	case StateStopped, StateSaved:
		return drivers.Stopped, nil
	case StatePaused:
		return drivers.Paused, nil
	case StateStarting:
		return drivers.Starting, nil
	case StateStopping:
		return drivers.Stopping, nil
	}
	return drivers.Error, nil
}

// Endpoint implements drivers.Driver: the address, SSH's host, port and user, and the SSH key
// the plug-in made or was given.
func (d *Driver) Endpoint(ctx context.Context) (drivers.Endpoint, error) {
	var ep drivers.Endpoint
	err := d.session(ctx, func(c *client) error {
		if err := c.call(ctx, "GetIP", struct{}{}, &ep.IP); err != nil {
			return fmt.Errorf("the plug-in's address (GetIP): %w", err)
		}
		if err := c.call(ctx, "GetSSHHostname", struct{}{}, &ep.SSHHost); err != nil {
			ep.SSHHost = ""
		}
		if err := c.call(ctx, "GetSSHPort", struct{}{}, &ep.SSHPort); err != nil {
			return fmt.Errorf("the plug-in's SSH port: %w", err)
		}
		if err := c.call(ctx, "GetSSHUsername", struct{}{}, &ep.SSHUser); err != nil {
			return fmt.Errorf("the plug-in's SSH user: %w", err)
		}
		return c.call(ctx, "GetSSHKeyPath", struct{}{}, &ep.SSHKeyPath)
	})
	if ep.SSHPort == 0 {
		ep.SSHPort = 22
	}
	if ep.IP == "" && err == nil {
		err = errors.New("the plug-in gives no address for the host")
	}
	return ep, err
}

// Start, Stop, Restart and Kill implement drivers.Starter, Restarter and Killer through the
// plug-in (one that cannot says so in its own words).
func (d *Driver) Start(ctx context.Context) error   { return d.simple(ctx, "Start") }
func (d *Driver) Stop(ctx context.Context) error    { return d.simple(ctx, "Stop") }
func (d *Driver) Restart(ctx context.Context) error { return d.simple(ctx, "Restart") }
func (d *Driver) Kill(ctx context.Context) error    { return d.simple(ctx, "Kill") }

func (d *Driver) simple(ctx context.Context, method string) error {
	return d.session(ctx, func(c *client) error { return c.call(ctx, method, struct{}{}, nil) })
}

// Registration is the driver entry of plug-in name (found on PATH): its options are the
// plug-in's create flags, read by starting it once. storePath is the store machines are made
// in (where the plug-in keeps its files, as under docker-machine).
func Registration(ctx context.Context, name, storePath string) (drivers.Registration, error) {
	path, err := Find(name)
	if err != nil {
		return drivers.Registration{}, err
	}
	c, err := start(ctx, name, path, nil)
	if err != nil {
		return drivers.Registration{}, err
	}
	defer c.close()
	var flags []Flag
	if err := c.call(ctx, "GetCreateFlags", struct{}{}, &flags); err != nil {
		return drivers.Registration{}, fmt.Errorf("the plug-in %s's flags (GetCreateFlags): %w", path, err)
	}
	sort.Slice(flags, func(i, j int) bool { return flags[i].flagName() < flags[j].flagName() })
	reg := drivers.Registration{
		Name:  name,
		Usage: "a docker-machine driver plug-in (" + path + ")",
		New: func() drivers.Driver {
			return &Driver{Name: name, flags: flags, storePath: storePath}
		},
		Plugin:    true,
		BareFlags: true,
	}
	for _, f := range flags {
		reg.Options = append(reg.Options, option(f))
	}
	return reg, nil
}

// option is a plug-in flag as an option of machine's table, under the plug-in's own flag name.
func option(f Flag) drivers.Option {
	set := func() func(*drivers.Settings, any) error {
		return func(s *drivers.Settings, val any) error {
			d, ok := s.Driver.(*Driver)
			if !ok {
				return fmt.Errorf("internal error: a plug-in option given to a %T", s.Driver)
			}
			if d.values == nil {
				d.values = map[string]any{}
			}
			d.values[f.flagName()] = val
			return nil
		}
	}
	switch f := f.(type) {
	case *StringFlag:
		return drivers.Option{Name: f.Name, EnvVar: f.EnvVar, Usage: f.Usage, Default: f.Value, Set: set()}
	case *StringSliceFlag:
		return drivers.Option{Name: f.Name, EnvVar: f.EnvVar, Usage: f.Usage, Default: append([]string(nil), f.Value...), Set: set()}
	case *IntFlag:
		return drivers.Option{Name: f.Name, EnvVar: f.EnvVar, Usage: f.Usage, Default: f.Value, Set: set()}
	case *BoolFlag:
		return drivers.Option{Name: f.Name, EnvVar: f.EnvVar, Usage: f.Usage, Default: false, Set: set()}
	}
	return drivers.Option{}
}

// Loaded is the driver entry of a plug-in's machine read from the store: no options, and the
// plug-in is not started until a call needs it.
func Loaded(name, storePath string) drivers.Registration {
	return drivers.Registration{Name: name, Plugin: true, BareFlags: true, New: func() drivers.Driver { return &Driver{Name: name, storePath: storePath} }}
}

// Canonical names options as a plug-in's table does: a cluster file may leave out the driver's
// name in front (server-type for hetzner-server-type), as it does for built-in drivers.
func Canonical(reg drivers.Registration, given map[string]any) map[string]any {
	if !reg.Plugin || len(given) == 0 {
		return given
	}
	out := make(map[string]any, len(given))
	for k, v := range given {
		if _, ok := drivers.Find(reg.Options, k); !ok {
			if _, ok := drivers.Find(reg.Options, reg.Name+"-"+k); ok {
				k = reg.Name + "-" + k
			}
		}
		out[k] = v
	}
	return out
}
