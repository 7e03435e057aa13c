package swarm

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/machine-tools/machine/internal/wait"
	"github.com/machine-tools/machine/machine"
)

// UpgradeStep is one node of a rolling upgrade, in the order it is taken.
type UpgradeStep struct {
	Machine, NodeID string
	Manager, Leader bool
	Availability    swarm.NodeAvailability
}

// PlanUpgrade orders a swarm's nodes for a rolling upgrade: workers first, then the managers
// that do not lead, the leader last (one leadership change at most). It refuses a plan that
// would take a manager down while too few others are reachable to keep a majority.
func PlanUpgrade(nodes []swarm.Node, machineOf func(addr, hostname string) string) ([]UpgradeStep, error) {
	var steps, managers []UpgradeStep
	total, reachable := 0, 0
	for _, n := range nodes {
		name := machineOf(n.Status.Addr, n.Description.Hostname)
		if name == "" {
			return nil, fmt.Errorf("swarm node %s (%s) is not a machine of this store: upgrade it yourself, or take it out of the swarm first", n.Description.Hostname, n.Status.Addr)
		}
		st := UpgradeStep{Machine: name, NodeID: n.ID, Availability: n.Spec.Availability}
		if n.ManagerStatus != nil {
			st.Manager, st.Leader = true, n.ManagerStatus.Leader
			total++
			if n.ManagerStatus.Reachability == swarm.ReachabilityReachable {
				reachable++
			}
			managers = append(managers, st)
			continue
		}
		steps = append(steps, st)
	}
	slices.SortStableFunc(managers, func(a, b UpgradeStep) int {
		if a.Leader == b.Leader {
			return 0
		}
		if a.Leader {
			return 1
		}
		return -1
	})
	// While one manager restarts, the others must still be a majority of all managers.
	if total > 1 && reachable-1 < total/2+1 {
		return nil, fmt.Errorf("%d managers, %d reachable: upgrading one would leave %d of %d reachable, fewer than the %d a majority needs: bring the unreachable managers back first",
			total, reachable, reachable-1, total, total/2+1)
	}
	return append(steps, managers...), nil
}

// UpgradeOptions tune RollingUpgrade.
type UpgradeOptions struct {
	Progress func(node, msg string)
}

// RollingUpgrade upgrades the engines of every node of manager's swarm, one node at a time:
// drained (its tasks move), upgraded, Ready again, back to its availability. A node that does not
// come back stops the upgrade there, naming it.
func RollingUpgrade(ctx context.Context, a *machine.API, manager string, o UpgradeOptions) (map[string]*machine.UpgradeResult, error) {
	say := func(n, m string) {
		if o.Progress != nil {
			o.Progress(n, m)
		}
	}
	m, err := OpenNode(a, manager)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if _, _, err := managerAddr(ctx, m); err != nil {
		return nil, err
	}
	list, err := m.Docker.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return nil, err
	}
	machineOf, err := machineFinder(a)
	if err != nil {
		return nil, err
	}
	steps, err := PlanUpgrade(list, machineOf)
	if err != nil {
		return nil, err
	}
	var managers []string
	for _, st := range steps {
		if st.Manager {
			managers = append(managers, st.Machine)
		}
	}
	out := map[string]*machine.UpgradeResult{}
	for _, s := range steps {
		h, err := a.Load(s.Machine)
		if err != nil {
			return out, err
		}
		progress := func(msg string) { say(s.Machine, msg) }
		via, done := speaker(ctx, m, s.Machine, managers, opener(a))
		err = rollNode(ctx, via, s.Machine, s.NodeID, progress, func() error {
			res, err := h.Upgrade(ctx, progress)
			if err != nil {
				return &StepError{s.Machine, "upgrading", err}
			}
			out[s.Machine] = res
			progress(machine.UpgradeSummary(res))
			return nil
		})
		done()
		if err != nil {
			return out, fmt.Errorf("%w (the nodes after it were not touched)", err)
		}
	}
	return out, nil
}

// waitDrained waits (a minute at most) until no task runs on the node and every task that
// should run elsewhere runs (the drained node's tasks have started on other nodes), so that the
// next step never takes out a second copy of a service while the first is still moving.
// With id "", it waits only for the swarm to settle: done before a drain, so that a task still
// starting elsewhere is not the only copy left when the drained node's copy stops.
func waitDrained(ctx context.Context, m *Node, id string) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		tasks, err := m.Docker.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("desired-state", "running"))})
		settled := err == nil
		running := map[string]uint64{} // by service
		for _, tk := range tasks {
			if (id != "" && tk.NodeID == id) || tk.Status.State != swarm.TaskStateRunning {
				settled = false
			} else {
				running[tk.ServiceID]++
			}
		}
		// A replica being replaced may have no task yet: count the running ones against what
		// each replicated service asks for.
		if settled {
			services, err := m.Docker.ServiceList(ctx, swarm.ServiceListOptions{})
			settled = err == nil
			for _, sv := range services {
				if r := sv.Spec.Mode.Replicated; r != nil && r.Replicas != nil && running[sv.ID] < *r.Replicas {
					settled = false
				}
			}
		}
		if settled {
			return
		}
		if wait.Sleep(ctx, 500*time.Millisecond) != nil {
			return
		}
	}
}
