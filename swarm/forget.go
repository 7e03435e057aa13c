package swarm

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/internal/fanout"
	"github.com/machine-tools/machine/machine"
)

// RemoveMachines removes machines as machine.API.RemoveAll does, and takes the node entries
// they leave behind out of their swarms' lists, through a manager among the store's other
// machines (a manager's entry is demoted first: the swarm keeps its quorum arithmetic right).
// A machine is known as a member by asking its engine before its host goes; a machine whose
// record cannot be read is looked for by its host name (its machine name) in the swarms of the
// store's managers. notes say, one line each, what was taken out or why an entry stays.
func RemoveMachines(ctx context.Context, a *machine.API, names []string, force bool) (removed []machine.Removed, notes []string) {
	members := membersBefore(ctx, a, names)
	removed = a.RemoveAll(ctx, names, force)
	var gone []string
	for _, r := range removed {
		if !a.Exists(r.Name) {
			gone = append(gone, r.Name)
		}
	}
	for _, name := range gone {
		st, ok := members[name]
		if !ok {
			continue
		}
		notes = append(notes, forget(ctx, a, name, st, gone)...)
	}
	return removed, notes
}

// departing is what a machine about to be removed told of its swarm; unread when its record
// could not be read (its node is then looked for by name).
type departing struct {
	State
	unread bool
}

// forgetTimeout bounds how long a machine's driver and engine are asked before its removal.
const forgetTimeout = 3 * time.Second

func membersBefore(ctx context.Context, a *machine.API, names []string) map[string]departing {
	got, _ := fanout.Map(ctx, names, 0, func(ctx context.Context, name string) (*departing, error) {
		if !a.Exists(name) {
			return nil, nil
		}
		if _, busy := a.Store.CreateUnderWay(name); busy {
			return nil, nil // not removed: rm refuses it
		}
		h, err := a.Load(name)
		if err != nil {
			return &departing{unread: true}, nil
		}
		if h.Driver == nil || h.SSH.Host == "" {
			return nil, nil // a create that did not finish: never joined
		}
		ctx, cancel := context.WithTimeout(ctx, forgetTimeout)
		defer cancel()
		if st, err := h.Driver.State(ctx); err != nil || st != drivers.Running {
			return nil, nil
		}
		n, err := Open(h)
		if err != nil {
			return nil, nil
		}
		defer n.Close()
		st, err := n.Inspect(ctx)
		if err != nil || !st.Active || st.NodeID == "" {
			return nil, nil
		}
		return &departing{State: st}, nil
	})
	out := map[string]departing{}
	for i, name := range names {
		if got[i] != nil {
			out[name] = *got[i]
		}
	}
	return out
}

// forget takes one removed machine's node out of its swarm, and says so.
func forget(ctx context.Context, a *machine.API, name string, st departing, gone []string) []string {
	if st.unread {
		return forgetByName(ctx, a, name, gone)
	}
	var via []string // the store's machines at the managers' addresses the node knew
	if machineOf, err := machineFinder(a); err == nil {
		for _, addr := range st.Managers {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				host = addr
			}
			if m := machineOf(host, ""); m != "" && !slices.Contains(gone, m) && !slices.Contains(via, m) {
				via = append(via, m)
			}
		}
	}
	m := findManager(ctx, via, opener(a))
	if m == nil {
		if st.Manager && len(st.Managers) <= 1 {
			return nil // its swarm's last manager: the swarm went with it
		}
		return one("(%s) its node %s stays in %s's list: no manager of it is a machine of this store that answers; remove it there with `docker node rm --force %s`", name, short(st.NodeID), st.swarmName(), short(st.NodeID))
	}
	defer m.Close()
	if err := removeDead(ctx, m, st.NodeID); err != nil {
		return one("(%s) its node %s stays in the swarm's list (%v): remove it with `docker node rm --force %s` through `machine env %s`", name, short(st.NodeID), err, short(st.NodeID), m.Name)
	}
	return one("(%s) its node was removed from the swarm's list through %s", name, m.Name)
}

func one(format string, a ...any) []string { return []string{fmt.Sprintf(format, a...)} }

// forgetByName looks for the node named after a machine whose record could not be read in the
// swarm of every manager among the store's other machines (one per swarm), and removes it
// where its address is no other machine's.
func forgetByName(ctx context.Context, a *machine.API, name string, gone []string) (notes []string) {
	all, err := a.List()
	if err != nil {
		return nil
	}
	all = slices.DeleteFunc(all, func(n string) bool { return slices.Contains(gone, n) })
	nodes := map[string]*Node{}
	for _, n := range all {
		if o, err := OpenNode(a, n); err == nil {
			nodes[n] = o
		}
	}
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	states := probe(ctx, nodes)
	machineOf, err := machineFinder(a)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	for _, m := range slices.Sorted(maps.Keys(states)) {
		st := states[m]
		if !st.Active || !st.Manager || seen[st.ClusterID] {
			continue
		}
		seen[st.ClusterID] = true
		list, err := nodes[m].Docker.NodeList(ctx, swarm.NodeListOptions{})
		if err != nil {
			continue
		}
		for _, x := range list {
			if x.Description.Hostname != name || machineOf(x.Status.Addr, "") != "" {
				continue
			}
			if err := removeDead(ctx, nodes[m], x.ID); err != nil {
				notes = append(notes, fmt.Sprintf("(%s) its node %s stays in the swarm's list (%v): remove it with `docker node rm --force %s` through `machine env %s`", name, short(x.ID), err, short(x.ID), m))
				continue
			}
			notes = append(notes, fmt.Sprintf("(%s) its node was removed from the swarm's list through %s", name, m))
		}
	}
	return notes
}
