// Package swarm puts machines into a Docker swarm (swarm mode) through the Docker API: init with
// the machine's own address, joins that advertise the address each node really reaches the
// manager from, managers one at a time and workers side by side, and leaves that keep quorum.
// Join tokens travel only between the client and the engines' TLS APIs.
package swarm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	"github.com/machine-tools/machine/internal/wait"
	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm/cluster"
)

// Node is a machine with its engine client, opened for swarm work.
type Node struct {
	*machine.Host
	Docker client.APIClient
}

// Open opens a machine's engine.
func Open(h *machine.Host) (*Node, error) {
	cli, err := h.Docker()
	if err != nil {
		return nil, err
	}
	return &Node{Host: h, Docker: cli}, nil
}

// OpenNode loads the machine name from api and opens its engine.
func OpenNode(api *machine.API, name string) (*Node, error) {
	h, err := api.Load(name)
	if err != nil {
		return nil, err
	}
	return Open(h)
}

// Close closes the engine client.
func (n *Node) Close() { n.Docker.Close() }

// State is a node's view of its swarm.
type State struct {
	Active    bool
	Manager   bool
	ClusterID string
	NodeID    string
	Addr      string
	Managers  []string // the managers the node knows (how a worker names its swarm)
	// Pending: the node is trying to reach its swarm (a join under way, or a manager whose
	// engine restarted away from its raft address); Failed: its swarm state is in error (a join
	// that gave up). Inspect returns an error with either.
	Pending, Failed bool
	// CertExpired, when not zero, is when the node's swarm certificate expired: its engine
	// cannot load it (the node was off for longer than its validity) and the node is out of its
	// swarm until it joins again. Failed is set too.
	CertExpired time.Time
}

// certExpiredAt reads an engine's swarm error for a node certificate that expired: swarmkit
// says "error while loading TLS certificate in .../swarm-node.crt: certificate (1 - ID) not
// valid after Thu, 03 Dec 2026 02:10:26 UTC, and it is currently ...: x509: certificate has
// expired or is not yet valid". One not valid yet (a clock behind) is not an expiry.
func certExpiredAt(msg string) (time.Time, bool) {
	if !strings.Contains(msg, "certificate has expired") {
		return time.Time{}, false
	}
	_, after, ok := strings.Cut(msg, "not valid after ")
	if !ok {
		return time.Time{}, false
	}
	when, _, ok := strings.Cut(after, ", and it is currently")
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC1123, when)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// Inspect reads a node's swarm state.
func (n *Node) Inspect(ctx context.Context) (State, error) {
	info, err := n.Docker.Info(ctx)
	if err != nil {
		return State{}, fmt.Errorf("%s: %w", n.Name, err)
	}
	s := State{NodeID: info.Swarm.NodeID, Addr: info.Swarm.NodeAddr}
	for _, p := range info.Swarm.RemoteManagers {
		s.Managers = append(s.Managers, p.Addr)
	}
	switch info.Swarm.LocalNodeState {
	case swarm.LocalNodeStateActive:
		s.Active = true
		s.Manager = info.Swarm.ControlAvailable
		if info.Swarm.Cluster != nil {
			s.ClusterID = info.Swarm.Cluster.ID
		}
		if s.Manager {
			n.remember(s.ClusterID) // which key unlocks it, should it be locked one day
		}
	case swarm.LocalNodeStateLocked:
		return s, &LockedError{Node: n.Name}
	case swarm.LocalNodeStatePending:
		s.Pending = true
		return s, fmt.Errorf("%s: a swarm join is still pending on this node", n.Name)
	case swarm.LocalNodeStateError:
		s.Failed = true
		if at, ok := certExpiredAt(info.Swarm.Error); ok {
			s.CertExpired = at
			return s, fmt.Errorf("%s: its swarm certificate expired at %s (the node was off for longer than its validity): it must join again (swarm up does)", n.Name, at.Format(time.RFC3339))
		}
		return s, fmt.Errorf("%s: the node's swarm state is in error: %s", n.Name, info.Swarm.Error)
	}
	return s, nil
}

