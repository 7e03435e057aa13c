package swarm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"

	"github.com/machine-tools/machine/internal/fanout"
	"github.com/machine-tools/machine/internal/wait"
	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/provision"
	"github.com/machine-tools/machine/swarm/cluster"
)

// converge applies the plan's role changes, engine changes and removals (creates, joins,
// labels, networks and images are Up's own steps). m is a manager that stays; openNode opens a
// machine's engine.
func converge(ctx context.Context, api *machine.API, c *cluster.Cluster, plan []Change, m *Node, h UpOptions, openNode func(string) (*Node, error)) error {
	open := func(name string) (*Node, string, error) {
		n, err := openNode(name)
		if err != nil {
			return nil, "", err
		}
		st, err := n.Inspect(ctx)
		if err != nil {
			n.Close()
			return nil, "", err
		}
		return n, st.NodeID, nil
	}
	// Roles, one node at a time, each Ready in its new role before the next: promotions now,
	// demotions after the engine roll-out (a node restarted soon after its demotion can come
	// back with its manager certificate, as a manager the swarm no longer counts).
	roles := func(kind ChangeKind) error {
		for _, ch := range plan {
			if ch.Kind != kind {
				continue
			}
			via := m
			if ch.Node == m.Name && kind == ChangeDemote {
				// The manager gone through is the one demoted (the file lists it a worker): through
				// another of the file's managers, which joined since (a run that stopped half-way
				// moving a raft address leaves its helper so).
				var others []string
				for _, n := range c.Managers() {
					if n.Name != ch.Node {
						others = append(others, n.Name)
					}
				}
				if o := findManager(ctx, others, openNode); o != nil {
					defer o.Close()
					via = o
				}
			}
			if err := changeRole(ctx, api, via, ch, h, open); err != nil {
				return err
			}
		}
		return nil
	}
	if err := roles(ChangePromote); err != nil {
		return err
	}
	want, err := machine.ParseEngineOptions(c.Engine, nil)
	if err != nil {
		return err
	}
	// Engine changes that dockerd reloads: applied in place, all at once, no drain.
	var reloads []string
	for _, ch := range plan {
		if ch.Kind == ChangeEngine && !ch.Restart && !slices.Contains(reloads, ch.Node) {
			reloads = append(reloads, ch.Node)
		}
	}
	if err := fanout.Each(ctx, reloads, 0, nil, func(ctx context.Context, name string) error {
		return reload(ctx, api, name, want, h)
	}); err != nil {
		return err
	}
	// The others roll: workers MaxUnavailable at a time, then managers one at a time.
	var workers, managers []string
	for _, ch := range plan {
		if ch.Kind != ChangeEngine || !ch.Restart || slices.Contains(workers, ch.Node) || slices.Contains(managers, ch.Node) {
			continue
		}
		liveManager := slices.ContainsFunc(plan, func(d Change) bool { return d.Kind == ChangeDemote && d.Node == ch.Node })
		if liveManager || slices.ContainsFunc(c.Managers(), func(n cluster.Node) bool { return n.Name == ch.Node }) {
			managers = append(managers, ch.Node)
		} else {
			workers = append(workers, ch.Node)
		}
	}
	step := max(h.MaxUnavailable, 1)
	batches := [][]string{}
	for i := 0; i < len(workers); i += step {
		batches = append(batches, workers[i:min(i+step, len(workers))])
	}
	for _, mg := range managers {
		batches = append(batches, []string{mg})
	}
	var names []string
	for _, n := range c.Managers() {
		names = append(names, n.Name)
	}
	if err := roll(ctx, m, names, batches, openNode, h.say, func(ctx context.Context, name string, say func(string)) error {
		return reengine(ctx, api, name, want, say)
	}); err != nil {
		return err
	}
	if err := roles(ChangeDemote); err != nil {
		return err
	}
	// Old entries of machines that joined again: out of the node list (a manager's demoted first).
	for _, ch := range plan {
		if ch.Kind != ChangeStale {
			continue
		}
		h.say(ch.Node, ch.Detail)
		current := ""
		if n, id, err := open(ch.Node); err == nil {
			current = id
			n.Close()
		}
		if err := removeStale(ctx, m, ch.ID, current); err != nil {
			return &StepError{ch.Node, "removing its old node entry", err}
		}
	}
	// Nodes gone for good (with --prune): their entries out of the list (a manager's demoted first).
	for _, ch := range plan {
		if ch.Kind != ChangeForget {
			continue
		}
		h.say(ch.Node, ch.Detail)
		if err := removeDead(ctx, m, ch.ID); err != nil {
			return &StepError{ch.Node, "removing its node entry", err}
		}
	}
	// Nodes that left the file (with --prune): drained, out of the swarm, machines removed.
	for _, ch := range plan {
		if ch.Kind != ChangeRemove {
			continue
		}
		h.say(ch.Node, ch.Detail)
		n, id, err := open(ch.Node)
		if err != nil {
			return &StepError{ch.Node, "remove", err}
		}
		if _, err := updateNode(ctx, m, id, func(s *swarm.NodeSpec) bool { s.Availability = swarm.NodeAvailabilityDrain; return true }); err == nil {
			waitDrained(ctx, m, id)
		}
		res, err := Leave(ctx, []*Node{n}, m)
		n.Close()
		if err != nil {
			return &StepError{ch.Node, "leaving the swarm", err}
		}
		h.say(ch.Node, res[ch.Node])
		if api.Exists(ch.Node) {
			if err := api.Remove(ctx, ch.Node, false); err != nil {
				return &StepError{ch.Node, "removing the machine", err}
			}
			h.say(ch.Node, "machine removed")
		}
	}
	return nil
}

