package swarm

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/docker/docker/api/types/swarm"

	"github.com/machine-tools/machine/machine"
)

// upgradeStep is one node of a rolling upgrade, in the order it is taken.
type upgradeStep struct {
	Machine, NodeID string
	Manager, Leader bool
	Availability    swarm.NodeAvailability
}

// planUpgrade orders a swarm's nodes for a rolling upgrade: workers first, then the managers
// that do not lead, the leader last (one leadership change at most). It refuses a plan that
// would take a manager down while too few others are reachable to keep a majority.
func planUpgrade(nodes []swarm.Node, machineOf func(addr, hostname string) string) ([]upgradeStep, error) {
	var steps, managers []upgradeStep
	total, reachable := 0, 0
	for _, n := range nodes {
		name := machineOf(n.Status.Addr, n.Description.Hostname)
		if name == "" {
			return nil, fmt.Errorf("swarm node %s (%s) is not a machine of this store: upgrade it yourself, or take it out of the swarm first", n.Description.Hostname, n.Status.Addr)
		}
		st := upgradeStep{Machine: name, NodeID: n.ID, Availability: n.Spec.Availability}
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
	slices.SortStableFunc(managers, func(a, b upgradeStep) int {
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
	steps, err := planUpgrade(list, machineOf)
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
	var mu sync.Mutex
	var batches [][]string
	for _, s := range steps {
		batches = append(batches, []string{s.Machine}) // one node at a time
	}
	err = roll(ctx, m, managers, batches, opener(a), say, func(ctx context.Context, name string, progress func(string)) error {
		h, err := a.Load(name)
		if err != nil {
			return err
		}
		res, err := h.Upgrade(ctx, progress)
		if err != nil {
			return &StepError{name, "upgrading", err}
		}
		mu.Lock()
		out[name] = res
		mu.Unlock()
		progress(machine.UpgradeSummary(res))
		return nil
	})
	return out, err
}
