package swarm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/swarm"

	"github.com/machine-tools/machine/internal/fanout"
	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm/cluster"
)

// DownOptions tune Down.
type DownOptions struct {
	// KeepMachines leaves the swarm but keeps the machines.
	KeepMachines bool
	// Force takes the swarm down even when it has nodes that the file does not name (they are
	// left in a swarm without managers).
	Force    bool
	Progress func(node, msg string)
}

func (o DownOptions) say(node, msg string) {
	if o.Progress != nil {
		o.Progress(node, msg)
	}
}

// Down takes every node out of the swarm in an order that keeps quorum to the end (workers,
// then managers one by one, the manager it goes through last), then removes the machines. It
// goes through the first of the file's managers that answers; nodes whose engines do not
// answer are removed from the swarm's list through it. A swarm with nodes that the file does not
// name is left alone unless Force.
func Down(ctx context.Context, api *machine.API, c *cluster.Cluster, o DownOptions) error {
	r := newRun(api, c)
	r.down = o
	return r.do(ctx, downSteps)
}

// downSteps are what `swarm down` does, in order.
var downSteps = []step{
	{"reach", (*run).reachAll},                    // every machine of the file, and a manager
	{"listing the swarm's nodes", (*run).listIDs}, // refused here when the swarm has others
	{"removing it from the swarm", (*run).removeDown},
	{"leaving the swarm", (*run).leaveAll}, // workers at once, managers one by one, the last last
	{"removing the machine", (*run).removeMachines},
}

// reachAll opens the file's machines and reads their swarm states at once; the manager to go
// through is the first that answers as one.
func (r *run) reachAll(ctx context.Context) error {
	for _, n := range r.c.Nodes {
		if !r.api.Exists(n.Name) {
			r.down.say(n.Name, "no such machine: nothing to do")
			continue
		}
		o, err := r.open(n.Name)
		if err != nil {
			return &StepError{n.Name, "opening its engine", err}
		}
		r.nodes[n.Name] = o
	}
	r.alive = probe(ctx, r.nodes)
	r.first = liveManager(r.c, r.alive, r.nodes)
	return nil
}

// listIDs reads the swarm's node IDs of the file's machines through the manager, and refuses
// a swarm with nodes the file does not name unless forced.
func (r *run) listIDs(ctx context.Context) error {
	r.ids = map[string]string{}
	if r.first == nil {
		return nil
	}
	list, err := r.first.Docker.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return r.fail(r.first.Name, err)
	}
	machineOf, err := machineFinder(r.api)
	if err != nil {
		return err
	}
	var foreign []string
	for _, x := range list {
		name := machineOf(x.Status.Addr, x.Description.Hostname)
		if r.nodes[name] != nil {
			r.ids[name] = x.ID
			continue
		}
		foreign = append(foreign, fmt.Sprintf("%s (%s)", x.Description.Hostname, x.Status.Addr))
	}
	if len(foreign) > 0 && !r.down.Force {
		return fmt.Errorf("the swarm of %s has nodes that %s does not name: %s; `swarm down` would leave them in a swarm without managers: take them out first (`machine swarm leave NAME`, or `docker swarm leave` on them), or pass --force",
			r.first.Name, r.c.Name, strings.Join(foreign, ", "))
	}
	return nil
}

// removeDown takes the nodes whose engines do not answer out of the swarm's list through the
// manager (a manager demoted first, which keeps quorum while the others answer). Failures are
// kept for the end: the others still leave.
func (r *run) removeDown(ctx context.Context) error {
	for _, name := range order(r.c) {
		if _, ok := r.alive[name]; ok || r.nodes[name] == nil {
			continue
		}
		if r.first == nil || r.ids[name] == "" {
			r.down.say(name, "its engine does not answer: nothing to leave")
			continue
		}
		r.down.say(name, "its engine does not answer: removing it from the swarm through "+r.first.Name)
		if err := removeDead(ctx, r.first, r.ids[name]); err != nil {
			r.errs = append(r.errs, r.fail(name, err))
		}
	}
	return nil
}

// leaveAll makes the others leave: workers at once, then managers one by one (in the reverse
// of the file's order), the manager gone through last.
func (r *run) leaveAll(ctx context.Context) error {
	via := r.first
	var ws []*Node
	for _, w := range r.c.Workers() {
		if _, ok := r.alive[w.Name]; ok && r.nodes[w.Name] != via {
			ws = append(ws, r.nodes[w.Name])
		}
	}
	groups := [][]*Node{ws}
	managers := r.c.Managers()
	for i := len(managers) - 1; i >= 0; i-- {
		if _, ok := r.alive[managers[i].Name]; ok && r.nodes[managers[i].Name] != via {
			groups = append(groups, []*Node{r.nodes[managers[i].Name]})
		}
	}
	if via != nil {
		groups = append(groups, []*Node{via})
	}
	for _, group := range groups {
		r.errs = append(r.errs, fanout.Each(ctx, group, 0, nil, func(ctx context.Context, n *Node) error {
			v := via
			if v == n {
				v = nil
			}
			res, err := Leave(ctx, []*Node{n}, v)
			if err != nil {
				return r.fail(n.Name, err)
			}
			r.down.say(n.Name, res[n.Name])
			return nil
		}))
	}
	return errors.Join(r.errs...)
}

func (r *run) removeMachines(ctx context.Context) error {
	if r.down.KeepMachines {
		return nil
	}
	return fanout.Each(ctx, slices.Sorted(maps.Keys(r.nodes)), 0, nil, func(ctx context.Context, name string) error {
		if err := r.api.Remove(ctx, name, false); err != nil {
			return r.fail(name, err)
		}
		r.down.say(name, "removed")
		return nil
	})
}

// removeDead takes a node whose engine does not answer out of the swarm through manager m:
// demoted first when it is a manager, then removed by force (the swarm may refuse for a while
// to remove a manager it has just demoted: asked again for 30 s).
func removeDead(ctx context.Context, m *Node, id string) error {
	if _, err := updateNode(ctx, m, id, func(spec *swarm.NodeSpec) bool {
		if spec.Role == swarm.NodeRoleWorker {
			return false
		}
		spec.Role = swarm.NodeRoleWorker
		return true
	}); err != nil && !strings.Contains(err.Error(), "can't find manager in raft memberlist") {
		// (a manager of a cluster forced anew is out of raft already: it is removed as it is)
		return fmt.Errorf("demoting it through %s: %w", m.Name, err)
	}
	if err := removeNode(ctx, m, id); err != nil {
		return fmt.Errorf("through %s: %w", m.Name, err)
	}
	return nil
}
