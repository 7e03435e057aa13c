package swarm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"

	"github.com/machine-tools/machine/internal/fanout"
	"github.com/machine-tools/machine/internal/wait"
	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm/cluster"
)

// observeLimit bounds each read of one engine while the cluster is observed: an engine that
// accepts connections and answers nothing (a paused container, a frozen VM) is named after it
// (one whose TLS handshake does not complete, after the 10 s of machine.Host.Docker). It is above
// swarm's own 20 s request timeout: a manager's `docker info` waits for a leader while the swarm
// elects one (its leader just lost), and that is an answer worth waiting for.
const observeLimit = 25 * time.Second

// followLimit bounds following a machine to its new address (its engine provisioned again).
const followLimit = 3 * time.Minute

// observation is one reading of the live cluster: what the plan is made from, and what Up goes
// on with (the file's machines opened once, the swarm state of those that answered, the manager
// the swarm was read through). close closes every node.
type observation struct {
	Observed
	nodes   map[string]*Node  // the file's machines that exist, opened
	openErr map[string]error  // those that could not be opened
	states  map[string]State  // those whose engine answered
	via     *Node             // nil: no node answered as a manager
	issuers map[string]string // the CA that issued each node's certificate (issuerID), by machine
}

func (o *observation) close() {
	for _, n := range o.nodes {
		n.Close()
	}
}

// Observe reads the live cluster that the file describes: the store's machines and their
// engine options, and, through the first of the file's managers that answers as one, the
// swarm's nodes, networks and which nodes have the file's images. It changes nothing. The
// file's machines are read at once, each read bounded by ObserveLimit; those that do not answer
// are in Unobserved. When ctx ends, its error: never an observation made of cancelled reads.
// via, when not nil, is the manager read through, open: the caller closes it.
func Observe(ctx context.Context, a *machine.API, c *cluster.Cluster) (Observed, *Node, error) {
	ob, err := observe(ctx, a, c, opener(a), false)
	if err != nil {
		return Observed{}, nil, err
	}
	// (not of a moved host, which is read over SSH only once the machine follows it)
	read := maps.Clone(ob.states)
	maps.DeleteFunc(read, func(name string, _ State) bool { return ob.Moved[name] != "" })
	ob.Expiring = expiring(ctx, ob.nodes, read, ob.issuers)
	for name, n := range ob.nodes {
		if n != ob.via {
			n.Close()
			delete(ob.nodes, name)
		}
	}
	return ob.Observed, ob.via, nil
}