// setEngine records the file's engine options as the machine's (its port and install URL stay).
func setEngine(hst *machine.Host, want machine.EngineOptions) error {
	port, url := hst.Engine.Port, hst.Engine.InstallURL
	hst.Engine = want
	hst.Engine.Port, hst.Engine.InstallURL = port, url
	return hst.Save()
}

// reload applies engine options that dockerd reloads: daemon.json rewritten and SIGHUP, then
// checked through the engine's own report of its configuration.
func reload(ctx context.Context, api *machine.API, name string, want machine.EngineOptions, h UpOptions) error {
	hst, err := api.Load(name)
	if err != nil {
		return err
	}
	if err := setEngine(hst, want); err != nil {
		return err
	}
	res, err := hst.Reprovision(ctx, machine.ProvisionOptions{AllowReload: true, Progress: func(s string) { h.say(name, s) }})
	if err != nil {
		return &StepError{name, "reloading the engine", err}
	}
	cli, err := hst.Docker()
	if err != nil {
		return err
	}
	defer cli.Close()
	// `systemctl reload` returns once dockerd has the signal, not once it has applied it: on a
	// loaded host the first docker info still shows the old configuration. Wait until it shows
	// the new one.
	if err := wait.Until(ctx, reloadWait, 200*time.Millisecond, func(ctx context.Context) (bool, string, error) {
		ictx, cancel := context.WithTimeout(ctx, observeLimit)
		defer cancel()
		info, err := cli.Info(ictx)
		if err != nil {
			return false, "docker info: " + err.Error(), nil
		}
		if missing := reloadPending(provision.Effective(want), info.RegistryConfig.Mirrors, info.Labels); missing != "" {
			return false, "the engine does not list " + missing + " after the reload", nil
		}
		return true, "", nil
	}); err != nil {
		return &StepError{name, "reloading the engine", err}
	}
	if res.Reloaded {
		h.say(name, "engine configuration reloaded (no restart), checked with docker info")
	}
	return nil
}

// reengine applies the file's engine options to one node, rolled (rollNode): re-provisioned,
// so that the engine restarts with the new configuration.

// reengine gives a node's machine the file's engine options and provisions it again (its
// engine restarts): the work of a roll.
func reengine(ctx context.Context, api *machine.API, name string, want machine.EngineOptions, say func(string)) error {
	hst, err := api.Load(name)
	if err != nil {
		return err
	}
	if err := setEngine(hst, want); err != nil {
		return err
	}
	say("re-provisioning with the new engine options")
	if _, err := hst.Reprovision(ctx, machine.ProvisionOptions{Progress: say}); err != nil {
		return &StepError{name, "re-provisioning", err}
	}
	return nil
}

