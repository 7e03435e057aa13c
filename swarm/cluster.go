package swarm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/drivers/container"
	"github.com/machine-tools/machine/drivers/plugin"
	"github.com/machine-tools/machine/internal/store"
	"github.com/machine-tools/machine/machine"
)

// Cluster is a cluster file: the machines of a swarm, their roles, networks and images.
// See docs/cluster-file.md.
type Cluster struct {
	Name          string        `yaml:"name"`
	Driver        string        `yaml:"driver"`
	DriverOptions Options       `yaml:"driver-options"`
	Engine        Options       `yaml:"engine"`
	Nodes         []ClusterNode `yaml:"nodes"`
	Networks      []Network     `yaml:"networks"`
	Images        []Image       `yaml:"images"`
	Swarm         SwarmOptions  `yaml:"swarm"`

	file string
	ast  *ast.File
}

// SwarmOptions are the swarm's own settings.
type SwarmOptions struct {
	// RoutingMesh: the ingress network, which routes a published port from every node to the
	// service's tasks (default true). false removes it right after the swarm starts, before
	// any node joins: published ports then need `mode=host`, and each join and the swarm at
	// rest cost about half (no ingress sandbox on every node: docs/performance.md).
	RoutingMesh *bool `yaml:"routing-mesh"`
}

// RoutingMesh says whether the file wants the swarm's routing mesh (the ingress network).
func (c *Cluster) RoutingMesh() bool { return c.Swarm.RoutingMesh == nil || *c.Swarm.RoutingMesh }

// Options are flag values by name (without the driver's or engine's prefix): a string, a
// number, a boolean, or a list of them for repeatable flags.
type Options map[string]any

// ClusterNode is one machine of the cluster.
type ClusterNode struct {
	Name          string            `yaml:"name"`
	Role          string            `yaml:"role"` // manager or worker (default)
	Driver        string            `yaml:"driver"`
	DriverOptions Options           `yaml:"driver-options"`
	Labels        map[string]string `yaml:"labels"`       // swarm node labels
	Availability  string            `yaml:"availability"` // active (default), pause, drain
	AdvertiseAddr string            `yaml:"advertise-addr"`
}

// Network is an overlay network to create.
type Network struct {
	Name       string `yaml:"name"`
	Driver     string `yaml:"driver"` // overlay (default)
	Attachable bool   `yaml:"attachable"`
	Subnet     string `yaml:"subnet"`
}

// Image is an image every node gets before it is needed: from a registry (the default) or
// streamed from the local engine (source: local).
type Image struct {
	Name   string `yaml:"name"`
	Source string `yaml:"source"` // registry (default) or local
}

// UnmarshalYAML accepts a plain string as an image from a registry.
func (i *Image) UnmarshalYAML(b []byte) error {
	var s string
	if err := yaml.Unmarshal(b, &s); err == nil && s != "" {
		i.Name = s
		return nil
	}
	type plain Image
	return yaml.UnmarshalWithOptions(b, (*plain)(i), yaml.DisallowUnknownField())
}

// Role of a node, with the default.
func (n ClusterNode) RoleOrDefault() string {
	if n.Role == "" {
		return "worker"
	}
	return n.Role
}

// DriverName of a node, with the cluster's default.
func (c *Cluster) DriverName(n ClusterNode) string {
	if n.Driver != "" {
		return n.Driver
	}
	return c.Driver
}

// containerNodes counts the nodes made by the container driver (on this machine's engine).
func (c *Cluster) containerNodes() int {
	n := 0
	for _, node := range c.Nodes {
		if d := c.DriverName(node); d == "" || d == container.Name {
			n++
		}
	}
	return n
}

// Managers and Workers list the nodes by role, in file order.
func (c *Cluster) Managers() []ClusterNode { return c.byRole("manager") }
func (c *Cluster) Workers() []ClusterNode  { return c.byRole("worker") }

func (c *Cluster) byRole(role string) []ClusterNode {
	var out []ClusterNode
	for _, n := range c.Nodes {
		if n.RoleOrDefault() == role {
			out = append(out, n)
		}
	}
	return out
}

// Load reads a cluster file and validates it against the built-in drivers' and the engine's
// options: what Up takes.
func Load(path string) (*Cluster, error) {
	c, err := LoadCluster(path)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(machine.Drivers()); err != nil {
		return nil, fmt.Errorf("the cluster file has errors:\n%w", err)
	}
	return c, nil
}

