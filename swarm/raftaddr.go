package swarm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"golang.org/x/crypto/ssh"

	"github.com/machine-tools/machine/internal/fanout"
	"github.com/machine-tools/machine/internal/fsutil"
	"github.com/machine-tools/machine/internal/wait"
	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm/cluster"
)

// A manager's raft address is where it was when it joined (or started the swarm), and swarmkit
// changes it only when the manager joins again through another manager: a swarm forced anew on a
// host that moved (`--force-new-cluster --advertise-addr NEW`) still names its one manager by the
// old address, and so does a lone manager whose host moved. Its workers, told the raft address,
// cannot reach it, and no manager can join it (each is told to reach the leader there).
//
// What puts it right, for a manager that is alone in its raft: its old address lent to its
// interface for the while (the swarm's nodes reach it there again), another node of the file
// made a manager beside it (promoted, or joined as one), the moved manager demoted through that
// one, out of the swarm, joined again through it as a manager advertising where it is now; the
// helper demoted again when the file has it a worker, the lent address taken back. The lending
// is noted in the store before the address is added, so that a run stopped half-way is finished
// by the next, and the address is given back by it.

// lent is an address lent to a manager's interface: Prefix is the address with its network's
// length (what `ip addr add` was given), Iface the interface.
type lent struct {
	Prefix string
	Iface  string
}

func (l lent) addr() string { a, _, _ := strings.Cut(l.Prefix, "/"); return a }

// lentPath is where the store notes an address lent to a machine of a cluster.
func lentPath(root, clusterName, node string) string {
	return filepath.Join(root, "clusters", "lent-"+clusterName+"-"+node)
}

func readLent(root, clusterName, node string) (lent, bool) {
	b, err := os.ReadFile(lentPath(root, clusterName, node))
	if err != nil {
		return lent{}, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return lent{}, false
	}
	return lent{Prefix: f[0], Iface: f[1]}, true
}

// loneRaftAddrOwn says, for the one manager of a swarm whose raft address is not its machine's
// address, whether that address is one of its host's own (an advertise address of its own
// choosing, not a move) and not one that machine lent it. Asked over SSH, only in that case.
func loneRaftAddrOwn(ctx context.Context, root, clusterName string, n *Node, raftAddr string) bool {
	if _, ok := readLent(root, clusterName, n.Name); ok {
		return false
	}
	ifs, err := nodeAddrs(ctx, n)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(ifs, func(i iface) bool { return i.Addr == raftAddr })
}

