package swarm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/machine-tools/machine/internal/wait"
)

// Skew is a replicated service whose running tasks sit on the nodes it may run on less evenly
// than they could: some node has two or more tasks more than another (swarm places tasks when
// they start and never moves them: a node back from maintenance, or added, stays empty).
type Skew struct {
	Service  string         `json:"service"`
	Replicas uint64         `json:"replicas"`
	PerNode  map[string]int `json:"per_node"` // running tasks by node host name; 0 for an empty one
}

// Spread is the tasks per node, most first ("3-3-0").
func (s Skew) Spread() string {
	counts := slices.Collect(maps.Values(s.PerNode))
	slices.Sort(counts)
	slices.Reverse(counts)
	var parts []string
	for _, c := range counts {
		parts = append(parts, fmt.Sprint(c))
	}
	return strings.Join(parts, "-")
}

func (s Skew) String() string {
	return fmt.Sprintf("service %s: %d replicas on %d nodes as %s (`machine swarm rebalance` spreads it)", s.Service, s.Replicas, len(s.PerNode), s.Spread())
}

// skewOf is sv's skew over the nodes that may run its tasks, or nil when it is spread as evenly
// as it can be or is not the rebalancer's to move: global services, fewer than two replicas,
// and services pinned by placement constraints or a per-node maximum are left alone.
func skewOf(sv swarm.Service, tasks []swarm.Task, nodes []swarm.Node) *Skew {
	r := sv.Spec.Mode.Replicated
	if r == nil || r.Replicas == nil || *r.Replicas < 2 {
		return nil
	}
	if p := sv.Spec.TaskTemplate.Placement; p != nil && (len(p.Constraints) > 0 || p.MaxReplicas > 0) {
		return nil
	}
	per := map[string]int{}
	byID := map[string]string{}
	for _, n := range nodes {
		if n.Status.State == swarm.NodeStateReady && n.Spec.Availability == swarm.NodeAvailabilityActive {
			per[n.Description.Hostname] = 0
			byID[n.ID] = n.Description.Hostname
		}
	}
	if len(per) < 2 {
		return nil
	}
	for _, t := range tasks {
		if host, ok := byID[t.NodeID]; ok && t.ServiceID == sv.ID && t.Status.State == swarm.TaskStateRunning {
			per[host]++
		}
	}
	counts := slices.Collect(maps.Values(per))
	if slices.Max(counts)-slices.Min(counts) <= 1 {
		return nil
	}
	return &Skew{Service: sv.Spec.Name, Replicas: *r.Replicas, PerNode: per}
}

// Skews reads, through manager m, the replicated services whose tasks could be spread more
// evenly (only those named, when names are given), sorted by name.
func Skews(ctx context.Context, m *Node, names ...string) ([]Skew, error) {
	services, err := m.Docker.ServiceList(ctx, swarm.ServiceListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing services through %s: %w", m.Name, err)
	}
	for _, n := range names {
		if !slices.ContainsFunc(services, func(sv swarm.Service) bool { return sv.Spec.Name == n }) {
			return nil, fmt.Errorf("the swarm has no service %q (`docker service ls` through machine env %s lists them)", n, m.Name)
		}
	}
	nodes, err := m.Docker.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return nil, err
	}
	tasks, err := m.Docker.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("desired-state", "running"))})
	if err != nil {
		return nil, err
	}
	var out []Skew
	for _, sv := range services {
		if len(names) > 0 && !slices.Contains(names, sv.Spec.Name) {
			continue
		}
		if s := skewOf(sv, tasks, nodes); s != nil {
			out = append(out, *s)
		}
	}
	slices.SortFunc(out, func(a, b Skew) int { return strings.Compare(a.Service, b.Service) })
	return out, nil
}

// rebalanceLimit bounds the wait for one service's redeploy.
var rebalanceLimit = 10 * time.Minute