// expiring reads the swarm certificates of the nodes in a swarm (over SSH, all at once, each
// within certReadLimit) and returns those in their last tenth of validity, with when they expire.
// A certificate that cannot be read is left out: this is a warning, never a reason to fail.
func expiring(ctx context.Context, nodes map[string]*Node, states map[string]State, issuers map[string]string) map[string]time.Time {
	var names []string
	for name, st := range states {
		if st.Active && nodes[name] != nil && nodes[name].Host != nil {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	now := time.Now()
	exp, _ := fanout.Map(ctx, names, 0, func(ctx context.Context, name string) (time.Time, error) {
		k, ok := nodeCertValidity(ctx, nodes[name].Host, issuers[name], false, now)
		if !ok || !k.soon(now) {
			return time.Time{}, nil
		}
		return k.NotAfter, nil
	})
	out := map[string]time.Time{}
	for i, name := range names {
		if !exp[i].IsZero() {
			out[name] = exp[i]
		}
	}
	return out
}

// opener opens the store's machines' engines (what tests give fake engines instead of).
func opener(a *machine.API) func(string) (*Node, error) {
	return func(name string) (*Node, error) { return OpenNode(a, name) }
}

// observe reads the live cluster. With repair, what keeps a node from being read is put right
// first: a manager found locked (autolock, its engine restarted) is unlocked with the store's kept
// key (said in Unlocked), a machine whose host answers at another address now follows it (said in
// Moved); without, they are listed (Locked, Moved) and the node is not read.
func observe(ctx context.Context, a *machine.API, c *cluster.Cluster, open func(string) (*Node, error), repair bool) (ob *observation, err error) {
	ob = &observation{Observed: Observed{Machines: map[string]bool{}, Nodes: map[string]ObservedNode{}, Engines: map[string]machine.EngineOptions{},
		Networks: map[string]bool{}, Images: map[string]map[string]bool{}, Unobserved: map[string]string{}},
		nodes: map[string]*Node{}, openErr: map[string]error{}, states: map[string]State{}, issuers: map[string]string{}}
	ob.At = time.Now()
	ob.MeshCannotWork = meshCannotWork(c)
	ob.Moved, ob.IPs, ob.Lent = map[string]string{}, map[string]string{}, map[string]string{}
	for _, n := range c.Nodes {
		if l, ok := readLent(a.Store.Root, c.Name, n.Name); ok {
			ob.Lent[n.Name] = l.addr()
		}
	}
	ob.Expired = map[string]time.Time{}
	expiredManager := map[string]bool{}
	defer func() {
		if ctx.Err() != nil {
			err = fmt.Errorf("observing the cluster: %w", context.Cause(ctx))
		}
		if err != nil {
			ob.close()
			ob = nil
		}
	}()
	names, err := a.List()
	if err != nil {
		return ob, err
	}
	for _, n := range names {
		ob.Machines[n] = true
		if h, err := a.Load(n); err == nil {
			ob.Engines[n] = h.Engine
		}
	}
	// Every machine of the file at once: its swarm state, and which of the file's images it has.
	type seen struct {
		node     *Node
		st       State
		images   map[string]bool
		err      error
		openErr  error
		locked   bool
		unlocked bool
		moved    string // "OLD → NEW"
		ip       string // NEW, when it was read there without following it (no repair)
		// pendingLeft: a join stuck pending was left (the node joins again)
		pendingLeft bool
		// expiredManager: the node's certificate, expired, is a manager's (or could not be read)
		expiredManager bool
	}
	var present []string
	for _, n := range c.Nodes {
		if ob.Machines[n.Name] {
			present = append(present, n.Name)
		}
	}
	views, _ := fanout.Map(ctx, present, 0, func(ctx context.Context, name string) (seen, error) {
		node, err := open(name)
		if err != nil {
			return seen{err: err, openErr: err}, nil
		}
		v := seen{node: node, images: map[string]bool{}}
		rctx, cancel := context.WithTimeout(ctx, observeLimit)
		defer cancel()
		v.st, v.err = node.Inspect(rctx)
		if v.err != nil && ctx.Err() == nil && node.Host != nil {
			// Its host may have another address now (a new lease, a reconnected network).
			if ip, changed := node.Host.AddressChanged(ctx); changed {
				v.moved = node.Host.IP() + " → " + ip
				if !repair {
					// Read where it is, its record left as it is (a plan changes nothing).
					cli, err := node.Host.DockerAt(ip)
					if err != nil {
						v.err = nil
						return v, nil
					}
					node.Docker.Close()
					node.Docker, v.ip, v.err = cli, ip, nil
				} else {
					fctx, cancel := context.WithTimeout(ctx, followLimit)
					_, v.err = node.Host.FollowAddress(fctx, nil)
					cancel()
					if v.err == nil {
						node.Close()
						if node, v.err = open(name); v.err != nil {
							return seen{err: v.err, openErr: v.err}, nil
						}
						v.node = node
					}
				}
				if v.err == nil {
					// A fresh bound: the follow took its own time (a manager's engine that
					// restarted away from its raft address waits for a leader before it answers).
					fresh, cancelFresh := context.WithTimeout(ctx, observeLimit)
					defer cancelFresh()
					rctx = fresh
					v.st, v.err = node.Inspect(rctx)
					if v.err != nil && v.st.Pending {
						// A manager away from its raft address cannot reach its swarm: the
						// plan rejoins it (the node list still has it as a manager).
						v.err = nil
					}
				}
				if v.err != nil && !repair {
					v.err, v.ip, v.st = nil, "", State{} // moved, not read: the plan says so
					return v, nil
				}
			}
		}
		if v.err != nil && !v.st.CertExpired.IsZero() && v.moved == "" {
			// Its certificate expired while it was off: it joins again, decided once every
			// node is read (a manager's only through another manager).
			v.expiredManager = true
			if node.Host != nil {
				if cert, err := readNodeCert(ctx, node.Host); err == nil {
					v.expiredManager = managerCert(cert)
				}
			}
			v.err = nil
			return v, nil
		}
		if v.err != nil && v.st.Pending && v.moved == "" && !repair {
			// A plan only reads: a join under way (an `up` stopped while its engine joined)
			// ends within the engine's own 20 s; given that time, the node is read again.
			waitPendingEnds(ctx, node)
			fresh, cancelFresh := context.WithTimeout(ctx, observeLimit)
			defer cancelFresh()
			rctx = fresh
			v.st, v.err = node.Inspect(rctx)
		}
		if v.err != nil && (v.st.Pending || v.st.Failed) && v.moved == "" && repair {
			// A join the engine gave up on (its own 20 s timeout) leaves it pending for good:
			// it leaves, and the joins that follow join it again. Never a node that holds a
			// raft log: a manager trying to reach its swarm (a survivor of a lost quorum, one
			// forcing a new cluster) would lose what it holds.
			if holdsRaftLog(ctx, node) {
				// Given its time to end it by itself (a manager's join or forced cluster that a
				// stopped run left the engine to finish), and read again.
				waitPendingEnds(ctx, node)
				fresh, cancelFresh := context.WithTimeout(ctx, observeLimit)
				defer cancelFresh()
				rctx = fresh
				if v.st, v.err = node.Inspect(rctx); v.err != nil && (v.st.Pending || v.st.Failed) {
					v.err = fmt.Errorf("its engine is trying to reach its swarm (%s), and holds a manager's raft log: not made to leave; if the swarm lost its quorum, `machine swarm recover -f %s`", plainErr(v.err), c.File())
				}
			} else if v.err = leavePending(ctx, node); v.err == nil {
				v.pendingLeft = true
				fresh, cancelFresh := context.WithTimeout(ctx, observeLimit)
				defer cancelFresh()
				rctx = fresh
				v.st, v.err = node.Inspect(rctx)
			}
		}
		if le := (*LockedError)(nil); errors.As(v.err, &le) {
			if !repair {
				v.err, v.locked = nil, true
				return v, nil
			}
			if v.err = unlockNode(rctx, node); v.err == nil {
				if v.err = waitUnlocked(rctx, node); v.err == nil {
					v.unlocked = true
					v.st, v.err = node.Inspect(rctx)
				}
			}
		}
		if v.err == nil {
			for _, im := range c.Images {
				_, err := node.Docker.ImageInspect(rctx, im.Name)
				switch {
				case err == nil:
					v.images[im.Name] = true
				case !errdefs.IsNotFound(err):
					v.err = fmt.Errorf("image %s: %w", im.Name, err)
				}
			}
		}
		if v.err != nil && errors.Is(rctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil && (errors.Is(v.err, context.DeadlineExceeded) || strings.Contains(v.err.Error(), "deadline exceeded")) {
			v.err = fmt.Errorf("its engine did not answer within %s", observeLimit)
		}
		return v, nil
	})
	for i, name := range present {
		if views[i].node != nil {
			ob.nodes[name] = views[i].node
		}
	}
	if ctx.Err() != nil {
		return ob, ctx.Err()
	}
	for i, name := range present {
		v := views[i]
		if v.openErr != nil {
			ob.openErr[name] = v.openErr
		}
		if v.err != nil {
			ob.Unobserved[name] = plainErr(v.err)
			continue
		}
		if v.moved != "" {
			ob.Moved[name] = v.moved
			if !repair && v.ip == "" {
				continue
			}
		}
		if v.locked {
			ob.Locked = append(ob.Locked, name)
			continue
		}
		if v.unlocked {
			ob.Unlocked = append(ob.Unlocked, name)
		}
		if v.pendingLeft {
			ob.PendingLeft = append(ob.PendingLeft, name)
		}
		if !v.st.CertExpired.IsZero() {
			ob.Expired[name] = v.st.CertExpired
			expiredManager[name] = v.expiredManager
			if v.node != nil && v.node.Host != nil {
				ob.IPs[name] = v.node.Host.IP()
			}
			continue
		}
		ob.states[name] = v.st
		if v.node != nil && v.node.Host != nil {
			ob.IPs[name] = v.node.Host.IP()
		}
		if v.ip != "" {
			ob.IPs[name] = v.ip
		}
		for im := range v.images {
			if ob.Images[im] == nil {
				ob.Images[im] = map[string]bool{}
			}
			ob.Images[im][name] = true
		}
	}
	ob.via = liveManager(c, ob.states, ob.nodes)
	// Nodes whose certificate expired: out of their swarm (left), to join again. A manager's
	// only while another manager answers (the last one's swarm would be lost with it).
	for _, name := range slices.Sorted(maps.Keys(ob.Expired)) {
		at := ob.Expired[name].Format(time.RFC3339)
		if expiredManager[name] && ob.via == nil {
			ob.Unobserved[name] = "its swarm certificate expired at " + at + " and no other manager of the file answers to take it back: see docs/disasters.md (restore from a backup)"
			delete(ob.Expired, name)
			continue
		}
		if !repair {
			continue
		}
		n := ob.nodes[name]
		if err := n.Docker.SwarmLeave(ctx, true); err != nil {
			ob.Unobserved[name] = "its swarm certificate expired at " + at + "; leaving its swarm to join again: " + plainErr(err)
			delete(ob.Expired, name)
			continue
		}
		st, err := n.Inspect(ctx)
		if err != nil {
			ob.Unobserved[name] = "its swarm certificate expired at " + at + "; after leaving its swarm: " + plainErr(err)
			delete(ob.Expired, name)
			continue
		}
		ob.states[name] = st
	}
	if ob.via == nil {
		return ob, nil
	}
	via := ob.via
	ob.InSwarm = true
	if lost := quorumLost(ctx, c, ob.states, ob.nodes, via); lost != nil {
		return ob, lost
	}
	rctx, cancel := context.WithTimeout(ctx, observeLimit)
	defer cancel()
	var list []swarm.Node
	err = settling(ctx, func(ctx context.Context) (err error) {
		lctx, cancel := context.WithTimeout(ctx, observeLimit)
		defer cancel()
		list, err = via.Docker.NodeList(lctx, swarm.NodeListOptions{})
		return err
	})
	if noLeader(err) {
		return ob, &QuorumLostError{Total: len(ob.states[via.Name].Managers), Reachable: []string{via.Name}, File: c.File()}
	}
	if err != nil {
		return ob, fmt.Errorf("listing the swarm's nodes through %s: %w", via.Name, err)
	}
	machineOf, err := machineFinder(a)
	if err != nil {
		return ob, err
	}
	for _, x := range list {
		name := machineOf(x.Status.Addr, x.Description.Hostname)
		if name == "" {
			name = x.Description.Hostname
		}
		on := ObservedNode{Machine: name, ID: x.ID, Ready: x.Status.State == swarm.NodeStateReady, Reachable: true,
			Availability: string(x.Spec.Availability), Labels: map[string]string{}}
		for k, v := range x.Spec.Labels {
			on.Labels[k] = v
		}
		if x.Status.State == swarm.NodeStateDown {
			on.DownSince = x.UpdatedAt
		}
		if x.ManagerStatus != nil {
			on.Manager, on.Leader = true, x.ManagerStatus.Leader
			if host, _, err := net.SplitHostPort(x.ManagerStatus.Addr); err == nil {
				on.RaftAddr = host
			}
			on.Reachable = x.ManagerStatus.Reachability == swarm.ReachabilityReachable
		}
		// A machine out of its swarm to join again: whatever entry it had is old.
		if _, left := ob.Expired[name]; left || slices.Contains(ob.PendingLeft, name) {
			ob.Stale = append(ob.Stale, on)
			continue
		}
		// A machine that joined again: its live entry counts, the old one is stale.
		if old, dup := ob.Nodes[name]; dup && old.Ready && !on.Ready {
			ob.Stale = append(ob.Stale, on)
			continue
		} else if dup && !old.Ready && on.Ready {
			ob.Stale = append(ob.Stale, old)
		}
		ob.Nodes[name] = on
		ob.issuers[name] = issuerID(x.Description.TLSInfo.CertIssuerPublicKey)
	}
	// The one manager of a swarm whose raft address is not its machine's: moved, or advertising
	// an address of its own choosing? (Asked of its host only then.)
	var managers []string
	for name, on := range ob.Nodes {
		if on.Manager {
			managers = append(managers, name)
		}
	}
	if len(managers) == 1 {
		name := managers[0]
		on := ob.Nodes[name]
		if n := ob.nodes[name]; n != nil && n.Host != nil && on.RaftAddr != "" && on.RaftAddr != ob.IPs[name] && ob.Moved[name] == "" {
			on.RaftAddrOwn = loneRaftAddrOwn(rctx, a.Store.Root, c.Name, n, on.RaftAddr)
			ob.Nodes[name] = on
		}
	}
	nets, err := via.Docker.NetworkList(rctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("driver", "overlay"))})
	if err != nil {
		return ob, fmt.Errorf("listing the swarm's networks through %s: %w", via.Name, err)
	}
	for _, n := range nets {
		ob.Networks[n.Name] = true
		ob.Ingress = ob.Ingress || n.Ingress
	}
	sw, err := via.Docker.SwarmInspect(rctx)
	if err != nil {
		return ob, fmt.Errorf("reading the swarm's settings through %s: %w", via.Name, err)
	}
	ob.Autolock = sw.Spec.EncryptionConfig.AutoLockManagers
	ob.CertExpiry = sw.Spec.CAConfig.NodeCertExpiry
	if ob.Skewed, err = Skews(rctx, via); err != nil {
		return ob, err
	}
	return ob, nil
}

// plainErr is an error as one line for a listing.
func plainErr(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// settleLimit bounds how long a manager's swarm-side timeouts are asked through again.
const settleLimit = time.Minute

// settling runs a manager's call again while the swarm itself answers that it timed out or has
// no leader yet (gRPC DeadlineExceeded or Unavailable: a manager just lost, an election under
// way on a loaded host), for settleLimit at most; any other error is returned at once.
func settling(ctx context.Context, call func(ctx context.Context) error) error {
	var last error
	err := wait.Until(ctx, settleLimit, time.Second, func(ctx context.Context) (bool, string, error) {
		last = call(ctx)
		switch {
		case last == nil:
			return true, "", nil
		case strings.Contains(last.Error(), "rpc error: code = DeadlineExceeded"), strings.Contains(last.Error(), "rpc error: code = Unavailable"):
			return false, last.Error(), nil
		}
		return false, "", last
	})
	var te *wait.TimeoutError
	if errors.As(err, &te) && last != nil {
		return last
	}
	return err
}