// rejoinLone puts right the raft address of m, the one manager of its swarm, whose host moved
// from old: see the comment at the top of this file. The other nodes are the file's nodes that
// answer (r.alive), in its order.
func (r *run) rejoinLone(ctx context.Context, m *Node, ch Change) error {
	fail := func(err error) error { return r.fail(m.Name, err) }
	self, _, err := m.Docker.NodeInspectWithRaw(ctx, ch.ID)
	if err != nil {
		return fail(err)
	}
	if self.ManagerStatus == nil {
		return fail(fmt.Errorf("its node entry has no manager status"))
	}
	old, _, err := net.SplitHostPort(self.ManagerStatus.Addr)
	if err != nil {
		return fail(err)
	}
	now := m.IP()
	helper, role := r.raftHelper(m.Name)
	if helper == nil {
		return fail(fmt.Errorf("its raft address %s does not follow its host to %s, and no other node of %s answers to hold the swarm while it joins again: start one (or add one to the file), then run `machine swarm up -f %s` again", old, now, r.c.File(), r.c.File()))
	}
	r.up.say(m.Name, ch.Detail)
	l, err := r.lend(ctx, m, old)
	if err != nil {
		return fail(err)
	}
	r.up.say(m.Name, "its old address "+old+" lent to its "+l.Iface+" for the while: the swarm reaches it there")
	r.forgetNeighbour(ctx, m.Name, old)
	// The helper, a manager beside it, joined afresh through the address the manager has now: a
	// node keeps the address it joined through and, promoted, joins the raft there (a worker
	// that joined through an address the manager no longer has cannot be promoted).
	hst := r.alive[helper.Name]
	if !(hst.Active && hst.Manager) {
		if hst.Active {
			r.up.say(helper.Name, "out of the swarm and in again as a manager, through "+now+": it holds the swarm while "+m.Name+" joins again")
			if err := r.rejoinFresh(ctx, m, helper, hst); err != nil {
				return r.fail(helper.Name, err)
			}
		} else {
			r.up.say(helper.Name, "joins as a manager, through "+now+": it holds the swarm while "+m.Name+" joins again")
			if _, err := Join(ctx, m, []*Node{helper}, JoinOptions{Role: cluster.Manager, Progress: r.up.Progress, at: now}); err != nil {
				return r.fail(helper.Name, err)
			}
		}
	}
	if err := answersAsManager(ctx, helper); err != nil {
		return r.fail(helper.Name, err)
	}
	// The moved manager out, and in again advertising where it is. Its demotion is waited out
	// before it leaves: the raft of two needs its vote to let it go (left sooner, the helper
	// would be alone in a raft of two, without a quorum).
	spec := self.Spec
	if _, err := updateNode(ctx, helper, self.ID, func(s *swarm.NodeSpec) bool { s.Role = swarm.NodeRoleWorker; return true }); err != nil {
		return fail(fmt.Errorf("demoting it through %s: %w", helper.Name, err))
	}
	if err := waitRole(ctx, helper, m, self.ID, swarm.NodeRoleWorker); err != nil {
		return fail(err)
	}
	if err := removeNode(ctx, helper, self.ID); err != nil {
		return fail(fmt.Errorf("through %s: %w", helper.Name, err))
	}
	if err := m.Docker.SwarmLeave(ctx, true); err != nil && !strings.Contains(err.Error(), "not part of a swarm") {
		return fail(fmt.Errorf("leaving the swarm: %w", err))
	}
	if _, err := Join(ctx, helper, []*Node{m}, JoinOptions{Role: cluster.Manager, AdvertiseAddr: now, Progress: r.up.Progress}); err != nil {
		return fail(err)
	}
	st, err := m.Inspect(ctx)
	if err != nil {
		return fail(err)
	}
	if _, err := updateNode(ctx, helper, st.NodeID, func(s *swarm.NodeSpec) bool {
		s.Labels, s.Availability = spec.Labels, spec.Availability
		return true
	}); err != nil {
		return fail(fmt.Errorf("its labels and availability again: %w", err))
	}
	if role != cluster.Manager {
		r.up.say(helper.Name, "demoted again (a worker in the file)")
		hs, err := helper.Inspect(ctx)
		if err != nil {
			return r.fail(helper.Name, err)
		}
		if _, err := updateNode(ctx, m, hs.NodeID, func(s *swarm.NodeSpec) bool { s.Role = swarm.NodeRoleWorker; return true }); err != nil {
			return r.fail(helper.Name, fmt.Errorf("demoting it through %s: %w", m.Name, err))
		}
		if err := waitRole(ctx, m, helper, hs.NodeID, swarm.NodeRoleWorker); err != nil {
			return r.fail(helper.Name, err)
		}
	}
	// Entries left by a run stopped between a leave and the removal of the entry it left.
	for _, n := range []*Node{m, helper} {
		if err := removeLeftBehind(ctx, m, n); err != nil {
			return r.fail(n.Name, err)
		}
	}
	if err := r.giveBack(ctx, m, l); err != nil {
		return fail(err)
	}
	r.up.say(m.Name, "manager address "+now+" (raft), "+old+" given back")
	for _, n := range []*Node{m, helper} {
		if st, err := n.Inspect(ctx); err == nil {
			r.alive[n.Name] = st
		}
	}
	return nil
}

// raftHelper picks the node that holds the swarm while its one manager joins again: a manager of
// the file that answers (in the swarm or not), else a worker in the swarm, else a worker that
// answers; with the role the file gives it.
func (r *run) raftHelper(skip string) (*Node, cluster.Role) {
	var pick *Node
	var pickRole cluster.Role
	rank := 9
	for _, fn := range r.c.Nodes {
		n := r.nodes[fn.Name]
		st, ok := r.alive[fn.Name]
		if fn.Name == skip || n == nil || !ok {
			continue
		}
		k := 3
		switch {
		case st.Active && st.Manager:
			k = 0
		case fn.Role == cluster.Manager:
			k = 1
		case st.Active:
			k = 2
		}
		if k < rank {
			pick, pickRole, rank = n, fn.Role, k
		}
	}
	return pick, pickRole
}

