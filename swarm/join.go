package swarm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/machine-tools/machine/internal/fanout"
	"github.com/machine-tools/machine/internal/sshclient"
	"github.com/machine-tools/machine/internal/wait"
	"github.com/machine-tools/machine/swarm/cluster"
	"github.com/machine-tools/machine/swarm/preflight"
)

// InitOptions are `machine swarm init`'s flags.
type InitOptions struct {
	AdvertiseAddr string // IP or interface; default: the machine's address
	ListenAddr    string
	DataPathAddr  string
	Autolock      bool
}

// What Init and a join say of a node that has just entered its swarm (not one that was in it).
const (
	initialisedPrefix = "swarm initialised"
	joinedPrefix      = "joined as"
)

// Init makes n the first manager of a new swarm. It reports "already" for a manager that is
// in a swarm already.
func Init(ctx context.Context, n *Node, o InitOptions) (string, error) {
	// The init is asked for straight away: on a node that is in a swarm already it fails, and
	// only then is the node's state read to say why (one round trip less on the usual path).
	adv := o.AdvertiseAddr
	if adv == "" {
		adv = n.IP()
	} else if net.ParseIP(adv) == nil {
		ifs, err := nodeAddrs(ctx, n)
		if err == nil {
			adv, err = chooseAdvertise(adv, "", ifs)
		}
		if err != nil {
			if msg, aerr, ok := initAlready(ctx, n); ok {
				return msg, aerr
			}
			return "", err
		}
	}
	listen := o.ListenAddr
	if listen == "" {
		listen = listenFor(adv)
	}
	req := swarm.InitRequest{ListenAddr: listen, AdvertiseAddr: adv, DataPathAddr: o.DataPathAddr, AutoLockManagers: o.Autolock}
	id, err := n.Docker.SwarmInit(ctx, req)
	if err != nil {
		if msg, aerr, ok := initAlready(ctx, n); ok {
			return msg, aerr
		}
		return "", fmt.Errorf("swarm init on %s (advertising %s): %w", n.Name, adv, err)
	}
	msg := fmt.Sprintf(initialisedPrefix+": %s is a manager (node %s), advertising %s", n.Name, short(id), adv)
	if o.Autolock {
		msg += "; autolock is on"
	}
	return msg, nil
}

// initAlready reads the state of a node whose init was refused: ok when that is because the
// node is in a swarm already (a manager: "already"; a worker: an error) or cannot say (locked,
// pending, unreachable: that error).
func initAlready(ctx context.Context, n *Node) (string, error, bool) {
	st, err := n.Inspect(ctx)
	if err != nil {
		return "", err, true
	}
	if !st.Active {
		return "", nil, false
	}
	if st.Manager {
		return fmt.Sprintf("already a manager of swarm %s (advertising %s)", short(st.ClusterID), st.Addr), nil, true
	}
	return "", fmt.Errorf("%s is a worker of %s: it cannot start a swarm of its own (run `machine swarm leave %s` first)", n.Name, st.swarmName(), n.Name), true
}

