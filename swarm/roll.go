package swarm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/machine-tools/machine/internal/wait"
	"github.com/machine-tools/machine/swarm/preflight"
)

// speaker is the manager that speaks for the swarm while node restarts: m, or, when m is that
// node, the first of candidates that answers as a manager (m when none does). done closes what
// was opened.
func speaker(ctx context.Context, m *Node, node string, candidates []string, open func(string) (*Node, error)) (*Node, func()) {
	if m.Name != node {
		return m, func() {}
	}
	others := slices.DeleteFunc(slices.Clone(candidates), func(n string) bool { return n == node })
	if o := findManager(ctx, others, open); o != nil {
		return o, o.Close
	}
	return m, func() {}
}

// roll takes batches of nodes out of service in turn, each node of a batch at once through
// rollNode while work runs on it; a batch starts when the one before is back. It stops at the
// first node that fails: the nodes after it are not touched. m is the manager the swarm is
// driven through; managers are those that may speak for it while m itself restarts.
func roll(ctx context.Context, m *Node, managers []string, batches [][]string, open func(string) (*Node, error), say func(node, msg string), work func(ctx context.Context, name string, say func(string)) error) error {
	for _, batch := range batches {
		errs := make(chan error, len(batch))
		for _, name := range batch {
			go func() { errs <- rollOne(ctx, m, managers, name, open, say, work) }()
		}
		for range batch {
			if err := <-errs; err != nil {
				return fmt.Errorf("%w (the roll-out stopped there: the nodes after it were not touched)", err)
			}
		}
	}
	return nil
}

func rollOne(ctx context.Context, m *Node, managers []string, name string, open func(string) (*Node, error), say func(node, msg string), work func(ctx context.Context, name string, say func(string)) error) error {
	via, done := speaker(ctx, m, name, managers, open)
	defer done()
	n, err := open(name)
	if err != nil {
		return err
	}
	st, err := n.Inspect(ctx)
	n.Close()
	if err != nil {
		return &StepError{name, "engine change", err}
	}
	sayNode := func(s string) { say(name, s) }
	err = rollNode(ctx, via, name, st.NodeID, sayNode, func() error {
		if err := work(ctx, name, sayNode); err != nil {
			return err
		}
		// A manager of a swarm with autolock comes back from its engine's restart locked.
		n, err := open(name)
		if err != nil {
			return err
		}
		defer n.Close()
		if unlocked, err := unlockIfLocked(ctx, n); err != nil {
			return &StepError{name, "unlocking it after its engine restart", err}
		} else if unlocked {
			sayNode("was locked after its engine restart (autolock): unlocked with the key the store keeps")
		}
		return nil
	})
	var se *StepError
	if errors.As(err, &se) && se.Step == "coming back after its engine restart" {
		// What the node itself says of its swarm: the manager's view alone ("down") does not
		// tell a node that cannot reach the managers from one whose swarm state is in error.
		if n, oerr := open(name); oerr == nil {
			ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if info, ierr := n.Docker.Info(ictx); ierr == nil {
				se.Err = fmt.Errorf("%w; the node itself says: swarm state %s%s", se.Err, info.Swarm.LocalNodeState, errorSuffix(info.Swarm.Error))
			}
			cancel()
			n.Close()
		}
	}
	return err
}

func errorSuffix(e string) string {
	if e == "" {
		return ""
	}
	return " (" + e + ")"
}

// rollNode takes one node out of service through the manager via while work runs (its engine
// restarts): every task running first, the node drained (its tasks move and run elsewhere), work,
// the node Ready again, its availability restored. A node already drained, or via itself (the
// only manager), is not drained. Errors name the node and the phase.
func rollNode(ctx context.Context, via *Node, name, id string, say func(string), work func() error) error {
	node, _, err := via.Docker.NodeInspectWithRaw(ctx, id)
	if err != nil {
		return &StepError{name, "reading its node", err}
	}
	before := node.Spec.Availability
	drain := via.Name != name && before != swarm.NodeAvailabilityDrain
	if drain {
		waitDrained(ctx, via, "") // every task runs before another node is taken out
		say("draining (its tasks move to other nodes)")
		if _, err := updateNode(ctx, via, id, func(s *swarm.NodeSpec) bool { s.Availability = swarm.NodeAvailabilityDrain; return true }); err != nil {
			return &StepError{name, "draining", err}
		}
		waitDrained(ctx, via, id)
	} else if via.Name == name {
		say("the only manager: the swarm's control plane pauses while its engine restarts")
	}
	if err := work(); err != nil {
		return err
	}
	if err := waitBack(ctx, via, name, id); err != nil {
		return &StepError{name, "coming back after its engine restart", err}
	}
	if drain {
		if _, err := updateNode(ctx, via, id, func(s *swarm.NodeSpec) bool { s.Availability = before; return true }); err != nil {
			return &StepError{name, "restoring its availability " + string(before), err}
		}
		say("back to " + string(before))
	}
	return nil
}

// backLimit bounds how long a node is given to be Ready again after its engine restarted.
var backLimit = 90 * time.Second

// waitBack waits (90 s at most) until the manager m sees the node Ready again after its engine
// restarted (and reachable, for a manager). m may be the node itself: its API errors while its
// engine restarts and its raft starts are waited out.
func waitBack(ctx context.Context, m *Node, name, id string) error {
	err := wait.Until(ctx, backLimit, 500*time.Millisecond, func(ctx context.Context) (bool, string, error) {
		node, _, err := m.Docker.NodeInspectWithRaw(ctx, id)
		switch {
		case err != nil:
			return false, err.Error(), nil
		case node.Status.State == swarm.NodeStateReady && (node.ManagerStatus == nil || node.ManagerStatus.Reachability == swarm.ReachabilityReachable):
			return true, "", nil
		}
		return false, "state " + string(node.Status.State), nil
	})
	var te *wait.TimeoutError
	if errors.As(err, &te) {
		return fmt.Errorf("%s is not Ready after %s (%s): %s", name, te.After, te.Last, preflight.PortsHelp)
	}
	return err
}

// waitDrained waits (a minute at most) until no task runs on the node and every task that
// should run elsewhere runs (the drained node's tasks have started on other nodes), so that the
// next step never takes out a second copy of a service while the first is still moving.
// With id "", it waits only for the swarm to settle: done before a drain, so that a task still
// starting elsewhere is not the only copy left when the drained node's copy stops.
func waitDrained(ctx context.Context, m *Node, id string) {
	_ = wait.Until(ctx, 2*time.Minute, 500*time.Millisecond, func(ctx context.Context) (bool, string, error) {
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
		return settled, "", nil
	})
}
