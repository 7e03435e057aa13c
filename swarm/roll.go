package swarm

import (
	"context"
	"slices"

	"github.com/docker/docker/api/types/swarm"

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
