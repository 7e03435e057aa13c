package swarm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/machine-tools/machine/drivers/container"
	"github.com/machine-tools/machine/images"
	"github.com/machine-tools/machine/internal/fanout"
	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm/cluster"
	"github.com/machine-tools/machine/swarm/preflight"
)

// UpOptions tune Up. Everything has a default.
type UpOptions struct {
	// Parallel bounds how many machines are made, and how many workers join, at once (0:
	// fanout.DefaultLimit(), which MACHINE_PARALLEL sets).
	Parallel int
	// Progress hears each node's steps; Warn hears warnings (an even number of managers).
	Progress func(node, msg string)
	Warn     func(msg string)
	// Download wraps VM image downloads to show their progress.
	Download machine.DownloadProgress
	// Local is the engine that `source: local` images are streamed from (default: the local
	// engine that container hosts run on).
	Local func() (images.Target, error)
	// Prune also drains, removes from the swarm and deletes the nodes the file no longer has,
	// and removes the entries of nodes gone for good (down for DownFor, no machine, not in the
	// file).
	Prune   bool
	DownFor time.Duration
	// MaxUnavailable is how many workers may be out at once during rolling changes (default 1);
	// managers always go one at a time.
	MaxUnavailable int
	// OnPlan hears the plan before anything is changed (an empty plan: nothing to change).
	OnPlan func([]Change)
}

func (h UpOptions) say(node, msg string) {
	if h.Progress != nil {
		h.Progress(node, msg)
	}
}

// LocalEngine is the local engine that container hosts run on (MACHINE_CONTAINER_ENGINE_HOST,
// or the default socket), as an image source.
func LocalEngine() (images.Target, error) {
	host := os.Getenv("MACHINE_CONTAINER_ENGINE_HOST")
	if host == "" {
		host = container.DefaultEngineHost
	}
	cli, err := (&container.Driver{EngineHost: host}).Client()
	return images.Target{Name: "local", Client: cli}, err
}

// createNode makes one machine of the cluster, as `machine create` with the file's options.
func createNode(ctx context.Context, api *machine.API, c *cluster.Cluster, n cluster.Node, o UpOptions) error {
	co, err := c.CreateOptions(n)
	if err != nil {
		return err
	}
	co.Progress = func(msg string) { o.say(n.Name, msg) }
	co.Download = o.Download
	start := time.Now()
	h, err := api.Create(ctx, n.Name, co)
	if err != nil {
		return err
	}
	o.say(n.Name, fmt.Sprintf("ready in %s: %s", time.Since(start).Round(100*time.Millisecond), h.URL()))
	return nil
}

// Up brings the cluster to what its file says: missing machines are made in parallel and the
// swarm forms as they come (the first manager starts the swarm as soon as it is made, other
// managers join one by one, workers several at once, each as soon as it is ready), node labels
// and availability are set, networks made, images put on every node, then the plan's role and
// engine changes and removals applied. What is already so is left as it is; after a failure,
// running Up again finishes the job. One `up` or `down` of a cluster runs at a time.
func Up(ctx context.Context, api *machine.API, c *cluster.Cluster, o UpOptions) error {
	r := newRun(api, c)
	r.up = o
	r.up.defaults() // before any step: the machines being made read r.up beside the steps
	return r.do(ctx, upSteps)
}

