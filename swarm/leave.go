package swarm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/machine-tools/machine/internal/wait"
)

// Leave takes nodes out of their swarm: a manager is demoted first (while others remain), the
// node leaves, and the manager removes it from its list.
func Leave(ctx context.Context, nodes []*Node, via *Node) (map[string]string, error) {
	results := map[string]string{}
	var errs []error
	for _, n := range nodes {
		msg, err := leaveOne(ctx, n, via)
		if err != nil {
			errs = append(errs, err)
			results[n.Name] = "failed: " + err.Error()
			continue
		}
		results[n.Name] = msg
	}
	return results, errors.Join(errs...)
}

func leaveOne(ctx context.Context, n, via *Node) (string, error) {
	st, err := n.Inspect(ctx)
	if err != nil {
		return "", err
	}
	if !st.Active {
		return "already out of any swarm", nil
	}
	mgr := via
	if mgr == nil || mgr.Name == n.Name {
		mgr = nil
	}
	if st.Manager {
		nodes, err := n.Docker.NodeList(ctx, swarm.NodeListOptions{})
		if err != nil {
			return "", err
		}
		managers := 0
		for _, x := range nodes {
			if x.Spec.Role == swarm.NodeRoleManager {
				managers++
			}
		}
		if managers <= 1 {
			// The last manager: the swarm ends with it.
			if err := n.Docker.SwarmLeave(ctx, true); err != nil {
				return "", fmt.Errorf("%s: leaving: %w", n.Name, err)
			}
			return "left; it was the last manager, so the swarm is gone", nil
		}
		demote := func(spec *swarm.NodeSpec) bool {
			if spec.Role == swarm.NodeRoleWorker {
				return false
			}
			spec.Role = swarm.NodeRoleWorker
			return true
		}
		if _, err := updateNode(ctx, n, st.NodeID, demote); err != nil {
			return "", fmt.Errorf("%s: demoting before it leaves: %w", n.Name, err)
		}
		// The demotion done before the node leaves: a manager that leaves while its engine still
		// holds its manager role waits, in the engine, for a raft it is leaving (measured under
		// load: "context deadline exceeded" after a fixed two seconds of settling).
		if mgr != nil {
			if err := waitRole(ctx, mgr, n, st.NodeID, swarm.NodeRoleWorker); err != nil {
				return "", fmt.Errorf("%s: demoted; %w", n.Name, err)
			}
		} else if err := wait.Until(ctx, time.Minute, 500*time.Millisecond, func(ctx context.Context) (bool, string, error) {
			st, err := n.Inspect(ctx)
			return err == nil && !st.Manager, "still a manager", nil
		}); err != nil {
			return "", fmt.Errorf("%s: demoted; %w", n.Name, err)
		}
	}
	if err := n.Docker.SwarmLeave(ctx, false); err != nil {
		// Under load the engine can end a leave at its own deadline ("context deadline
		// exceeded", measured with 100 container hosts on two cores): read again, and a node
		// still in the swarm, a worker by now, leaves by force (which only a manager's raft
		// would mind).
		if ctx.Err() != nil {
			return "", fmt.Errorf("%s: leaving: %w", n.Name, err)
		}
		if now, ierr := n.Inspect(ctx); ierr != nil || now.Active {
			if ferr := n.Docker.SwarmLeave(ctx, true); ferr != nil && !strings.Contains(ferr.Error(), "not part of a swarm") {
				return "", fmt.Errorf("%s: leaving: %w (and by force: %v)", n.Name, err, ferr)
			}
		}
	}
	if mgr != nil {
		// The node has left: removing it by force does not wait for it to be marked down.
		if err := removeNode(ctx, mgr, st.NodeID); err != nil {
			return "", fmt.Errorf("%s left, but %s did not remove it from the node list: %w", n.Name, mgr.Name, err)
		}
		return "left, and removed from the manager's node list", nil
	}
	return "left (no manager named to remove it from the node list: `machine swarm leave --manager M`)", nil
}
