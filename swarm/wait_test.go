package swarm

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"

	"github.com/machine-tools/machine/internal/store"
	"github.com/machine-tools/machine/machine"
)

// stuckEngine is an engine whose swarm never settles: its node stays Down, a node removal is
// always refused, and a node update is always out of sequence.
type stuckEngine struct {
	client.APIClient // nil: any other call panics, so the test shows what was called
	active, manager  bool
}

func (e *stuckEngine) Info(ctx context.Context) (system.Info, error) {
	var i system.Info
	i.Swarm.NodeID, i.Swarm.ControlAvailable = "n1", e.manager
	if e.active {
		i.Swarm.LocalNodeState = swarm.LocalNodeStateActive
	}
	return i, nil
}

func (e *stuckEngine) NodeInspectWithRaw(ctx context.Context, id string) (swarm.Node, []byte, error) {
	n := swarm.Node{ID: id}
	n.Status.State = swarm.NodeStateDown
	return n, nil, nil
}

func (e *stuckEngine) SwarmLeave(ctx context.Context, force bool) error { return nil }

func (e *stuckEngine) NodeRemove(ctx context.Context, id string, o swarm.NodeRemoveOptions) error {
	return errors.New("node is not down yet")
}

func (e *stuckEngine) NodeUpdate(ctx context.Context, id string, v swarm.Version, s swarm.NodeSpec) error {
	return errors.New("update out of sequence")
}

func stuckNode(name string, e *stuckEngine) *Node {
	return &Node{Host: &machine.Host{Machine: &store.Machine{Name: name}}, Docker: e}
}

// cancelSoon cancels after 100 ms and checks that f returned within a second of that.
func cancelSoon(t *testing.T, what string, f func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	err := f(ctx)
	if took := time.Since(start); took > 1100*time.Millisecond || err == nil {
		t.Errorf("%s: returned after %s with %v", what, took, err)
	}
}

// TestWaitsHonourCancel: the wait for a joined node to be Ready, the retried removal of a node
// that left, and the retried node update all return promptly on Ctrl-C.
func TestWaitsHonourCancel(t *testing.T) {
	m := stuckNode("m", &stuckEngine{active: true, manager: true})
	w := stuckNode("w", &stuckEngine{active: true})
	cancelSoon(t, "waitReady", func(ctx context.Context) error { return waitReady(ctx, m, w) })
	cancelSoon(t, "leave", func(ctx context.Context) error { _, err := leaveOne(ctx, w, m); return err })
	cancelSoon(t, "updateNode", func(ctx context.Context) error {
		_, err := updateNode(ctx, m, "n1", func(*swarm.NodeSpec) bool { return true })
		return err
	})
}
