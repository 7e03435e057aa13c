package swarm

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/machine-tools/machine/internal/fanout"
	"github.com/machine-tools/machine/internal/wait"
	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm/cluster"
	"github.com/machine-tools/machine/swarm/preflight"
)

// A step is one named piece of `swarm up` or `swarm down` over the run they share. Its name is
// what a StepError of it names.
type step struct {
	name string
	do   func(r *run, ctx context.Context) error
}

// run is one `swarm up` or `swarm down` of a cluster file: the file, the options, and what each
// step leaves for the next (the observation, the plan, the nodes opened once).
type run struct {
	api  *machine.API
	c    *cluster.Cluster
	up   UpOptions
	down DownOptions
	// open opens a machine's engine: OpenNode, or, in tests, a fake engine.
	open func(name string) (*Node, error)

	step  string           // the step under way
	done  bool             // set by a step when nothing is left to do
	ob    *observation     // the live cluster, read once
	plan  []Change         // what up changes
	nodes map[string]*Node // the file's machines, opened once (closed by finish)
	alive map[string]State // the swarm state of those whose engine answers
	first *Node            // the manager the run goes through
	errs  []error          // failures kept while the other nodes go on
	later []func() error   // work started by a step, joined by a later one (or by finish)

	// up's own: the first manager's advertise address from the file, the joiners made ready
	// while the swarm starts, the two pieces of work that overlap others (the images, each
	// node's labels and availability), and when the routing mesh was removed.
	firstAdv    string
	prepared    map[string]*readyJoiner
	checks      *preflight.Manager // the joiners' port checks against first
	images      func() error
	imgCtx      context.Context
	imgWork     *imageWork
	making      *making // the machines being made while the swarm forms
	specs       *specs
	meshRemoved time.Time

	// down's own: the swarm's node ID of each of the file's machines.
	ids map[string]string
}

func newRun(api *machine.API, c *cluster.Cluster) *run {
	return &run{api: api, c: c, open: opener(api), nodes: map[string]*Node{}, alive: map[string]State{}}
}

// do runs the steps in order until one fails or one says that nothing is left to do; whatever
// was started and not joined is joined, and every node opened is closed, before it returns.
func (r *run) do(ctx context.Context, steps []step) (err error) {
	release, err := r.api.Store.LockCluster(r.c.Name)
	if err != nil {
		return err
	}
	defer release()
	defer r.finish()
	for _, s := range steps {
		r.step = s.name
		if err := s.do(r, ctx); err != nil {
			return err
		}
		if r.done {
			return nil
		}
	}
	return nil
}

// finish joins what is still running (in the reverse order of its start) and closes the nodes.
func (r *run) finish() {
	for i := len(r.later) - 1; i >= 0; i-- {
		r.later[i]()
	}
	for _, n := range r.nodes {
		n.Close()
	}
}

// fail is err as the step's failure on a node.
func (r *run) fail(node string, err error) error {
	return &StepError{Node: node, Step: r.step, Err: err}
}

// StepError names the node and the step of `swarm up`, `swarm down` or a rolling change that
// failed.
type StepError struct {
	Node, Step string
	Err        error
}

func (e *StepError) Error() string { return fmt.Sprintf("%s: %s: %v", e.Node, e.Step, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }

// order is the file's nodes, managers first (as the file lists them), then workers.
func order(c *cluster.Cluster) []string {
	var out []string
	for _, n := range c.Managers() {
		out = append(out, n.Name)
	}
	for _, n := range c.Workers() {
		out = append(out, n.Name)
	}
	return out
}

// probeTimeout bounds how long a node's engine is given to answer before it counts as down.
const probeTimeout = 5 * time.Second

// probe asks every node's engine its swarm state at once; a node whose engine does not answer
// within probeTimeout has no entry.
func probe(ctx context.Context, nodes map[string]*Node) map[string]State {
	names := slices.Sorted(maps.Keys(nodes))
	states, errs := fanout.Map(ctx, names, 0, func(ctx context.Context, n string) (State, error) {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		defer cancel()
		return nodes[n].Inspect(pctx)
	})
	out := map[string]State{}
	for i, n := range names {
		if errs[i] == nil {
			out[n] = states[i]
		}
	}
	return out
}

// liveManager is how a manager to go through is found among nodes already read: the first of
// the file's nodes (managers first, in file order; then workers, which a promotion may have
// made managers) that answered as an active manager. nil when none did.
func liveManager(c *cluster.Cluster, states map[string]State, nodes map[string]*Node) *Node {
	return firstManagerOf(order(c), states, nodes)
}

func firstManagerOf(names []string, states map[string]State, nodes map[string]*Node) *Node {
	for _, n := range names {
		if st, ok := states[n]; ok && st.Active && st.Manager && nodes[n] != nil {
			return nodes[n]
		}
	}
	return nil
}

// findManager opens names at once and gives the first of them (in their order) whose engine
// answers, within probeTimeout, as an active manager, open (the caller closes it); the others are
// closed. nil when none does.
func findManager(ctx context.Context, names []string, open func(string) (*Node, error)) *Node {
	opened, _ := fanout.Map(ctx, names, 0, func(ctx context.Context, n string) (*Node, error) {
		node, err := open(n)
		if err != nil {
			return nil, nil
		}
		return node, nil
	})
	nodes := map[string]*Node{}
	for i, n := range names {
		if opened[i] != nil {
			nodes[n] = opened[i]
		}
	}
	m := firstManagerOf(names, probe(ctx, nodes), nodes)
	for _, n := range nodes {
		if n != m {
			n.Close()
		}
	}
	return m
}

// forceNewCluster makes n the one manager of the swarm it holds (a restored state, the survivor
// of a lost quorum), advertising the file's address for it or its host's address of today, and
// waits until its swarm's store answers.
func (r *run) forceNewCluster(ctx context.Context, n *Node) error {
	adv := n.IP()
	if fn, _ := r.c.Node(n.Name); net.ParseIP(fn.AdvertiseAddr) != nil {
		adv = fn.AdvertiseAddr
	}
	r.up.say(n.Name, "forcing a new cluster of one, advertising "+adv)
	if _, err := n.Docker.SwarmInit(ctx, swarm.InitRequest{ForceNewCluster: true, AdvertiseAddr: adv, ListenAddr: listenFor(adv)}); err != nil {
		return r.fail(n.Name, err)
	}
	return wait.Until(ctx, 2*time.Minute, 500*time.Millisecond, func(ctx context.Context) (bool, string, error) {
		if _, err := n.Docker.NodeList(ctx, swarm.NodeListOptions{}); err != nil {
			return false, err.Error(), nil
		}
		return true, "", nil
	})
}

// openAll opens the file's machines that exist and reads their swarm states at once (what a
// swarm without a quorum still tells: observe stops at the lost quorum).
func (r *run) openAll(ctx context.Context) error {
	for _, n := range r.c.Nodes {
		if !r.api.Exists(n.Name) || r.nodes[n.Name] != nil {
			continue
		}
		o, err := r.open(n.Name)
		if err != nil {
			return &StepError{n.Name, "opening its engine", err}
		}
		r.nodes[n.Name] = o
	}
	r.alive = probe(ctx, r.nodes)
	return nil
}