// upSteps are what `swarm up` does, in the order the work happens. Three pieces of work overlap
// others on purpose: the missing machines are made from "create" on, and each step that needs
// one waits for that one only (the first manager starts the swarm as soon as it is made, each
// later node joins as soon as it is), the last waited for at "machines made"; the images go onto
// the nodes from "images" on, while the swarm forms (the manager's init is mostly a wait inside
// its engine; a machine made later gets them as it comes), and are waited for at "images
// joined"; each node's labels and availability are set as soon as it is in the swarm, and
// waited for at "labels and availability". The joiners get ready (state, SSH, route) while the
// swarm starts.
var upSteps = []step{
	{"observe", (*run).observe},                   // the live cluster, read once; warnings
	{"plan", (*run).makePlan},                     // refused here when a change would cost quorum
	{"create", (*run).createMachines},             // starts: the missing machines, in parallel
	{"reach", (*run).reach},                       // the manager to go through; nodes that are down
	{"rejoin moved managers", (*run).rejoinMoved}, // out now; joined again with the others
	{"images", (*run).startImages},                // starts: runs until "images joined"
	{"swarm init", (*run).initSwarm},              // the joiners are prepared meanwhile
	{"autolock", (*run).autolock},                 // as the file has it; the key kept
	{"certificate validity", (*run).certExpiry},   // as the file has it
	{"routing mesh", (*run).routingMesh},          // before any node joins
	{"join managers", (*run).joinManagers},        // one by one, each Ready before the next
	{"join workers", (*run).joinWorkers},          // at once, and each made one as it comes
	{"machines made", (*run).machinesMade},        // the last create waited for
	{"labels and availability", (*run).waitSpecs}, // joins what each join started
	{"networks", (*run).networks},
	{"images joined", (*run).waitImages},
	{"converge", (*run).converge}, // roles, engines, removals: one manager at a time
	{"ingress settles", (*run).settleIngress},
	{"lent addresses given back", (*run).givenBack}, // a run stopped half-way lent one
}

// thenUp is what a restore or a recover ends with: the live cluster read again, then the rest
// of the file brought up as swarm up brings it.
var thenUp = append([]step{{"observe again", (*run).reobserve}}, upSteps[1:]...)

func (r *run) observe(ctx context.Context) error {
	if w := cluster.QuorumWarning(len(r.c.Managers())); w != "" && r.up.Warn != nil {
		r.up.Warn(w)
	}
	if w := container.NeighbourWarning(r.c.ContainerNodes()); w != "" && r.up.Warn != nil {
		r.up.Warn(w)
	}
	return r.reobserve(ctx)
}

// reobserve reads the live cluster (again, after a restore or a recover: what was read before
// is closed).
func (r *run) reobserve(ctx context.Context) error {
	for _, n := range r.nodes {
		n.Close()
	}
	r.nodes, r.ob = map[string]*Node{}, nil
	ob, err := observe(ctx, r.api, r.c, r.open, true)
	if err != nil {
		return fmt.Errorf("reading the live cluster: %w", err)
	}
	r.ob, r.nodes, r.alive = ob, ob.nodes, ob.states
	ob.Expiring = expiring(ctx, ob.nodes, ob.states, ob.issuers) // the plan warns of them
	for _, name := range slices.Sorted(maps.Keys(ob.Moved)) {
		r.up.say(name, "its host answers at another address now ("+ob.Moved[name]+"): the machine followed it (its record, and its engine's certificate reissued)")
	}
	for _, name := range ob.PendingLeft {
		r.up.say(name, "its engine was stuck in a swarm join that did not finish (pending, or in error): it left it, and joins again")
	}
	for _, name := range slices.Sorted(maps.Keys(ob.Expired)) {
		r.up.say(name, "its swarm certificate expired at "+ob.Expired[name].Format(time.RFC3339)+" (it was off for longer than its validity): it left its swarm, and joins again")
	}
	for _, name := range ob.Unlocked {
		r.up.say(name, "was locked (autolock, its engine restarted): unlocked with the key the store keeps")
		if ob.via != nil && ob.via != r.nodes[name] {
			if err := waitReady(ctx, ob.via, r.nodes[name]); err != nil {
				return r.fail(name, err)
			}
		}
	}
	if ob.Autolock && ob.via != nil {
		// The key of a swarm locked at rest is kept however the lock was turned on.
		if _, err := keepLiveKey(ctx, ob.via); err != nil {
			return r.fail(ob.via.Name, err)
		}
	}
	return nil
}