// waitRole waits (a minute at most) until the manager sees the node Ready in its new role: a
// promoted one reachable as a manager, a demoted one with no manager status left (its demotion
// done), so that the next change does not count on a manager that is half gone.
func waitRole(ctx context.Context, m, n *Node, id string, role swarm.NodeRole) error {
	err := wait.Until(ctx, 60*time.Second, 500*time.Millisecond, func(ctx context.Context) (bool, string, error) {
		node, _, err := m.Docker.NodeInspectWithRaw(ctx, id)
		if err != nil {
			return false, err.Error(), nil
		}
		done := node.Spec.Role == role && node.Status.State == swarm.NodeStateReady
		if role == swarm.NodeRoleManager {
			done = done && node.ManagerStatus != nil && node.ManagerStatus.Reachability == swarm.ReachabilityReachable
		} else {
			// ... and the node itself has let go of its manager state: an engine restart
			// before that brings it back as a manager that the swarm no longer counts.
			done = done && node.ManagerStatus == nil
			if done {
				st, ierr := n.Inspect(ctx)
				done = ierr == nil && !st.Manager
			}
		}
		last := fmt.Sprintf("state %s", node.Status.State)
		if node.ManagerStatus != nil {
			last += ", manager " + string(node.ManagerStatus.Reachability)
		}
		return done, last, nil
	})
	var te *wait.TimeoutError
	if errors.As(err, &te) {
		return fmt.Errorf("%s is not Ready as a %s after %s (%s)", n.Name, role, te.After, te.Last)
	}
	return err
}

// changeRole promotes or demotes one node through the manager m and waits until it is Ready in
// its new role.
func changeRole(ctx context.Context, api *machine.API, m *Node, ch Change, h UpOptions, open func(string) (*Node, string, error)) error {
	role := swarm.NodeRoleManager
	if ch.Kind == ChangeDemote {
		role = swarm.NodeRoleWorker
	}
	n, id, err := open(ch.Node)
	if err != nil {
		return &StepError{ch.Node, string(ch.Kind), err}
	}
	defer n.Close()
	h.say(ch.Node, ch.Detail)
	if m.Name == ch.Node {
		return &StepError{ch.Node, string(ch.Kind), fmt.Errorf("the manager the swarm is driven through cannot demote itself: list another manager first in the file")}
	}
	_, err = updateNode(ctx, m, id, func(s *swarm.NodeSpec) bool {
		if s.Role == role {
			return false
		}
		s.Role = role
		return true
	})
	if err == nil {
		err = waitRole(ctx, m, n, id, role)
	}
	if err != nil {
		return &StepError{ch.Node, string(ch.Kind), err}
	}
	return nil
}

// reloadWait bounds the wait for a reloaded engine to show its new configuration.
const reloadWait = 30 * time.Second

// reloadPending names what of want a reloaded engine does not show yet (its mirrors and labels
// as docker info lists them), "" when it shows all of it.
func reloadPending(want machine.EngineOptions, mirrors, labels []string) string {
	for _, m := range want.RegistryMirrors {
		if !slices.ContainsFunc(mirrors, func(x string) bool { return strings.TrimSuffix(x, "/") == strings.TrimSuffix(m, "/") }) {
			return fmt.Sprintf("the mirror %s (it has %v)", m, mirrors)
		}
	}
	for _, m := range mirrors {
		if !slices.ContainsFunc(want.RegistryMirrors, func(x string) bool { return strings.TrimSuffix(x, "/") == strings.TrimSuffix(m, "/") }) {
			return fmt.Sprintf("only the mirrors %v (it still has %s)", want.RegistryMirrors, m)
		}
	}
	for _, l := range want.Labels {
		if !slices.Contains(labels, l) {
			return fmt.Sprintf("the label %s (it has %v)", l, labels)
		}
	}
	return ""
}

// removeStale removes the old node entry id through the manager m (demoted first when it is a
// manager's), unless it is live again. current is the node ID the machine's engine has now ("":
// not known): an entry of another ID is old whatever its state says (a node that has just left
// its swarm is Ready in the list until the managers miss its heartbeats).
func removeStale(ctx context.Context, m *Node, id, current string) error {
	x, _, err := m.Docker.NodeInspectWithRaw(ctx, id)
	switch {
	case errdefs.IsNotFound(err):
		return nil // gone already
	case err != nil:
		return err
	case x.Status.State == swarm.NodeStateReady && (current == "" || current == id):
		return nil
	}
	if x.Spec.Role == swarm.NodeRoleManager {
		if _, err := updateNode(ctx, m, id, func(s *swarm.NodeSpec) bool { s.Role = swarm.NodeRoleWorker; return true }); err != nil {
			return fmt.Errorf("demoting it: %w", err)
		}
	}
	return m.Docker.NodeRemove(ctx, id, swarm.NodeRemoveOptions{Force: true})
}