func nodeAddrs(ctx context.Context, n *Node) ([]iface, error) {
	c, err := n.Dial(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	out, err := c.Run(ctx, nil, "ip", "-o", "addr", "show")
	if err != nil {
		return nil, fmt.Errorf("%s: listing its addresses: %w", n.Name, err)
	}
	return parseAddrs(string(out)), nil
}

// JoinOptions are `machine swarm join`'s flags.
type JoinOptions struct {
	Role          cluster.Role // Worker when empty
	AdvertiseAddr string       // override for every joiner
	ListenAddr    string
	Progress      func(node, msg string)
	// ready are joiners made ready by prepareAll (their state read, SSH open, route to the
	// manager looked up) while the manager was still starting the swarm.
	ready map[string]*readyJoiner
	// Joined, when set, is called as soon as a node is in the swarm (joined now or already),
	// from the goroutine that joined it: what follows a join need not wait for the others.
	Joined func(n *Node, msg string)
	// Parallel bounds how many workers join at once (0: fanout.DefaultLimit()): each join
	// makes the joiner's engine start its swarm components and the managers register it, which
	// on a busy machine takes longer than the engine's own join timeout when all come at once.
	Parallel int
	// at is the manager's address to join through, when not the one it advertises (a manager
	// whose raft address is an old one: the joiner keeps the address it joined through).
	at string
	// checks checks the joiners' ports against this manager for all of a run's joins (one SSH
	// connection to it, its state read for several checks at once): the caller's, which it
	// closes, or Join's own.
	checks *preflight.Manager
}

// readyJoiner is a joiner made ready for a join to a manager at one address.
type readyJoiner struct {
	node      *Node
	mhost     string
	st        State
	c         *sshclient.Client
	src       string
	srcErr    error
	ifs       []iface
	err       error
	closeOnce sync.Once
}

// Close closes the joiner's SSH connection.
func (p *readyJoiner) Close() {
	p.closeOnce.Do(func() {
		if p.c != nil {
			p.c.Close()
		}
	})
}

// routeScript prints a node's route to $1, a separator, and its addresses: one session.
const routeScript = `ip -o route get "$1" && echo --- && ip -o addr show`

// prepareAll makes joiners ready for a join to the manager at mhost, all at once: reads their
// swarm state, opens their SSH connections and looks up the source address of their route to
// the manager. It runs while the manager starts the swarm; Join finishes the work.
//
// known are states the caller read of them a moment ago (swarm up: of nodes in no swarm at its
// observation), which are not asked again: an engine's /info runs `runc --version` and
// `docker-init --version` on its host each time, about 35 ms of the host's CPU.
func prepareAll(ctx context.Context, nodes []*Node, mhost string, known map[string]State) map[string]*readyJoiner {
	ps, _ := fanout.Map(ctx, nodes, 0, func(ctx context.Context, n *Node) (*readyJoiner, error) {
		if st, ok := known[n.Name]; ok {
			return prepareKnown(ctx, n, mhost, st), nil
		}
		return prepare(ctx, n, mhost), nil
	})
	out := map[string]*readyJoiner{}
	for i, n := range nodes {
		if ps[i] != nil {
			out[n.Name] = ps[i]
		}
	}
	return out
}

// prepare reads n's swarm state and, at the same time, opens its SSH connection and looks up
// its route (a node found in a swarm already has its connection closed again).
func prepare(ctx context.Context, n *Node, mhost string) *readyJoiner {
	if n.NeedsSSH() != nil {
		st, err := n.Inspect(ctx)
		if err != nil {
			return &readyJoiner{node: n, mhost: mhost, st: st, err: err}
		}
		return prepareKnown(ctx, n, mhost, st)
	}
	sctx, cancel := context.WithCancel(ctx) // the connection outlives it: used for the dial and the lookup only
	looked := make(chan *readyJoiner, 1)
	go func() { looked <- prepareKnown(sctx, n, mhost, State{}) }()
	st, err := n.Inspect(ctx)
	if err != nil || st.Active {
		// Nothing to look up: no wait for a dial that may not answer (a node in a swarm needs
		// no SSH).
		cancel()
		go func() { (<-looked).Close() }()
		return &readyJoiner{node: n, mhost: mhost, st: st, err: err}
	}
	p := <-looked
	cancel()
	p.st = st
	return p
}

// prepareKnown makes n ready for a join, its swarm state st known.
func prepareKnown(ctx context.Context, n *Node, mhost string, st State) *readyJoiner {
	p := &readyJoiner{node: n, mhost: mhost, st: st}
	if p.st.Active {
		return p
	}
	if n.NeedsSSH() != nil {
		return p // an engine machine did not make (the none driver): no SSH to look from
	}
	if p.c, p.err = n.Dial(ctx); p.err != nil {
		return p
	}
	out, err := p.c.Run(ctx, nil, "sh", "-c", routeScript, "sh", mhost)
	if err != nil {
		p.err = fmt.Errorf("%s: route lookup to %s: %w", n.Name, mhost, err)
		return p
	}
	route, addrs, _ := strings.Cut(string(out), "\n---\n")
	p.src, p.srcErr = routeSource(route)
	p.ifs = parseAddrs(addrs)
	return p
}

// ManagerAddr is the manager's swarm address (host:2377).
func managerAddr(ctx context.Context, m *Node) (State, string, error) {
	st, err := m.Inspect(ctx)
	if err != nil {
		return st, "", err
	}
	if !st.Active {
		return st, "", fmt.Errorf("%s is not in a swarm: start one with `machine swarm init %s`", m.Name, m.Name)
	}
	if !st.Manager {
		return st, "", fmt.Errorf("%s is a worker, not a manager: name one of its swarm's managers instead (`machine ls --filter swarm=manager` lists them)", m.Name)
	}
	addr := st.Addr
	if addr == "" {
		addr = m.IP()
	}
	return st, net.JoinHostPort(addr, "2377"), nil
}

// Join joins nodes to the manager's swarm: managers one at a time (each must be Ready before the
// next, for quorum), workers all at once. The result holds one line per node.
func Join(ctx context.Context, m *Node, nodes []*Node, o JoinOptions) (map[string]string, error) {
	// While the manager's state and token are read: its connection for the port checks and its
	// first reading, and the joiners made ready for the address it is most likely to advertise,
	// its own (a joiner made ready for another is made ready again).
	if o.checks == nil && len(nodes) > 0 {
		o.checks = preflight.NewManager(m.Name, m.Dial)
		defer o.checks.Close()
		go o.checks.Warm(ctx)
	}
	var ready chan map[string]*readyJoiner
	if o.ready == nil && o.at == "" && len(nodes) > 0 {
		ready = make(chan map[string]*readyJoiner, 1)
		go func() { ready <- prepareAll(ctx, nodes, m.IP(), nil) }()
	}
	j, err := newJoiner(ctx, m, o)
	if ready != nil {
		prepared := <-ready
		defer func() {
			for _, p := range prepared {
				p.Close()
			}
		}()
		if j != nil {
			j.o.ready = prepared
		}
	}
	if err != nil {
		return nil, err
	}
	limit := o.Parallel // workers several at once
	if limit <= 0 {
		limit = fanout.DefaultLimit()
	}
	if j.role == cluster.Manager {
		limit = 1 // managers one by one, each Ready before the next
	}
	msgs, errs := fanout.Map(ctx, nodes, limit, j.join)
	results := map[string]string{}
	for i, n := range nodes {
		if errs[i] != nil {
			results[n.Name] = "failed: " + errs[i].Error()
			continue
		}
		results[n.Name] = msgs[i]
	}
	return results, errors.Join(errs...)
}

// joiner joins nodes to one manager's swarm, one node a call: what every join needs (the
// manager's state and address, the token, the port checks' receiver) is read once.
type joiner struct {
	m     *Node
	mst   State
	maddr string
	token string
	role  cluster.Role
	o     JoinOptions
	pf    *preflight.Manager
}

func newJoiner(ctx context.Context, m *Node, o JoinOptions) (*joiner, error) {
	mst, maddr, err := managerAddr(ctx, m)
	if err != nil {
		return nil, err
	}
	if o.at != "" {
		maddr = net.JoinHostPort(o.at, "2377")
	}
	role := o.Role
	if role == "" {
		role = cluster.Worker
	}
	if _, err := cluster.ParseRole(string(role)); err != nil {
		return nil, err
	}
	sw, err := m.Docker.SwarmInspect(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: reading the swarm's join tokens: %w", m.Name, err)
	}
	token := sw.JoinTokens.Worker
	if role == cluster.Manager {
		token = sw.JoinTokens.Manager
	}
	return &joiner{m: m, mst: mst, maddr: maddr, token: token, role: role, o: o, pf: o.checks}, nil
}

// join joins n (a manager: until it is Ready), then tells o.Joined.
func (j *joiner) join(ctx context.Context, n *Node) (string, error) {
	return j.joinKnown(ctx, n, j.o.AdvertiseAddr, nil)
}

// joinKnown joins n advertising adv ("": as its route to the manager says); st is its swarm
// state when read a moment ago (nil: read now).
func (j *joiner) joinKnown(ctx context.Context, n *Node, adv string, st *State) (string, error) {
	o := j.o
	o.AdvertiseAddr = adv
	if st != nil && o.ready[n.Name] == nil {
		mhost, _, _ := net.SplitHostPort(j.maddr)
		o.ready = map[string]*readyJoiner{n.Name: prepareKnown(ctx, n, mhost, *st)}
	}
	msg, err := joinOne(ctx, j.m, j.mst, j.maddr, j.token, j.role, n, o, j.pf)
	if err == nil && o.Joined != nil {
		o.Joined(n, msg)
	}
	return msg, err
}

func joinOne(ctx context.Context, m *Node, mst State, maddr, token string, role cluster.Role, n *Node, o JoinOptions, pf *preflight.Manager) (string, error) {
	say := func(s string) {
		if o.Progress != nil {
			o.Progress(n.Name, s)
		}
	}
	mhost, _, _ := net.SplitHostPort(maddr)
	p := o.ready[n.Name]
	if p == nil || p.mhost != mhost || p.err != nil {
		if p != nil {
			p.Close()
		}
		p = prepare(ctx, n, mhost)
	}
	defer p.Close()
	st := p.st
	if p.err != nil {
		return "", p.err
	}
	if st.Active {
		if inSwarmOf(ctx, m, mst, st) {
			return fmt.Sprintf("already in this swarm (advertising %s)", st.Addr), nil
		}
		return "", fmt.Errorf("%s is in %s, not in %s's swarm %s: run `machine swarm leave %s` first", n.Name, st.swarmName(), m.Name, short(mst.ClusterID), n.Name)
	}
	var adv string
	if p.c == nil {
		// No SSH to the node (the none driver): its ports are not checked from it, and it
		// advertises the address its engine is reached at, or the one given.
		say("no SSH to " + n.Name + ": its swarm ports are not checked from it")
		if adv = o.AdvertiseAddr; adv == "" {
			adv = n.IP()
		}
		if net.ParseIP(adv) == nil {
			return "", fmt.Errorf("%s: advertise address %q: give an IP address (an interface name is looked up over SSH, which %s has not)", n.Name, adv, n.Name)
		}
	} else {
		// Can the node reach the manager's swarm ports? Asked from the node itself.
		say("checking from " + n.Name + " that " + mhost + " answers on 2377/tcp, 7946/tcp+udp and 4789/udp")
		if err := pf.Check(ctx, preflight.End{SSH: p.c, Name: n.Name, Addr: p.src}, mhost); err != nil {
			return "", err
		}
		if p.srcErr != nil && o.AdvertiseAddr == "" {
			return "", fmt.Errorf("%s: %w", n.Name, p.srcErr)
		}
		var err error
		if adv, err = chooseAdvertise(o.AdvertiseAddr, p.src, p.ifs); err != nil {
			return "", fmt.Errorf("%s: %w", n.Name, err)
		}
	}
	listen := o.ListenAddr
	if listen == "" {
		listen = listenFor(adv)
	}
	say("joining as " + string(role) + ", advertising " + adv)
	err := n.Docker.SwarmJoin(ctx, swarm.JoinRequest{ListenAddr: listen, AdvertiseAddr: adv, RemoteAddrs: []string{maddr}, JoinToken: token})
	if err != nil && strings.Contains(err.Error(), "already part of a swarm") {
		// A join sent before (by a run stopped while its request was on the way: the engine
		// carries a join through without its client) went through after this node was read.
		// In this swarm now, it is what this join was for.
		waitPendingEnds(ctx, n)
		if now, ierr := n.Inspect(ctx); ierr == nil && now.Active && inSwarmOf(ctx, m, mst, now) {
			say("in this swarm already: an earlier join went through (advertising " + now.Addr + ")")
			err, adv = nil, now.Addr
		}
	}
	if err != nil {
		return "", fmt.Errorf("%s: swarm join (advertising %s): %s", n.Name, adv, redact(err.Error(), token))
	}
	if role == cluster.Manager {
		if err := waitReady(ctx, m, n); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf(joinedPrefix+" %s, advertising %s", role, adv), nil
}

// inSwarmOf says whether a node in a swarm (its state st) is in manager m's (state mst): the
// same cluster, or, for a worker (which is not told the cluster's ID), a node m lists.
func inSwarmOf(ctx context.Context, m *Node, mst, st State) bool {
	return st.ClusterID == mst.ClusterID || (st.ClusterID == "" && !st.Manager && nodeInSwarm(ctx, m, st.NodeID))
}

func nodeInSwarm(ctx context.Context, m *Node, id string) bool {
	if id == "" {
		return false
	}
	_, _, err := m.Docker.NodeInspectWithRaw(ctx, id)
	return err == nil
}

// waitReady waits until the manager sees n Ready (and, for managers, reachable).
func waitReady(ctx context.Context, m, n *Node) error {
	st, err := n.Inspect(ctx)
	if err != nil {
		return err
	}
	err = wait.Until(ctx, 60*time.Second, 500*time.Millisecond, func(ctx context.Context) (bool, string, error) {
		node, _, err := m.Docker.NodeInspectWithRaw(ctx, st.NodeID)
		ready := err == nil && node.Status.State == swarm.NodeStateReady && (node.ManagerStatus == nil || node.ManagerStatus.Reachability == swarm.ReachabilityReachable)
		return ready, "state " + string(node.Status.State), nil
	})
	var te *wait.TimeoutError
	switch {
	case errors.As(err, &te):
		return fmt.Errorf("%s joined but is not Ready after %s (%s): %s", n.Name, te.After, te.Last, preflight.PortsHelp)
	case err != nil:
		return fmt.Errorf("%s joined; waiting for it to be Ready: %w", n.Name, err)
	}
	return nil
}

func redact(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "[join token]")
}

// JoinToken returns the swarm's join token for a role (shown only when asked for).
func JoinToken(ctx context.Context, m *Node, role cluster.Role) (string, error) {
	if _, _, err := managerAddr(ctx, m); err != nil {
		return "", err
	}
	sw, err := m.Docker.SwarmInspect(ctx)
	if err != nil {
		return "", err
	}
	if role == cluster.Manager {
		return sw.JoinTokens.Manager, nil
	}
	return sw.JoinTokens.Worker, nil
}

// listenFor is the swarm listen address that serves adv: all IPv4 addresses, or all addresses of
// both families for an IPv6 one.
func listenFor(adv string) string {
	host := adv
	if h, _, err := net.SplitHostPort(adv); err == nil {
		host = h
	}
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		return "[::]:2377"
	}
	return "0.0.0.0:2377"
}