// LoadCluster reads and checks a cluster file. Errors name the file and line.
func LoadCluster(path string) (*Cluster, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the cluster file: %w", err)
	}
	return ParseCluster(path, b)
}

var yamlPos = regexp.MustCompile(`^\[(\d+):(\d+)\]\s*`)

// Bounds on a cluster file, checked before it is decoded: its size, and YAML aliases (a chain
// of anchors that alias each other grows exponentially as it is expanded).
const (
	MaxFileSize = 1 << 20
	MaxAliases  = 1000
	MaxNodes    = 1000
	// MaxDepth bounds how deeply collections nest: the YAML parser's memory grows with the square
	// of the depth (20,000 levels of `[` took 1.3 GB before its own depth error), so deeper files
	// are refused before they are parsed. A cluster file needs 5.
	MaxDepth = 16
)

// nestingDepth finds where a YAML text first nests collections more than max levels deep, by
// reading it as text: flow collections ([ and {, outside quoted scalars and comments) and block
// sequences that open on one line ("- - - x"). 0 when it never does.
func nestingDepth(b []byte, max int) (line int) {
	flow := 0
	ln := 1
	for i := 0; i < len(b); {
		// At a line's start: its block sequence entries ("- - x"), counted with the open flows.
		j := i
		for j < len(b) && b[j] == ' ' {
			j++
		}
		dashes := 0
		for j < len(b) && b[j] == '-' && (j+1 == len(b) || b[j+1] == ' ' || b[j+1] == '\n') {
			dashes++
			j++
			for j < len(b) && b[j] == ' ' {
				j++
			}
		}
		if flow+dashes > max {
			return ln
		}
		var quote byte
		prev := byte(' ')
		for ; j < len(b) && b[j] != '\n'; j++ {
			c := b[j]
			switch {
			case quote == '"' && c == '\\':
				j++ // an escaped character
			case quote != 0 && c == quote:
				quote = 0
			case quote != 0:
			case (c == '"' || c == '\'') && strings.IndexByte(" \t[{,:", prev) >= 0:
				quote = c
			case c == '#' && (prev == ' ' || prev == '\t'):
				for j+1 < len(b) && b[j+1] != '\n' { // a comment: the rest of the line
					j++
				}
			case c == '[' || c == '{':
				if flow++; flow+dashes > max {
					return ln
				}
			case (c == ']' || c == '}') && flow > 0:
				flow--
			}
			prev = c
		}
		ln++
		i = j + 1
	}
	return 0
}

// checkYAML refuses what would make the decoder blow up or crash: an oversized file, anchors
// whose content holds aliases (nested expansion), too many aliases.
func checkYAML(name string, b []byte) (f *ast.File, err error) {
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("%s: the file is %d bytes, more than a cluster file's %d", name, len(b), MaxFileSize)
	}
	if line := nestingDepth(b, MaxDepth); line > 0 {
		return nil, fmt.Errorf("%s:%d: collections nest more than %d levels deep here: a cluster file needs a few; check the brackets and dashes", name, line, MaxDepth)
	}
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("%s: the YAML could not be read (%v): check its syntax", name, r)
		}
	}()
	f, err = parser.ParseBytes(b, 0)
	if err != nil {
		return nil, nil // the decoder reports syntax errors with their line
	}
	aliases := 0
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		for _, a := range ast.Filter(ast.AnchorType, doc.Body) {
			if an, ok := a.(*ast.AnchorNode); ok && an.Value != nil && len(ast.Filter(ast.AliasType, an.Value)) > 0 {
				return nil, fmt.Errorf("%s:%d: the anchor &%s holds aliases: nested YAML aliases are not allowed in a cluster file (they expand exponentially)", name, an.GetToken().Position.Line, an.Name)
			}
		}
		aliases += len(ast.Filter(ast.AliasType, doc.Body))
	}
	if aliases > MaxAliases {
		return nil, fmt.Errorf("%s: %d YAML aliases, more than the %d a cluster file may have", name, aliases, MaxAliases)
	}
	return f, nil
}

