// Package cluster is the cluster file: the machines of a swarm, their roles, networks and
// images, read and checked (Load, Parse) before anything is made. See docs/cluster-file.md.
package cluster

import (
	"fmt"
	"maps"
	"sort"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/machine-tools/machine/drivers/container"
	"github.com/machine-tools/machine/machine"
)

// Version is the version of the cluster file this package reads. A file may say which it is
// written for (`version: 1`); one that says another is refused rather than read by guess.
const Version = 1

// Cluster is a cluster file.
type Cluster struct {
	Version       int          `yaml:"version"`
	Name          string       `yaml:"name"`
	Driver        string       `yaml:"driver"`
	DriverOptions Options      `yaml:"driver-options"`
	Engine        Options      `yaml:"engine"`
	Nodes         []Node       `yaml:"nodes"`
	Networks      []Network    `yaml:"networks"`
	Images        []Image      `yaml:"images"`
	Swarm         SwarmOptions `yaml:"swarm"`

	file string
	ast  *ast.File
}

// File is the name the cluster was read from, which errors name.
func (c *Cluster) File() string { return c.file }

// SwarmOptions are the swarm's own settings.
type SwarmOptions struct {
	// RoutingMesh: the ingress network, which routes a published port from every node to the
	// service's tasks (default true; unset on container hosts whose kernel has no IPVS, where
	// it cannot work: off when the swarm starts, left as it is after). false removes it right
	// after the swarm starts, before any node joins: published ports then need `mode=host`, and
	// each join and the swarm at rest cost about half (no ingress sandbox on every node:
	// docs/performance.md).
	RoutingMesh *bool `yaml:"routing-mesh"`
	// Autolock: managers keep their raft keys encrypted at rest and a manager whose engine
	// restarts stays locked until unlocked (swarm's --autolock). The store keeps the unlock
	// key; machine unlocks the managers it finds locked. Unset: left as the swarm has it.
	Autolock *bool `yaml:"autolock"`
	// CertExpiry is how long the nodes' swarm TLS certificates are valid (swarm's
	// --cert-expiry, a Go duration: 720h; swarm's default 2160h, at least 1h). Swarm renews a
	// running node's certificate before it ends; a node off for longer must join again (up
	// does). Empty: left as the swarm has it.
	CertExpiry string `yaml:"cert-expiry"`
}

// MinCertExpiry is the shortest node certificate validity swarm accepts.
const MinCertExpiry = time.Hour

// CertExpiry is the file's node certificate validity; 0 when it gives none (or an invalid one,
// which validation refuses).
func (c *Cluster) CertExpiry() time.Duration {
	d, err := time.ParseDuration(c.Swarm.CertExpiry)
	if err != nil {
		return 0
	}
	return d
}

// RoutingMesh says whether the file wants the swarm's routing mesh (the ingress network).
func (c *Cluster) RoutingMesh() bool { return c.Swarm.RoutingMesh == nil || *c.Swarm.RoutingMesh }

// Options are flag values by name (without the driver's or engine's prefix): a string, a
// number, a boolean, or a list of them for repeatable flags.
type Options map[string]any

// Role is a node's part in the swarm.
type Role string

// The roles. A node of the file without one is a worker.
const (
	Manager Role = "manager"
	Worker  Role = "worker"
)

// ParseRole reads a role as a user gives it (`--role`).
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case Manager, Worker:
		return r, nil
	}
	return "", fmt.Errorf("role %q: use manager or worker", s)
}

// Node is one machine of the cluster.
type Node struct {
	Name          string            `yaml:"name"`
	Role          Role              `yaml:"role"` // Worker when the file gives none
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

// DriverName of a node, with the cluster's default.
func (c *Cluster) DriverName(n Node) string {
	if n.Driver != "" {
		return n.Driver
	}
	return c.Driver
}

// ContainerNodes counts the nodes made by the container driver (on this machine's engine).
func (c *Cluster) ContainerNodes() int {
	n := 0
	for _, node := range c.Nodes {
		if d := c.DriverName(node); d == "" || d == container.Name {
			n++
		}
	}
	return n
}

// Managers and Workers list the nodes by role, in file order.
func (c *Cluster) Managers() []Node { return c.byRole(Manager) }
func (c *Cluster) Workers() []Node  { return c.byRole(Worker) }

func (c *Cluster) byRole(role Role) []Node {
	var out []Node
	for _, n := range c.Nodes {
		if n.Role == role {
			out = append(out, n)
		}
	}
	return out
}

// Node is the file's node of that name (false: the file does not name it).
func (c *Cluster) Node(name string) (Node, bool) {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
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
func (c *Cluster) NodeOptions(n Node) Options {
	opts := Options{}
	if c.DriverName(n) == c.Driver {
		maps.Copy(opts, c.DriverOptions)
	}
	maps.Copy(opts, n.DriverOptions)
	// A manager container outweighs the workers when the machine is short of CPU: its raft
	// heartbeats and the dispatcher's keep the swarm's leader and its nodes (a global service
	// starting on a hundred container hosts of two cores lost the leader without it).
	if _, set := opts["cpu-shares"]; !set && c.DriverName(n) == container.Name && n.Role == Manager {
		opts["cpu-shares"] = ManagerCPUShares
	}
	return opts
}

// ManagerCPUShares is the CPU weight of a container-host manager made by swarm up (the engine's
// default is 1024).
const ManagerCPUShares = 8192

// CreateOptions are how a node's machine is made.
func (c *Cluster) CreateOptions(n Node) (machine.CreateOptions, error) {
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