// lend adds old to m's interface that holds its address now, with that network's length, once
// it is known to be free: in that network, not another machine's, and answered by nobody (asked
// from m itself, through its SSH server). An address lent before (a run stopped half-way) is
// taken as it is.
func (r *run) lend(ctx context.Context, m *Node, old string) (lent, error) {
	root := r.api.Store.Root
	if l, ok := readLent(root, r.c.Name, m.Name); ok && l.addr() == old {
		return l, r.runIP(ctx, m, "replace", l)
	}
	l, err := r.lendable(ctx, m, old)
	if err != nil {
		return lent{}, err
	}
	c, err := m.Dial(ctx)
	if err != nil {
		return lent{}, err
	}
	who := answeredAt(ctx, c.Conn(), old)
	c.Close()
	if who != "" {
		return lent{}, fmt.Errorf("its old address %s is in use on its network (%s): the swarm's raft cannot be moved through it (docs/disasters.md, \"Addresses\")", old, who)
	}
	if err := os.MkdirAll(filepath.Dir(lentPath(root, r.c.Name, m.Name)), 0o700); err != nil {
		return lent{}, err
	}
	if err := fsutil.WriteFileAtomic(lentPath(root, r.c.Name, m.Name), []byte(l.Prefix+" "+l.Iface+"\n"), 0o600); err != nil {
		return lent{}, err
	}
	return l, r.runIP(ctx, m, "replace", l)
}

// lendable says how old would be lent to m (its interface that holds its address now, with that
// network's length), or why it cannot be: old is not in that network, or it is another machine's.
func (r *run) lendable(ctx context.Context, m *Node, old string) (lent, error) {
	ifs, err := nodeAddrs(ctx, m)
	if err != nil {
		return lent{}, err
	}
	var l lent
	for _, i := range ifs {
		if i.Addr == m.IP() {
			l.Iface = i.Name
			if p, err := netip.ParsePrefix(i.CIDR); err == nil {
				if oa, err := netip.ParseAddr(old); err == nil && p.Masked().Contains(oa) {
					l.Prefix = netip.PrefixFrom(oa, p.Bits()).String()
				}
			}
		}
	}
	switch {
	case l.Iface == "":
		return lent{}, fmt.Errorf("no interface of it has its address %s", m.IP())
	case l.Prefix == "":
		return lent{}, fmt.Errorf("the swarm's raft has it at %s, which is not in the network of its address now (%s on %s): swarm cannot be made to reach it there; give the host an address in %s's network", old, m.IP(), l.Iface, old)
	}
	names, _ := r.api.List()
	for _, name := range names {
		if name == m.Name {
			continue
		}
		if h, err := r.api.Load(name); err == nil && h.IP() == old {
			return lent{}, fmt.Errorf("the swarm's raft has it at %s, which is machine %s's address now: the raft address cannot be moved through it (docs/disasters.md, \"Addresses\")", old, name)
		}
	}
	return l, nil
}

// giveBack takes a lent address off m's interface, and the store's note of it.
func (r *run) giveBack(ctx context.Context, m *Node, l lent) error {
	if err := r.runIP(ctx, m, "del", l); err != nil && !strings.Contains(err.Error(), "Cannot assign requested address") {
		return err
	}
	return os.Remove(lentPath(r.api.Store.Root, r.c.Name, m.Name))
}

// givenBack takes back the addresses lent to the file's managers that no longer need them (a run
// that stopped after the manager joined again): their raft address is where they are, or they
// are no manager.
func (r *run) givenBack(ctx context.Context) error {
	for _, fn := range r.c.Nodes {
		l, ok := readLent(r.api.Store.Root, r.c.Name, fn.Name)
		n := r.nodes[fn.Name]
		if !ok || n == nil {
			continue
		}
		st, err := n.Inspect(ctx)
		if err != nil {
			continue
		}
		if st.Active && st.Manager {
			self, _, err := n.Docker.NodeInspectWithRaw(ctx, st.NodeID)
			if err != nil || self.ManagerStatus == nil {
				continue
			}
			if host, _, _ := net.SplitHostPort(self.ManagerStatus.Addr); host == l.addr() {
				continue // still its raft address: the rejoin gives it back
			}
		}
		if err := r.giveBack(ctx, n, l); err != nil {
			return r.fail(fn.Name, fmt.Errorf("giving back %s, lent while its raft address moved: %w", l.addr(), err))
		}
		r.up.say(fn.Name, l.addr()+" given back (lent while its raft address moved)")
	}
	return nil
}

// answersAsManager waits (a minute at most) until n's engine answers a manager's call: a node
// just promoted is counted by the others before its own manager is ready.
func answersAsManager(ctx context.Context, n *Node) error {
	var last error
	err := wait.Until(ctx, time.Minute, 500*time.Millisecond, func(ctx context.Context) (bool, string, error) {
		_, last = n.Docker.NodeList(ctx, swarm.NodeListOptions{})
		if last != nil {
			return false, plainErr(last), nil
		}
		return true, "", nil
	})
	var te *wait.TimeoutError
	if errors.As(err, &te) {
		return fmt.Errorf("a manager now, but its engine does not answer as one after %s: %s", te.After, te.Last)
	}
	return err
}