// makePlan computes the plan from the file and the observation, refused before anything
// changes when a step would cost quorum; an empty one ends the run.
func (r *run) makePlan(ctx context.Context) error {
	plan, err := Plan(r.c, r.ob.Observed, PlanOptions{Prune: r.up.Prune, DownFor: r.up.DownFor})
	if err != nil {
		return err
	}
	if r.up.OnPlan != nil {
		r.up.OnPlan(plan)
	}
	r.plan, r.done = plan, !Changes(plan)
	return nil
}

func (r *run) limit() int {
	if r.up.Parallel > 0 {
		return r.up.Parallel
	}
	return fanout.DefaultLimit()
}

// createMachines starts making the machines the store does not have, after checking that this
// computer can hold the container hosts among them (making.go: the swarm forms meanwhile).
func (r *run) createMachines(ctx context.Context) error {
	var missing []cluster.Node
	for _, n := range r.c.Nodes {
		if r.ob.Machines[n.Name] {
			r.up.say(n.Name, "machine exists")
			continue
		}
		missing = append(missing, n)
	}
	if err := checkCapacity(r.c, missing, len(r.c.Nodes)-len(missing)); err != nil {
		return err
	}
	if len(missing) > 0 {
		r.startMaking(ctx, missing)
	}
	return nil
}

// reach finds the manager to go through: the first of the file's nodes that answered as a
// manager (the leader may have moved, the first manager may be down); when none did, the file's
// first manager starts the swarm. Nodes whose engines do not answer are skipped when the plan has
// nothing for them, and stop the run when it has.
func (r *run) reach(ctx context.Context) error {
	for _, n := range r.c.Nodes {
		if err := r.ob.openErr[n.Name]; err != nil {
			return &StepError{n.Name, "opening its engine", err}
		}
	}
	managers := r.c.Managers()
	r.first = liveManager(r.c, r.alive, r.nodes)
	if r.first == nil {
		if r.making.pending(managers[0].Name) { // it starts the swarm as soon as it is made
			if err := r.takeMade(ctx, managers[0].Name); err != nil {
				return err
			}
		}
		r.first, r.firstAdv = r.nodes[managers[0].Name], managers[0].AdvertiseAddr
	}
	for _, n := range r.c.Nodes {
		if _, ok := r.alive[n.Name]; ok || r.making.pending(n.Name) {
			continue
		}
		for _, ch := range r.plan {
			if ch.Node == n.Name && ch.Kind != ChangeKeep {
				why := fmt.Sprintf("its engine does not answer within %s", observeLimit)
				if e := r.ob.Unobserved[n.Name]; e != "" {
					why = e
				}
				return &StepError{n.Name, ch.Detail, fmt.Errorf("%s: start it (`machine start %s`), or take it out of the file", why, n.Name)}
			}
		}
		why := "its engine does not answer"
		if e := r.ob.Unobserved[n.Name]; e != "" {
			why += " (" + e + ")"
		}
		r.up.say(n.Name, why+": skipped (the plan has nothing for it)")
	}
	return nil
}

