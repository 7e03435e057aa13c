package swarm

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"

	"github.com/machine-tools/machine/internal/fanout"
	"github.com/machine-tools/machine/machine"
)

// Observe reads the live cluster that the file describes: the store's machines and their
// engine options, and, through the first of the file's managers that answers as one, the
// swarm's nodes, networks and which nodes have the file's images. It changes nothing.
func Observe(ctx context.Context, a *machine.API, c *Cluster) (Observed, *Node, error) {
	obs := Observed{Machines: map[string]bool{}, Nodes: map[string]ObservedNode{}, Engines: map[string]machine.EngineOptions{},
		Networks: map[string]bool{}, Images: map[string]map[string]bool{}}
	names, err := a.List()
	if err != nil {
		return obs, nil, err
	}
	for _, n := range names {
		obs.Machines[n] = true
		if h, err := a.Load(n); err == nil {
			obs.Engines[n] = h.Engine
		}
	}
	// A manager that answers: the file's managers first, then any machine of the file.
	var candidates []string
	for _, n := range c.Managers() {
		candidates = append(candidates, n.Name)
	}
	for _, n := range c.Workers() {
		candidates = append(candidates, n.Name)
	}
	var via *Node
	for _, n := range candidates {
		if !obs.Machines[n] {
			continue
		}
		node, err := OpenNode(a, n)
		if err != nil {
			continue
		}
		if st, err := node.Inspect(ctx); err == nil && st.Active && st.Manager {
			via = node
			break
		}
		node.Close()
	}
	if via == nil {
		return obs, nil, nil
	}
	obs.InSwarm = true
	list, err := via.Docker.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		via.Close()
		return obs, nil, err
	}
	machineOf, err := machineFinder(a)
	if err != nil {
		via.Close()
		return obs, nil, err
	}
	for _, x := range list {
		name := machineOf(x.Status.Addr, x.Description.Hostname)
		if name == "" {
			name = x.Description.Hostname
		}
		on := ObservedNode{Machine: name, ID: x.ID, Ready: x.Status.State == swarm.NodeStateReady, Reachable: true,
			Availability: string(x.Spec.Availability), Labels: map[string]string{}}
		for k, v := range x.Spec.Labels {
			on.Labels[k] = v
		}
		if x.ManagerStatus != nil {
			on.Manager, on.Leader = true, x.ManagerStatus.Leader
			on.Reachable = x.ManagerStatus.Reachability == swarm.ReachabilityReachable
		}
		if old, dup := obs.Nodes[name]; dup && old.Ready && !on.Ready {
			continue // a node that left and joined again: the live entry counts
		}
		obs.Nodes[name] = on
	}
	nets, err := via.Docker.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("driver", "overlay"))})
	if err == nil {
		for _, n := range nets {
			obs.Networks[n.Name] = true
			obs.Ingress = obs.Ingress || n.Ingress
		}
	}
	if len(c.Images) > 0 {
		var present []string
		for _, n := range c.Nodes {
			if obs.Machines[n.Name] {
				present = append(present, n.Name)
			}
		}
		has, _ := fanout.Map(ctx, present, 0, func(ctx context.Context, name string) (map[string]bool, error) {
			out := map[string]bool{}
			node, err := OpenNode(a, name)
			if err != nil {
				return out, nil
			}
			defer node.Close()
			for _, im := range c.Images {
				if _, err := node.Docker.ImageInspect(ctx, im.Name); err == nil {
					out[im.Name] = true
				}
			}
			return out, nil
		})
		for i, name := range present {
			for im := range has[i] {
				if obs.Images[im] == nil {
					obs.Images[im] = map[string]bool{}
				}
				obs.Images[im][name] = true
			}
		}
	}
	return obs, via, nil
}

// PlanFor observes the live cluster and plans the changes that bring it to the file: what
// `swarm plan` prints and `swarm up` applies.
func PlanFor(ctx context.Context, a *machine.API, c *Cluster, o PlanOptions) ([]Change, error) {
	obs, via, err := Observe(ctx, a, c)
	if via != nil {
		via.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("reading the live cluster: %w", err)
	}
	return Plan(c, obs, o)
}