func (r *run) runIP(ctx context.Context, m *Node, verb string, l lent) error {
	c, err := m.Dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if out, err := machine.Runner(c).Run(ctx, nil, "ip", "addr", verb, l.Prefix, "dev", l.Iface); err != nil {
		return fmt.Errorf("ip addr %s %s dev %s: %w %s", verb, l.Prefix, l.Iface, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// answeredAt says what answered at addr when asked from the host behind conn (its SSH server
// connecting to addr's SSH and swarm ports): "" when nothing did (no host, or none that answers:
// the address is free as far as anyone can tell).
func answeredAt(ctx context.Context, conn *ssh.Client, addr string) string {
	for _, port := range []string{"22", "2377", "2376"} {
		dctx, cancel := context.WithTimeout(ctx, 4*time.Second)
		c, err := conn.DialContext(dctx, "tcp", net.JoinHostPort(addr, port))
		cancel()
		if err == nil {
			c.Close()
			return "a host accepts connections on " + port + "/tcp there"
		}
		var oce *ssh.OpenChannelError
		if errors.As(err, &oce) {
			switch msg := strings.ToLower(oce.Message); {
			case strings.Contains(msg, "refused"):
				return "a host refuses connections on " + port + "/tcp there: it is up"
			case strings.Contains(msg, "no route"), strings.Contains(msg, "unreachable"):
				return "" // no host answers its address on the network
			}
		}
	}
	return ""
}

// loneManager says whether the swarm read has one manager.
func (r *run) loneManager() bool {
	if r.ob == nil {
		return false
	}
	n := 0
	for _, on := range r.ob.Nodes {
		if on.Manager {
			n++
		}
	}
	return n == 1
}

// forgetNeighbour has the file's other nodes that answer forget the link-layer address they knew
// for addr (the moved host's old interface, gone): they ask for it again, and find it where it is
// lent now, at once instead of after their neighbour entry goes stale. A node that cannot be
// asked finds it so, later.
func (r *run) forgetNeighbour(ctx context.Context, skip, addr string) {
	var names []string
	for _, fn := range r.c.Nodes {
		if _, ok := r.alive[fn.Name]; ok && fn.Name != skip && r.nodes[fn.Name] != nil {
			names = append(names, fn.Name)
		}
	}
	_ = fanout.Each(ctx, names, 0, nil, func(ctx context.Context, name string) error {
		c, err := r.nodes[name].Dial(ctx)
		if err != nil {
			return nil
		}
		defer c.Close()
		_, _ = machine.Runner(c).Run(ctx, nil, "ip", "neigh", "flush", "to", addr)
		return nil
	})
}

// rejoinFresh has a worker of m's swarm leave it and join again as a manager through m's address
// of today, its labels and availability kept, its old entry removed.
func (r *run) rejoinFresh(ctx context.Context, m, w *Node, st State) error {
	old, _, err := m.Docker.NodeInspectWithRaw(ctx, st.NodeID)
	if err != nil {
		return err
	}
	if err := w.Docker.SwarmLeave(ctx, true); err != nil && !strings.Contains(err.Error(), "not part of a swarm") {
		return fmt.Errorf("leaving the swarm: %w", err)
	}
	if err := removeNode(ctx, m, st.NodeID); err != nil {
		return fmt.Errorf("its old entry, through %s: %w", m.Name, err)
	}
	if _, err := Join(ctx, m, []*Node{w}, JoinOptions{Role: cluster.Manager, Progress: r.up.Progress, at: m.IP()}); err != nil {
		return err
	}
	now, err := w.Inspect(ctx)
	if err != nil {
		return err
	}
	_, err = updateNode(ctx, m, now.NodeID, func(s *swarm.NodeSpec) bool {
		s.Labels, s.Availability = old.Spec.Labels, old.Spec.Availability
		return true
	})
	return err
}

// removeLeftBehind removes, through m, the entries of n's host that are down and not n's own now
// (n left the swarm and joined again, and the entry it left was not removed).
func removeLeftBehind(ctx context.Context, m, n *Node) error {
	st, err := n.Inspect(ctx)
	if err != nil {
		return err
	}
	list, err := m.Docker.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return err
	}
	for _, x := range list {
		if x.ID == st.NodeID || x.Status.State != swarm.NodeStateDown || (x.Description.Hostname != n.Name && x.Status.Addr != n.IP()) {
			continue
		}
		if err := removeNode(ctx, m, x.ID); err != nil {
			return fmt.Errorf("its old entry %s, through %s: %w", short(x.ID), m.Name, err)
		}
	}
	return nil
}