// swarmName names the node's swarm: by its ID where the node knows it (managers), else by its
// managers' addresses (workers).
func (s State) swarmName() string {
	if s.ClusterID != "" {
		return "swarm " + short(s.ClusterID)
	}
	return "the swarm managed at " + strings.Join(s.Managers, ", ")
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// updateNode applies change to a node's spec through manager m; nothing is sent when change
// leaves the spec as it was (changed is false then). A node that has just joined, or just changed
// role, is still being updated by the swarm itself: an update against the version read a moment
// before can be refused as out of sequence, so it is read again and retried.
func updateNode(ctx context.Context, m *Node, id string, change func(*swarm.NodeSpec) bool) (changed bool, err error) {
	for attempt := 1; ; attempt++ {
		node, _, err := m.Docker.NodeInspectWithRaw(ctx, id)
		if err != nil {
			return false, err
		}
		spec := node.Spec
		if !change(&spec) {
			return false, nil
		}
		err = m.Docker.NodeUpdate(ctx, node.ID, node.Version, spec)
		if err == nil || attempt == 10 || !strings.Contains(err.Error(), "out of sequence") {
			return err == nil, err
		}
		if err := wait.Sleep(ctx, time.Duration(attempt)*20*time.Millisecond); err != nil {
			return false, err
		}
	}
}

// removeNode takes a node out of the swarm's list through manager m, by force; one already gone
// is fine. The swarm may refuse for a while (a manager just demoted, a node just left): asked
// again for 30 s, then its last refusal.
func removeNode(ctx context.Context, m *Node, id string) error {
	var last error
	err := wait.Until(ctx, 30*time.Second, time.Second, func(ctx context.Context) (bool, string, error) {
		last = m.Docker.NodeRemove(ctx, id, swarm.NodeRemoveOptions{Force: true})
		if last == nil || errdefs.IsNotFound(last) || strings.Contains(last.Error(), "not found") {
			return true, "", nil
		}
		return false, last.Error(), nil
	})
	var te *wait.TimeoutError
	if errors.As(err, &te) {
		return last
	}
	return err
}

func applySpec(ctx context.Context, m, n *Node, cn cluster.Node, h UpOptions) error {
	st, err := n.Inspect(ctx)
	if err != nil {
		return err
	}
	said := false
	_, err = updateNode(ctx, m, st.NodeID, func(spec *swarm.NodeSpec) bool {
		changed := false
		if want := availabilityOf(cn); string(spec.Availability) != want {
			spec.Availability = swarm.NodeAvailability(want)
			changed = true
		}
		if len(labelChanges(cn.Labels, spec.Labels)) > 0 {
			labels := map[string]string{}
			for k, v := range spec.Labels {
				if strings.HasPrefix(k, UnmanagedLabelPrefix) {
					labels[k] = v // not the file's: kept
				}
			}
			maps.Copy(labels, cn.Labels)
			spec.Labels = labels
			changed = true
		}
		if changed && !said {
			h.say(cn.Name, "setting node labels and availability")
			said = true
		}
		return changed
	})
	return err
}

// pendingGrace is how long a pending node is given to end its join by itself.
var pendingGrace = 25 * time.Second

// waitPendingEnds gives a pending node pendingGrace to end its pending state by itself.
func waitPendingEnds(ctx context.Context, n *Node) {
	_ = wait.Until(ctx, pendingGrace, time.Second, func(ctx context.Context) (bool, string, error) {
		st, _ := n.Inspect(ctx)
		return !st.Pending, "pending", nil
	})
}

// leavePending takes a node out of a join its engine gave up on (pending): `swarm leave --force`,
// and when the engine stays pending (it kept the gossip port, or its join goroutine is stuck) its
// engine restarted over SSH and left again.
//
// A join under way ends within the engine's own 20 s: the node is given pendingGrace to leave the
// pending state by itself first.
func leavePending(ctx context.Context, n *Node) error {
	stuck := func() bool { st, _ := n.Inspect(ctx); return st.Pending || st.Failed }
	waitPendingEnds(ctx, n)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !stuck() {
		return nil // it ended by itself
	}
	if err := n.Docker.SwarmLeave(ctx, true); err == nil && !stuck() {
		return nil
	}
	if n.Host == nil {
		return fmt.Errorf("%s: its swarm join is stuck pending and `swarm leave --force` did not end it", n.Name)
	}
	c, err := n.Host.Dial(ctx)
	if err != nil {
		return fmt.Errorf("%s: its swarm join is stuck pending; restarting its engine: %w", n.Name, err)
	}
	_, err = machine.Runner(c).Run(ctx, nil, "systemctl", "restart", "docker")
	c.Close()
	if err != nil {
		return fmt.Errorf("%s: its swarm join is stuck pending; restarting its engine: %w", n.Name, err)
	}
	if err := n.Host.WaitEngine(ctx, n.Host.EngineWait()); err != nil {
		return err
	}
	if err := n.Docker.SwarmLeave(ctx, true); err != nil && !strings.Contains(err.Error(), "not part of a swarm") {
		return fmt.Errorf("%s: leaving its pending join after an engine restart: %w", n.Name, err)
	}
	return nil
}