// rejoinMoved takes the managers whose raft address is not their host's any more out of the
// swarm through a manager that is where the swarm has it (demoted first: they are unreachable,
// so the quorum does not count them), and has them leave: the joins that follow join them again,
// advertising where they are now. A swarm whose every manager moved cannot be put right so.
func (r *run) rejoinMoved(ctx context.Context) error {
	var moved []string
	for _, ch := range r.plan {
		if ch.Kind == ChangeRejoin {
			moved = append(moved, ch.Node)
		}
	}
	if len(moved) == 0 {
		return nil
	}
	// A manager that moves needs another node of the file to hold the swarm meanwhile: the
	// machines being made are waited for (a restore onto new hosts makes them all).
	if err := r.machinesMade(ctx); err != nil {
		return err
	}
	var others []string
	for _, n := range order(r.c) {
		if !slices.Contains(moved, n) {
			others = append(others, n)
		}
	}
	via := firstManagerOf(others, r.alive, r.nodes)
	if _, lentTo := r.ob.Lent[moved[0]]; len(moved) == 1 && ((via == nil && r.loneManager()) || lentTo) {
		// Alone in its raft (or was, in a run that stopped half-way): moved through a node
		// made a manager beside it for the while.
		for _, ch := range r.plan {
			if ch.Kind == ChangeRejoin {
				return r.rejoinLone(ctx, r.nodes[ch.Node], ch)
			}
		}
	}
	if via == nil {
		return &StepError{moved[0], "rejoining at its new address", fmt.Errorf("every manager of the swarm moved: no manager is left that the swarm reaches where it has it; `machine swarm recover -f %s` forces a new cluster on one", r.c.File())}
	}
	r.first = via
	for _, ch := range r.plan {
		if ch.Kind != ChangeRejoin {
			continue
		}
		r.up.say(ch.Node, ch.Detail)
		if err := removeDead(ctx, via, ch.ID); err != nil {
			return r.fail(ch.Node, err)
		}
		n := r.nodes[ch.Node]
		if err := n.Docker.SwarmLeave(ctx, true); err != nil && !strings.Contains(err.Error(), "not part of a swarm") {
			return r.fail(ch.Node, fmt.Errorf("leaving the swarm: %w", err))
		}
		r.alive[ch.Node] = State{} // out: the joins join it again
	}
	return nil
}

// defaults fills what the caller left unset.
func (o *UpOptions) defaults() {
	if o.Local == nil {
		o.Local = LocalEngine
	}
}

// startImages starts putting the file's images on every live node; waitImages joins it.
func (r *run) startImages(ctx context.Context) error {
	imgCtx, stop := context.WithCancel(ctx)
	r.imgCtx, r.imgWork = imgCtx, &imageWork{}
	// Copies: the run's maps take the machines made meanwhile.
	r.imgWork.put(imgCtx, r.c, maps.Clone(r.nodes), maps.Clone(r.alive), r.up)
	r.images = sync.OnceValue(r.imgWork.wait)
	r.later = append(r.later, func() error { stop(); return r.images() }) // a failure ends it too
	return nil
}

// imagesOn starts putting the file's images on a node made while the swarm formed.
func (r *run) imagesOn(n *Node) {
	if r.imgWork != nil && len(r.c.Images) > 0 {
		r.imgWork.put(r.imgCtx, r.c, map[string]*Node{n.Name: n}, map[string]State{n.Name: {}}, r.up)
	}
}

// imageWork is the images' work under way: for the nodes there at "images", and for each
// machine made later as it comes.
type imageWork struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

func (w *imageWork) put(ctx context.Context, c *cluster.Cluster, nodes map[string]*Node, alive map[string]State, h UpOptions) {
	w.wg.Go(func() {
		if err := putImages(ctx, c, nodes, alive, h); err != nil {
			w.mu.Lock()
			w.errs = append(w.errs, err)
			w.mu.Unlock()
		}
	})
}

func (w *imageWork) wait() error {
	w.wg.Wait()
	return errors.Join(w.errs...)
}

func (r *run) waitImages(ctx context.Context) error { return r.images() }

