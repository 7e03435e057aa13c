package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/drivers/plugin"
	"github.com/machine-tools/machine/internal/store"
	"github.com/machine-tools/machine/machine"
)

// line finds the line of a YAML path such as $.nodes[1].role (0 when unknown).
func (c *Cluster) line(path string) int {
	if c.ast == nil {
		return 0
	}
	p, err := yaml.PathString(path)
	if err != nil {
		return 0
	}
	n, err := p.FilterFile(c.ast)
	if err != nil || n == nil {
		return 0
	}
	return n.GetToken().Position.Line
}

func (c *Cluster) errAt(path, format string, a ...any) error {
	if l := c.line(path); l > 0 {
		return fmt.Errorf("%s:%d: %s", c.file, l, fmt.Sprintf(format, a...))
	}
	return fmt.Errorf("%s: %s", c.file, fmt.Sprintf(format, a...))
}

// validate checks the cluster against the drivers' and the engine's option tables: names,
// types and refused options, each error with the file and line.
func (c *Cluster) validate(reg drivers.Registry) error {
	var errs []error
	if c.Version != 0 && c.Version != Version {
		errs = append(errs, c.errAt("$.version", "version %d: this machine reads version %d of the cluster file: write version: %d, or use the machine that the file was written for", c.Version, Version, Version))
	}
	if c.Name == "" {
		errs = append(errs, c.errAt("$", "the cluster needs a name"))
	}
	// Built-in drivers, and docker-machine driver plug-ins on PATH (each started once for its flags).
	plugins := map[string]drivers.Registration{}
	lookup := func(d string) (drivers.Registration, bool) {
		if r, err := reg.Get(d); err == nil {
			return r, true
		}
		if r, ok := plugins[d]; ok {
			return r, true
		}
		if _, err := plugin.Find(d); err != nil {
			return drivers.Registration{}, false
		}
		r, err := plugin.Registration(context.Background(), d, "")
		if err != nil {
			return drivers.Registration{}, false
		}
		plugins[d] = r
		return r, true
	}
	known := func(d string) bool {
		_, ok := lookup(d)
		return ok
	}
	checkOpts := func(path, driver string, opts Options) {
		r, _ := lookup(driver)
		opts = plugin.Canonical(r, opts)
		for _, k := range sortedKeys(opts) {
			if err := drivers.CheckOne(r.Options, k, opts[k], nil); err != nil {
				if errors.Is(err, drivers.ErrUnknownOption) {
					err = fmt.Errorf("the %s driver has no option %q (it has: %s)", driver, k, strings.Join(drivers.Names(r.Options), ", "))
				}
				errs = append(errs, c.errAt(path+"."+k, "%v", err))
			}
		}
	}
	if c.Driver != "" && !known(c.Driver) {
		errs = append(errs, c.errAt("$.driver", "unknown driver %q: use one of %s", c.Driver, strings.Join(reg.Names(), ", ")))
	} else if c.Driver != "" {
		checkOpts("$.driver-options", c.Driver, c.DriverOptions)
	}
	engine := machine.EngineOptionTable()
	for _, k := range sortedKeys(c.Engine) {
		if err := drivers.CheckOne(engine, k, c.Engine[k], nil); err != nil {
			if errors.Is(err, drivers.ErrUnknownOption) {
				err = fmt.Errorf("unknown engine option %q (known: %s)", k, strings.Join(drivers.Names(engine), ", "))
			}
			errs = append(errs, c.errAt("$.engine."+k, "%v", err))
		}
	}
	if len(errs) == 0 && len(c.Engine) > 0 {
		// The values too (a version, a CA file), as a create would take them.
		if _, err := machine.ParseEngineOptions(c.Engine, func(k string) string { return "engine." + k }); err != nil {
			errs = append(errs, c.errAt("$.engine", "%v", err))
		}
	}
	if len(c.Nodes) == 0 {
		errs = append(errs, c.errAt("$", "the cluster has no nodes"))
	}
	if len(c.Nodes) > MaxNodes {
		errs = append(errs, c.errAt("$.nodes", "%d nodes, more than the %d a cluster file may have", len(c.Nodes), MaxNodes))
	}
	seen := map[string]bool{}
	managers := 0
	for i, n := range c.Nodes {
		p := fmt.Sprintf("$.nodes[%d]", i)
		switch {
		case n.Name == "":
			errs = append(errs, c.errAt(p, "node %d has no name", i+1))
		case store.ValidateNewName(n.Name) != nil:
			errs = append(errs, c.errAt(p+".name", "invalid node name %q: use letters, digits, dots (not two in a row) and hyphens (not at the start or end of a part), starting with a letter or digit, at most 63", n.Name))
		case seen[n.Name]:
			errs = append(errs, c.errAt(p+".name", "node %q is listed twice", n.Name))
		}
		seen[n.Name] = true
		switch n.Role {
		case Manager:
			managers++
		case Worker:
		default:
			errs = append(errs, c.errAt(p+".role", "node %q: role %q: use manager or worker", n.Name, n.Role))
		}
		switch n.Availability {
		case "", "active", "pause", "drain":
		default:
			errs = append(errs, c.errAt(p+".availability", "node %q: availability %q: use active, pause or drain", n.Name, n.Availability))
		}
		d := c.DriverName(n)
		switch {
		case d == "":
			errs = append(errs, c.errAt(p, "node %q has no driver, and the cluster names no default driver", n.Name))
		case !known(d):
			errs = append(errs, c.errAt(p+".driver", "node %q: unknown driver %q: use one of %s", n.Name, d, strings.Join(reg.Names(), ", ")))
		default:
			checkOpts(p+".driver-options", d, n.DriverOptions)
		}
	}
	if len(c.Nodes) > 0 && managers == 0 {
		errs = append(errs, c.errAt("$.nodes", "the cluster has no manager: give one node `role: manager`"))
	}
	netSeen := map[string]bool{}
	for i, n := range c.Networks {
		p := fmt.Sprintf("$.networks[%d]", i)
		if n.Name == "" {
			errs = append(errs, c.errAt(p, "network %d has no name", i+1))
		}
		if netSeen[n.Name] {
			errs = append(errs, c.errAt(p+".name", "network %q is listed twice", n.Name))
		}
		netSeen[n.Name] = true
		if n.Driver != "" && n.Driver != "overlay" {
			errs = append(errs, c.errAt(p+".driver", "network %q: driver %q: swarm networks are overlay", n.Name, n.Driver))
		}
	}
	for i, im := range c.Images {
		p := fmt.Sprintf("$.images[%d]", i)
		if im.Name == "" {
			errs = append(errs, c.errAt(p, "image %d has no name", i+1))
		}
		if im.Source != "" && im.Source != "registry" && im.Source != "local" {
			errs = append(errs, c.errAt(p+".source", "image %q: source %q: use registry or local", im.Name, im.Source))
		}
	}
	if v := c.Swarm.CertExpiry; v != "" {
		if d, err := time.ParseDuration(v); err != nil || d < MinCertExpiry {
			errs = append(errs, c.errAt("$.swarm.cert-expiry", "cert-expiry %q: give a duration of at least 1h (swarm's shortest), such as 720h (swarm's default is 2160h)", v))
		}
	}
	return errors.Join(errs...)
}