// Rebalance spreads the skewed services (those named, or all) again: one service at a time, a
// forced update (its tasks replaced as its own update config says, the scheduler placing each
// new task on the least loaded node), waited for until the update has completed; it stops at
// the first service whose update does not complete. A service that would replace more tasks at
// once than maxUnavailable allows is refused before anything changes. progress hears each
// service's spread before and after.
func Rebalance(ctx context.Context, m *Node, names []string, maxUnavailable int, progress func(service, msg string)) ([]Skew, error) {
	if maxUnavailable < 1 {
		maxUnavailable = 1
	}
	skews, err := Skews(ctx, m, names...)
	if err != nil {
		return nil, err
	}
	for _, s := range skews { // every refusal before anything changes
		sv, _, err := m.Docker.ServiceInspectWithRaw(ctx, s.Service, swarm.ServiceInspectOptions{})
		if err != nil {
			return nil, err
		}
		if p := parallelism(sv); p == 0 || p > uint64(maxUnavailable) {
			n := "all of its"
			if p > 0 {
				n = fmt.Sprint(p)
			}
			return nil, fmt.Errorf("service %s replaces %s tasks at once (its update config), more than --max-unavailable %d allows: `docker service update --update-parallelism %d %s` first, or raise --max-unavailable", s.Service, n, maxUnavailable, maxUnavailable, s.Service)
		}
	}
	var done []Skew
	for _, s := range skews {
		if progress != nil {
			progress(s.Service, fmt.Sprintf("%d replicas as %s: redeployed to spread them", s.Replicas, s.Spread()))
		}
		if err := redeploy(ctx, m, s.Service); err != nil {
			return done, err
		}
		after, err := Skews(ctx, m, s.Service)
		if err != nil {
			return done, err
		}
		msg := "spread evenly"
		if len(after) > 0 {
			msg = "still " + after[0].Spread() + " (the scheduler placed its tasks so: constraints of the nodes, or resources)"
		}
		if progress != nil {
			progress(s.Service, msg)
		}
		done = append(done, s)
	}
	return done, nil
}

// parallelism is how many tasks the service's update replaces at once (swarm's default: 1).
func parallelism(sv swarm.Service) uint64 {
	if sv.Spec.UpdateConfig == nil {
		return 1
	}
	return sv.Spec.UpdateConfig.Parallelism
}

// redeploy forces a service's tasks to be replaced and waits until its update has completed.
func redeploy(ctx context.Context, m *Node, name string) error {
	sv, _, err := m.Docker.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
	if err != nil {
		return err
	}
	spec := sv.Spec
	spec.TaskTemplate.ForceUpdate++
	if _, err := m.Docker.ServiceUpdate(ctx, sv.ID, sv.Version, spec, swarm.ServiceUpdateOptions{}); err != nil {
		return fmt.Errorf("redeploying service %s: %w", name, err)
	}
	var last string
	err = wait.Until(ctx, rebalanceLimit, time.Second, func(ctx context.Context) (bool, string, error) {
		sv, _, err := m.Docker.ServiceInspectWithRaw(ctx, sv.ID, swarm.ServiceInspectOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		st := sv.UpdateStatus
		if st == nil {
			return false, "no update status yet", nil
		}
		last = string(st.State) + ": " + st.Message
		switch st.State {
		case swarm.UpdateStateCompleted:
			return true, "", nil
		case swarm.UpdateStatePaused, swarm.UpdateStateRollbackStarted, swarm.UpdateStateRollbackCompleted, swarm.UpdateStateRollbackPaused:
			return false, "", fmt.Errorf("service %s did not converge (%s): the rebalance stops here; `docker service ps %s` says why", name, last, name)
		}
		return false, last, nil
	})
	var te *wait.TimeoutError
	if errors.As(err, &te) {
		return fmt.Errorf("service %s's redeploy did not complete within %s (%s): the rebalance stops here", name, te.After, last)
	}
	return err
}