// initSwarm starts the swarm on the first manager (or finds it started), while the joiners get
// ready for their join to the address it will have.
func (r *run) initSwarm(ctx context.Context) error {
	expect := r.firstAdv
	if net.ParseIP(expect) == nil {
		expect = r.first.IP()
	}
	var joiners []*Node
	for _, n := range r.c.Nodes {
		if _, ok := r.alive[n.Name]; ok && n.Name != r.first.Name {
			joiners = append(joiners, r.nodes[n.Name])
		}
	}
	ready := make(chan map[string]*readyJoiner, 1)
	// Those out of any swarm at the observation (or when made) a moment ago are not read again;
	// a node in a swarm is (a manager read while its swarm elected a leader may not have named
	// its cluster yet).
	known := map[string]State{}
	for _, n := range joiners {
		if st := r.alive[n.Name]; !st.Active {
			known[n.Name] = st
		}
	}
	go func() { ready <- prepareAll(ctx, joiners, expect, known) }()
	// The joiners' port checks against the first manager: its connection and first reading
	// while it starts the swarm.
	r.checks = preflight.NewManager(r.first.Name, r.first.Dial)
	r.later = append(r.later, func() error { r.checks.Close(); return nil })
	if len(joiners) > 0 || r.making != nil {
		go r.checks.Warm(ctx)
	}
	autolock := r.c.Swarm.Autolock != nil && *r.c.Swarm.Autolock
	msg, err := Init(ctx, r.first, InitOptions{AdvertiseAddr: r.firstAdv, Autolock: autolock})
	r.prepared = <-ready
	r.later = append(r.later, func() error {
		for _, p := range r.prepared {
			p.Close()
		}
		return nil
	})
	if err != nil {
		return r.fail(r.first.Name, err)
	}
	r.up.say(r.first.Name, msg)
	// Each node's labels and availability as soon as it is in the swarm.
	r.specs = &specs{r: r, ctx: ctx}
	r.later = append(r.later, func() error { r.specs.wg.Wait(); return nil })
	r.specs.start(r.first, strings.HasPrefix(msg, initialisedPrefix))
	return nil
}

// autolock turns the swarm's autolock on or off as the file has it (left as it is when the file
// does not say), and keeps the unlock key while it is on.
func (r *run) autolock(ctx context.Context) error {
	m := r.first
	turnedOn := false
	if want := r.c.Swarm.Autolock; want != nil {
		sw, err := m.Docker.SwarmInspect(ctx)
		if err != nil {
			return r.fail(m.Name, err)
		}
		if sw.Spec.EncryptionConfig.AutoLockManagers != *want {
			spec := sw.Spec
			spec.EncryptionConfig.AutoLockManagers = *want
			if err := m.Docker.SwarmUpdate(ctx, sw.Version, spec, swarm.UpdateFlags{}); err != nil {
				return r.fail(m.Name, fmt.Errorf("turning autolock %s: %w", onOff(*want), err))
			}
			r.up.say(m.Name, "autolock "+onOff(*want))
			turnedOn = *want
		}
	}
	on, err := keepLiveKey(ctx, m)
	if err != nil {
		return r.fail(m.Name, err)
	}
	if on && (turnedOn || !r.ob.InSwarm) {
		r.up.say(m.Name, "the unlock key is kept in the store (`machine swarm unlock-key -f "+r.c.File()+"` prints it)")
	}
	return nil
}

// certExpiry sets the validity of the nodes' certificates as the file has it (left as it is when
// the file does not say). Swarm applies a new validity only with a new root CA (its signer is made
// again only then): the root is rotated with it, every node in the swarm given a certificate of
// the new validity, waited for. At the swarm's start that is its first manager alone.
func (r *run) certExpiry(ctx context.Context) error {
	want := r.c.CertExpiry()
	if want == 0 {
		return nil
	}
	m := r.first
	sw, err := m.Docker.SwarmInspect(ctx)
	if err != nil {
		return r.fail(m.Name, err)
	}
	if sw.Spec.CAConfig.NodeCertExpiry == want {
		return nil
	}
	r.up.say(m.Name, "node certificates valid for "+hours(want)+": the root CA rotated for it (swarm applies a validity with a new CA)")
	err = rotateCA(ctx, m, want, func(done, total int) {
		if total > 1 {
			r.up.say(m.Name, fmt.Sprintf("%d of %d nodes hold a certificate of the new CA", done, total))
		}
	})
	if err != nil {
		return r.fail(m.Name, fmt.Errorf("setting the node certificate validity to %s: %w", hours(want), err))
	}
	return nil
}