// ParseCluster parses a cluster file's content.
func ParseCluster(name string, b []byte) (c *Cluster, err error) {
	f, err := checkYAML(name, b)
	if err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("%s: the YAML could not be read (%v): check its syntax", name, r)
		}
	}()
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil, fmt.Errorf("%s: the cluster file is empty: it needs a name and nodes (see docs/cluster-file.md)", name)
	}
	c = &Cluster{file: name}
	switch errs := fileProblems(name, f); len(errs) {
	case 0:
	case 1:
		return nil, errs[0]
	default:
		return nil, fmt.Errorf("the cluster file has errors:\n%w", errors.Join(errs...))
	}
	// Decoded from the tree already parsed (parsing again would double the memory: the parser
	// takes about 400 bytes for every byte of YAML).
	decode := func() error { return yaml.UnmarshalWithOptions(b, c, yaml.DisallowUnknownField()) }
	if f != nil && len(f.Docs) == 1 && f.Docs[0] != nil && f.Docs[0].Body != nil {
		decode = func() error { return yaml.NodeToValue(f.Docs[0].Body, c, yaml.DisallowUnknownField()) }
	}
	if err := decode(); err != nil {
		msg := yaml.FormatError(err, false, false)
		if m := yamlPos.FindStringSubmatch(msg); m != nil {
			return nil, fmt.Errorf("%s:%s: %s", name, m[1], strings.TrimSpace(strings.SplitN(msg[len(m[0]):], "\n", 2)[0]))
		}
		return nil, fmt.Errorf("%s: %s", name, strings.SplitN(msg, "\n", 2)[0])
	}
	c.ast = f
	return c, nil
}

// Line finds the line of a YAML path such as $.nodes[1].role (0 when unknown).
func (c *Cluster) Line(path string) int {
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
	if l := c.Line(path); l > 0 {
		return fmt.Errorf("%s:%d: %s", c.file, l, fmt.Sprintf(format, a...))
	}
	return fmt.Errorf("%s: %s", c.file, fmt.Sprintf(format, a...))
}

// Validate checks the cluster against the drivers' and the engine's option tables: names,
// types and refused options, each error with the file and line.
func (c *Cluster) Validate(reg drivers.Registry) error {
	var errs []error
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
		switch n.RoleOrDefault() {
		case "manager":
			managers++
		case "worker":
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
	return errors.Join(errs...)
}

// QuorumWarning explains an even number of managers.
func QuorumWarning(managers int) string {
	if managers < 2 || managers%2 == 1 {
		return ""
	}
	tol := (managers - 1) / 2
	return fmt.Sprintf("%d managers tolerate the loss of %d, no more than %d would (a majority of %d must stay up): an odd number is better",
		managers, tol, managers-1, managers/2+1)
}

func sortedKeys(o Options) []string {
	var ks []string
	for k := range o {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// NodeOptions are a node's driver options: the cluster's (when the node has the cluster's
// driver) with the node's own on top.
func (c *Cluster) NodeOptions(n ClusterNode) Options {
	opts := Options{}
	if c.DriverName(n) == c.Driver {
		maps.Copy(opts, c.DriverOptions)
	}
	maps.Copy(opts, n.DriverOptions)
	// A manager container outweighs the workers when the machine is short of CPU: its raft
	// heartbeats and the dispatcher's keep the swarm's leader and its nodes (a global service
	// starting on a hundred container hosts of two cores lost the leader without it).
	if _, set := opts["cpu-shares"]; !set && c.DriverName(n) == container.Name && n.RoleOrDefault() == "manager" {
		opts["cpu-shares"] = ManagerCPUShares
	}
	return opts
}

// ManagerCPUShares is the CPU weight of a container-host manager made by swarm up (the engine's
// default is 1024).
const ManagerCPUShares = 8192

// CreateOptions are how a node's machine is made.
func (c *Cluster) CreateOptions(n ClusterNode) (machine.CreateOptions, error) {
	engine, err := machine.ParseEngineOptions(c.Engine, func(k string) string { return "engine." + k })
	if err != nil {
		return machine.CreateOptions{}, fmt.Errorf("%s: %w", c.file, err)
	}
	return machine.CreateOptions{
		Driver:        c.DriverName(n),
		DriverOptions: c.NodeOptions(n),
		Engine:        engine,
		OptionLabel:   func(d, o string) string { return "driver option " + o },
	}, nil
}