// hours writes a validity as the file does (720h, 1h30m), without the zero minutes and seconds.
func hours(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// routingMesh makes the routing mesh as the file has it, before any node joins (a node that
// joins a swarm without it makes no ingress sandbox).
func (r *run) routingMesh(ctx context.Context) error {
	want, fresh := r.c.RoutingMesh(), slices.Contains(r.plan, Change{Kind: ChangeNetwork, Detail: meshOffAtStart})
	switch {
	case slices.Contains(r.plan, Change{Kind: ChangeNetwork, Detail: meshOffNoIPVS}):
		want, fresh = false, true
	case r.c.Swarm.RoutingMesh == nil && r.ob.MeshCannotWork:
		return nil // left as the swarm has it
	}
	removed, err := ensureRoutingMesh(ctx, r.first, want, fresh, r.up)
	if err != nil {
		return r.fail(r.first.Name, err)
	}
	r.meshRemoved = removed
	return nil
}

func (r *run) live(name string) bool {
	_, ok := r.alive[name]
	return ok && name != r.first.Name
}

func (r *run) joinManagers(ctx context.Context) error {
	for _, m := range r.c.Managers() {
		if r.making.pending(m.Name) { // joins as soon as it is made
			if err := r.takeMade(ctx, m.Name); err != nil {
				return err
			}
			r.imagesOn(r.nodes[m.Name])
		}
		if !r.live(m.Name) {
			continue
		}
		if _, err := Join(ctx, r.first, []*Node{r.nodes[m.Name]}, JoinOptions{Role: cluster.Manager, AdvertiseAddr: m.AdvertiseAddr, Progress: r.up.Progress, ready: r.prepared, Joined: r.specs.joined, checks: r.checks}); err != nil {
			return r.fail(m.Name, err)
		}
	}
	return nil
}

// joinWorkers joins the workers, r.limit() at a time: those there now at once, each machine
// being made as soon as it is (its images started then too).
func (r *run) joinWorkers(ctx context.Context) error {
	type joining struct {
		w    cluster.Node
		node *Node // nil: being made
	}
	var todo []joining
	for _, w := range r.c.Workers() {
		switch {
		case r.making.pending(w.Name):
			todo = append(todo, joining{w, nil})
		case r.live(w.Name):
			todo = append(todo, joining{w, r.nodes[w.Name]})
		}
	}
	if len(todo) == 0 {
		return nil
	}
	j, err := newJoiner(ctx, r.first, JoinOptions{Role: cluster.Worker, Progress: r.up.Progress, ready: r.prepared, Joined: r.specs.joined, checks: r.checks})
	if err != nil {
		return r.fail(r.first.Name, err)
	}
	sem := make(chan struct{}, r.limit())
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for i, t := range todo {
		wg.Go(func() {
			n, known := t.node, (*State)(nil)
			if n == nil {
				st, err := State{}, error(nil)
				if n, st, err = r.making.await(ctx, t.w.Name); err != nil {
					return // said at "machines made"
				}
				known = &st // read as it was made
				r.imagesOn(n)
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = context.Cause(ctx)
				return
			}
			defer func() { <-sem }()
			_, errs[i] = j.joinKnown(ctx, n, t.w.AdvertiseAddr, known)
		})
	}
	wg.Wait()
	if ctx.Err() != nil && r.making != nil {
		return r.makingStopped(ctx)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("joining workers: %w\nrun the same `machine swarm up` again to finish", err)
	}
	return nil
}

// specs sets each node's labels and availability, through the first manager, as soon as the
// node is in the swarm, while the others are still joining.
type specs struct {
	r    *run
	ctx  context.Context
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

// start sets n's labels and availability as the file has them. fresh: n has just entered the
// swarm (its init, or a join), so its spec is the default one; when the file asks nothing else,
// nothing is read or set (reading the node's ID costs its engine an /info).
func (s *specs) start(n *Node, fresh bool) {
	want, _ := s.r.c.Node(n.Name)
	if fresh && len(want.Labels) == 0 && availabilityOf(want) == "active" {
		return
	}
	s.wg.Go(func() {
		if err := applySpec(s.ctx, s.r.first, n, want, s.r.up); err != nil {
			s.mu.Lock()
			s.errs = append(s.errs, &StepError{n.Name, "labels and availability", err})
			s.mu.Unlock()
		}
	})
}

func (s *specs) joined(n *Node, msg string) {
	s.r.up.say(n.Name, msg)
	s.start(n, strings.HasPrefix(msg, joinedPrefix))
}

func (r *run) waitSpecs(ctx context.Context) error {
	r.specs.wg.Wait()
	return errors.Join(r.specs.errs...)
}

func (r *run) networks(ctx context.Context) error {
	for _, nw := range r.c.Networks {
		if err := ensureNetwork(ctx, r.first, nw, r.up); err != nil {
			return r.fail(r.first.Name, fmt.Errorf("creating network %s: %w", nw.Name, err))
		}
	}
	return nil
}

// converge applies what the plan says of roles, engines and nodes that left, one manager at a time.
func (r *run) converge(ctx context.Context) error {
	if err := converge(ctx, r.api, r.c, r.plan, r.first, r.up, r.open); err != nil {
		return err
	}
	if slices.ContainsFunc(r.plan, func(ch Change) bool { return ch.Kind == ChangeDemote && ch.Node == r.first.Name }) {
		// Demoted itself (through another manager): the rest goes through one of the file's.
		if m := liveManager(r.c, probe(ctx, r.nodes), r.nodes); m != nil {
			r.first = m
		}
	}
	return nil
}

func (r *run) settleIngress(ctx context.Context) error {
	if r.meshRemoved.IsZero() {
		return nil
	}
	return settleIngress(ctx, r.first, r.meshRemoved)
}

// putImages puts the file's images on every live node: side-loaded from the local engine
// (read once for all) or pulled by each.
func putImages(ctx context.Context, c *cluster.Cluster, nodes map[string]*Node, alive map[string]State, h UpOptions) error {
	var targets []images.Target
	for _, n := range c.Nodes {
		if _, ok := alive[n.Name]; ok {
			targets = append(targets, images.Target{Name: n.Name, Client: nodes[n.Name].Docker})
		}
	}
	for _, im := range c.Images {
		progress := images.Progress(h.Progress)
		if im.Source == "local" {
			src, err := h.Local()
			if err != nil {
				return &StepError{"local engine", "reading image " + im.Name, err}
			}
			if _, _, err := images.SideLoad(ctx, src.Client, im.Name, targets, progress); err != nil {
				return fmt.Errorf("side-loading %s: %w", im.Name, err)
			}
			continue
		}
		// The Docker config's credentials for the image's registry, as `machine pull` sends them.
		auth, err := images.RegistryAuth(im.Name, "", "")
		if err != nil {
			return fmt.Errorf("pulling %s: %w", im.Name, err)
		}
		if _, err := images.Pull(ctx, im.Name, targets, images.PullOptions{Auth: auth, Progress: progress}); err != nil {
			return fmt.Errorf("pulling %s: %w", im.Name, err)
		}
	}
	return nil
}

// Changes says whether a plan changes anything (nodes kept outside the file change nothing).
func Changes(plan []Change) bool {
	for _, ch := range plan {
		if ch.Kind != ChangeKeep && ch.Kind != ChangeSkewed && ch.Kind != ChangeCertificate && ch.Kind != ChangeRaftAlone {
			return true
		}
	}
	return false
}

// checkCapacity refuses, before any is made, container hosts on this machine's engine that it
// cannot hold (container.CapacityError); existing counts the file's machines that are there.
func checkCapacity(c *cluster.Cluster, missing []cluster.Node, existing int) error {
	local := 0
	for _, n := range missing {
		if c.DriverName(n) != container.Name {
			continue
		}
		if host, _ := c.NodeOptions(n)["engine-host"].(string); host == "" || strings.HasPrefix(host, "unix://") {
			local++
		}
	}
	if err := container.CapacityError(local, existing); err != nil {
		return fmt.Errorf("%s: %w", c.File(), err)
	}
	return nil
}
