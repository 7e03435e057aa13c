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

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"

	"github.com/machine-tools/machine/drivers/container"
	"github.com/machine-tools/machine/images"
	"github.com/machine-tools/machine/internal/fanout"
	"github.com/machine-tools/machine/internal/wait"
	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm/cluster"
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
	// Prune also drains, removes from the swarm and deletes the nodes the file no longer has.
	Prune bool
	// MaxUnavailable is how many workers may be out at once during rolling changes (default 1);
	// managers always go one at a time.
	MaxUnavailable int
	// OnPlan hears the plan before anything is changed (an empty plan: nothing to change).
	OnPlan func([]Change)
}

// PhaseError names the node and the phase that failed.
type PhaseError struct {
	Node, Phase string
	Err         error
}

func (e *PhaseError) Error() string { return fmt.Sprintf("%s: %s: %v", e.Node, e.Phase, e.Err) }
func (e *PhaseError) Unwrap() error { return e.Err }

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

// CreateNode makes one machine of the cluster, as `machine create` with the file's options.
func CreateNode(ctx context.Context, api *machine.API, c *cluster.Cluster, n cluster.Node, o UpOptions) error {
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

// Up brings the cluster to what its file says: missing machines are made in parallel, the first
// manager starts the swarm, other managers join one by one and workers all at once, node labels
// and availability are set, networks made, images put on every node. What is already so is left
// as it is; after a failure, running Up again finishes the job.
func Up(ctx context.Context, api *machine.API, c *cluster.Cluster, h UpOptions) error {
	// One `up` or `down` of a cluster at a time: a second one is refused, naming the first.
	release, err := api.Store.LockCluster(c.Name)
	if err != nil {
		return err
	}
	defer release()
	managers := c.Managers()
	if w := cluster.QuorumWarning(len(managers)); w != "" && h.Warn != nil {
		h.Warn(w)
	}
	if w := container.NeighbourWarning(c.ContainerNodes()); w != "" && h.Warn != nil {
		h.Warn(w)
	}
	// The plan first: computed from the file and the live cluster, refused before anything
	// changes when a step would cost quorum.
	plan, err := PlanFor(ctx, api, c, PlanOptions{Prune: h.Prune})
	if err != nil {
		return err
	}
	if h.OnPlan != nil {
		h.OnPlan(plan)
	}
	if !Changes(plan) {
		return nil
	}
	if h.Local == nil {
		h.Local = LocalEngine
	}
	limit := h.Parallel
	if limit <= 0 {
		limit = fanout.DefaultLimit()
	}
	// 1. Machines: first whether this computer can hold the container hosts to make.
	var missing []cluster.Node
	for _, n := range c.Nodes {
		if api.Exists(n.Name) {
			h.say(n.Name, "machine exists")
			continue
		}
		missing = append(missing, n)
	}
	if err := checkCapacity(c, missing, len(c.Nodes)-len(missing)); err != nil {
		return err
	}
	err = fanout.Each(ctx, missing, limit, nil, func(ctx context.Context, n cluster.Node) error {
		h.say(n.Name, "creating the machine")
		if err := CreateNode(ctx, api, c, n, h); err != nil {
			return &PhaseError{n.Name, "create", err}
		}
		return nil
	})
	if err != nil && ctx.Err() != nil {
		// One line for all of them, not one "context canceled" a node.
		made := 0
		for _, n := range missing {
			if api.Exists(n.Name) {
				made++
			}
		}
		return fmt.Errorf("interrupted while making the machines: %d of %d made, the rest not started or undone (run the same `machine swarm up` again to finish): %w", made, len(missing), context.Cause(ctx))
	}
	if err != nil {
		return fmt.Errorf("%w\nthe other machines were kept: run the same `machine swarm up` again to finish", err)
	}
	nodes := map[string]*Node{}
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	for _, n := range c.Nodes {
		o, err := OpenNode(api, n.Name)
		if err != nil {
			return &PhaseError{n.Name, "opening its engine", err}
		}
		nodes[n.Name] = o
	}
	// 2. The swarm, through the first of the file's nodes that answers as a manager of one (the
	// leader may have moved, the first manager may be down); when none does, the file's first
	// manager starts it. Nodes whose engines do not answer are skipped when the plan has nothing
	// for them, and stop the run when it has. While the swarm starts, the joiners get ready
	// (their state, SSH connection and route to the manager's expected address).
	alive := probe(ctx, nodes)
	// 5, started now: the images go onto every live node while the swarm forms (independent
	// work: the manager's init is mostly a wait inside its engine).
	imgCtx, stopImages := context.WithCancel(ctx)
	imagesDone := make(chan error, 1)
	go func() { imagesDone <- putImages(imgCtx, c, nodes, alive, h) }()
	waitImages := sync.OnceValue(func() error { return <-imagesDone })
	defer func() { stopImages(); waitImages() }() // an earlier failure ends the images' work too
	var order []string
	for _, n := range managers {
		order = append(order, n.Name)
	}
	for _, n := range c.Workers() {
		order = append(order, n.Name)
	}
	first, firstAdv := liveManager(order, alive, nodes), ""
	if first == nil {
		first, firstAdv = nodes[managers[0].Name], managers[0].AdvertiseAddr
	}
	for _, n := range c.Nodes {
		if _, ok := alive[n.Name]; ok {
			continue
		}
		for _, ch := range plan {
			if ch.Node == n.Name && ch.Kind != ChangeKeep {
				return &PhaseError{n.Name, ch.Detail, fmt.Errorf("its engine does not answer within %s: start it (`machine start %s`), or take it out of the file", probeTimeout, n.Name)}
			}
		}
		h.say(n.Name, "its engine does not answer: skipped (the plan has nothing for it)")
	}
	expect := firstAdv
	if net.ParseIP(expect) == nil {
		expect = first.IP()
	}
	var joiners []*Node
	for _, n := range c.Nodes {
		if _, ok := alive[n.Name]; ok && n.Name != first.Name {
			joiners = append(joiners, nodes[n.Name])
		}
	}
	ready := make(chan map[string]*Prepared, 1)
	go func() { ready <- Prepare(ctx, joiners, expect) }()
	msg, err := Init(ctx, first, InitOptions{AdvertiseAddr: firstAdv})
	prepared := <-ready
	defer func() {
		for _, p := range prepared {
			p.Close()
		}
	}()
	if err != nil {
		return &PhaseError{first.Name, "swarm init", err}
	}
	h.say(first.Name, msg)
	// The routing mesh as the file has it, before any node joins (a node that joins a swarm
	// without it makes no ingress sandbox).
	meshRemoved, err := ensureRoutingMesh(ctx, first, c.RoutingMesh(), slices.Contains(plan, Change{Kind: ChangeNetwork, Detail: meshOffAtStart}), h)
	if err != nil {
		return &PhaseError{first.Name, "routing mesh", err}
	}
	// 3. Labels and availability: each node's as soon as it is in the swarm, while the others
	// are still joining.
	spec := map[string]cluster.Node{}
	for _, n := range c.Nodes {
		spec[n.Name] = n
	}
	var specWG sync.WaitGroup
	defer specWG.Wait()
	var mu sync.Mutex
	var specErrs []error
	applyLater := func(n *Node) {
		specWG.Go(func() {
			if err := applySpec(ctx, first, n, spec[n.Name], h); err != nil {
				mu.Lock()
				specErrs = append(specErrs, &PhaseError{n.Name, "setting labels and availability", err})
				mu.Unlock()
			}
		})
	}
	joined := func(n *Node, msg string) {
		h.say(n.Name, msg)
		applyLater(n)
	}
	applyLater(first)
	live := func(name string) bool { _, ok := alive[name]; return ok && name != first.Name }
	for _, m := range managers {
		if !live(m.Name) {
			continue
		}
		if _, err := Join(ctx, first, []*Node{nodes[m.Name]}, JoinOptions{Role: cluster.Manager, AdvertiseAddr: m.AdvertiseAddr, Progress: h.Progress, Prepared: prepared, Joined: joined}); err != nil {
			return &PhaseError{m.Name, "joining as a manager", err}
		}
	}
	if len(c.Workers()) > 0 {
		// One call for all workers: they join at the same time. A per-node override of the
		// advertise address is honoured by joining that node on its own.
		var plain []*Node
		for _, w := range c.Workers() {
			if w.AdvertiseAddr == "" && live(w.Name) {
				plain = append(plain, nodes[w.Name])
			}
		}
		type batch struct {
			nodes []*Node
			adv   string
		}
		var batches []batch
		if len(plain) > 0 {
			batches = append(batches, batch{plain, ""})
		}
		for _, w := range c.Workers() {
			if w.AdvertiseAddr != "" && live(w.Name) {
				batches = append(batches, batch{[]*Node{nodes[w.Name]}, w.AdvertiseAddr})
			}
		}
		err := fanout.Each(ctx, batches, 0, nil, func(ctx context.Context, b batch) error {
			_, err := Join(ctx, first, b.nodes, JoinOptions{Role: cluster.Worker, AdvertiseAddr: b.adv, Progress: h.Progress, Prepared: prepared, Joined: joined, Parallel: limit})
			return err
		})
		if err != nil {
			return fmt.Errorf("joining workers: %w\nrun the same `machine swarm up` again to finish", err)
		}
	}
	specWG.Wait()
	if err := errors.Join(specErrs...); err != nil {
		return err
	}
	// 4. Networks.
	for _, nw := range c.Networks {
		if err := ensureNetwork(ctx, first, nw, h); err != nil {
			return &PhaseError{first.Name, "creating network " + nw.Name, err}
		}
	}
	// 5. Images: what started after the probe.
	if err := waitImages(); err != nil {
		return err
	}
	// 6. Roles, engines and nodes that left: what the plan says, one manager at a time.
	if err := converge(ctx, api, c, plan, first, h); err != nil {
		return err
	}
	if !meshRemoved.IsZero() {
		return settleIngress(ctx, first, meshRemoved)
	}
	return nil
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
				return &PhaseError{"local engine", "reading image " + im.Name, err}
			}
			if _, _, err := images.SideLoad(ctx, src.Client, im.Name, targets, progress); err != nil {
				return fmt.Errorf("side-loading %s: %w", im.Name, err)
			}
			continue
		}
		// The Docker config's credentials for the image's registry, as `machine pull` sends them.
		auth, err := registryAuth(im.Name, "", "")
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
		if ch.Kind != ChangeKeep {
			return true
		}
	}
	return false
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

// settleIngress waits (10 s at most) until m lists no ingress network, 2 s after its removal at
// the earliest: the removal leaves the swarm's store at once, but a manager's engine may still
// make its own sandbox of the network in the next second, and list it until it is torn down
// again; a plan made then would see a routing mesh.
func settleIngress(ctx context.Context, m *Node, removed time.Time) error {
	for time.Since(removed) < 10*time.Second {
		if i, err := ingressNetwork(ctx, m); err != nil || (i == nil && time.Since(removed) > 2*time.Second) {
			return nil
		}
		if err := wait.Sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// ingressNetwork is the swarm's ingress network as m lists it (nil: none).
func ingressNetwork(ctx context.Context, m *Node) (*network.Summary, error) {
	list, err := m.Docker.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("driver", "overlay"))})
	if err != nil {
		return nil, err
	}
	for i := range list {
		if list[i].Ingress {
			return &list[i], nil
		}
	}
	return nil, nil
}

// ensureRoutingMesh makes the swarm's ingress network exist, or not. fresh: the swarm has just
// started, and its leader makes the ingress network shortly after: waited for (5 s at most) so
// that it is removed before any node joins.
// removed is when it was removed (zero: it was not).
func ensureRoutingMesh(ctx context.Context, m *Node, want, fresh bool, h UpOptions) (removed time.Time, err error) {
	var ingress *network.Summary
	for start := time.Now(); ; {
		var err error
		if ingress, err = ingressNetwork(ctx, m); err != nil {
			return removed, err
		}
		if ingress != nil || want || !fresh || time.Since(start) > 5*time.Second {
			break
		}
		if err := wait.Sleep(ctx, 100*time.Millisecond); err != nil {
			return removed, err
		}
	}
	switch {
	case want && ingress == nil:
		if _, err := m.Docker.NetworkCreate(ctx, "ingress", network.CreateOptions{Driver: "overlay", Ingress: true}); err != nil {
			return removed, fmt.Errorf("creating the ingress network: %w", err)
		}
		h.say(m.Name, "routing mesh on: ingress network created")
	case !want && ingress != nil:
		if err := m.Docker.NetworkRemove(ctx, ingress.ID); err != nil {
			return removed, fmt.Errorf("removing the ingress network (a service that publishes a port in ingress mode keeps it: publish with mode=host, or set swarm: {routing-mesh: true}): %w", err)
		}
		removed = time.Now()
		h.say(m.Name, "routing mesh off: ingress network removed (published ports need mode=host)")
	}
	return removed, nil
}

func ensureNetwork(ctx context.Context, m *Node, nw cluster.Network, h UpOptions) error {
	list, err := m.Docker.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", nw.Name))})
	if err != nil {
		return err
	}
	for _, x := range list {
		if x.Name == nw.Name {
			if x.Driver != "overlay" || x.Scope != "swarm" {
				return fmt.Errorf("a %s network named %q exists on %s: rename it or the cluster's network", x.Driver, nw.Name, m.Name)
			}
			h.say(m.Name, "network "+nw.Name+" exists")
			return nil
		}
	}
	opts := network.CreateOptions{Driver: "overlay", Attachable: nw.Attachable, Labels: map[string]string{"io.machine.cluster": "true"}}
	if nw.Subnet != "" {
		opts.IPAM = &network.IPAM{Config: []network.IPAMConfig{{Subnet: nw.Subnet}}}
	}
	if _, err := m.Docker.NetworkCreate(ctx, nw.Name, opts); err != nil {
		return err
	}
	h.say(m.Name, "network "+nw.Name+" created")
	return nil
}

// DownOptions tune Down.
type DownOptions struct {
	// KeepMachines leaves the swarm but keeps the machines.
	KeepMachines bool
	// Force takes the swarm down even when it has nodes that the file does not name (they are
	// left in a swarm without managers).
	Force    bool
	Progress func(node, msg string)
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

// liveManager is the first of names (in order) whose engine answered as a swarm manager.
func liveManager(names []string, alive map[string]State, nodes map[string]*Node) *Node {
	for _, n := range names {
		if st, ok := alive[n]; ok && st.Active && st.Manager && nodes[n] != nil {
			return nodes[n]
		}
	}
	return nil
}

// Down takes every node out of the swarm in an order that keeps quorum to the end (workers,
// then managers one by one, the manager it goes through last), then removes the machines. It
// goes through the first of the file's managers that answers; nodes whose engines do not
// answer are removed from the swarm's list through it. A swarm with nodes that the file does not
// name is left alone unless Force.
func Down(ctx context.Context, api *machine.API, c *cluster.Cluster, h DownOptions) error {
	release, err := api.Store.LockCluster(c.Name)
	if err != nil {
		return err
	}
	defer release()
	say := func(n, m string) {
		if h.Progress != nil {
			h.Progress(n, m)
		}
	}
	open := map[string]*Node{}
	defer func() {
		for _, n := range open {
			n.Close()
		}
	}()
	for _, n := range c.Nodes {
		if !api.Exists(n.Name) {
			say(n.Name, "no such machine: nothing to do")
			continue
		}
		o, err := OpenNode(api, n.Name)
		if err != nil {
			return &PhaseError{n.Name, "opening its engine", err}
		}
		open[n.Name] = o
	}
	alive := probe(ctx, open)
	var order []string
	for _, n := range c.Managers() {
		order = append(order, n.Name)
	}
	for _, n := range c.Workers() {
		order = append(order, n.Name)
	}
	via := liveManager(order, alive, open)
	ids := map[string]string{} // machine → swarm node ID, as the live manager lists them
	if via != nil {
		list, err := via.Docker.NodeList(ctx, swarm.NodeListOptions{})
		if err != nil {
			return &PhaseError{via.Name, "listing the swarm's nodes", err}
		}
		machineOf, err := machineFinder(api)
		if err != nil {
			return err
		}
		var foreign []string
		for _, x := range list {
			name := machineOf(x.Status.Addr, x.Description.Hostname)
			if open[name] != nil {
				ids[name] = x.ID
				continue
			}
			foreign = append(foreign, fmt.Sprintf("%s (%s)", x.Description.Hostname, x.Status.Addr))
		}
		if len(foreign) > 0 && !h.Force {
			return fmt.Errorf("the swarm of %s has nodes that %s does not name: %s; `swarm down` would leave them in a swarm without managers: take them out first (`machine swarm leave NAME`, or `docker swarm leave` on them), or pass --force",
				via.Name, c.Name, strings.Join(foreign, ", "))
		}
	}
	var errs []error
	// Nodes that do not answer: out of the swarm's list through the live manager (a manager
	// demoted first, which keeps quorum while the others answer).
	for _, name := range order {
		if _, ok := alive[name]; ok || open[name] == nil {
			continue
		}
		if via == nil || ids[name] == "" {
			say(name, "its engine does not answer: nothing to leave")
			continue
		}
		say(name, "its engine does not answer: removing it from the swarm through "+via.Name)
		if err := removeDead(ctx, via, ids[name]); err != nil {
			errs = append(errs, &PhaseError{name, "removing it from the swarm", err})
		}
	}
	// The others leave: workers at once, then managers one by one, via last.
	var ws []*Node
	for _, w := range c.Workers() {
		if _, ok := alive[w.Name]; ok && open[w.Name] != via {
			ws = append(ws, open[w.Name])
		}
	}
	groups := [][]*Node{ws}
	managers := c.Managers()
	for i := len(managers) - 1; i >= 0; i-- {
		if _, ok := alive[managers[i].Name]; ok && open[managers[i].Name] != via {
			groups = append(groups, []*Node{open[managers[i].Name]})
		}
	}
	if via != nil {
		groups = append(groups, []*Node{via})
	}
	for _, group := range groups {
		errs = append(errs, fanout.Each(ctx, group, 0, nil, func(ctx context.Context, n *Node) error {
			v := via
			if v == n {
				v = nil
			}
			res, err := Leave(ctx, []*Node{n}, v)
			if err != nil {
				return &PhaseError{n.Name, "leaving the swarm", err}
			}
			say(n.Name, res[n.Name])
			return nil
		}))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if h.KeepMachines {
		return nil
	}
	return fanout.Each(ctx, slices.Sorted(maps.Keys(open)), 0, nil, func(ctx context.Context, name string) error {
		if err := api.Remove(ctx, name, false); err != nil {
			return &PhaseError{name, "removing the machine", err}
		}
		say(name, "removed")
		return nil
	})
}

// removeDead takes a node whose engine does not answer out of the swarm through manager m:
// demoted first when it is a manager, then removed by force.
func removeDead(ctx context.Context, m *Node, id string) error {
	if _, err := updateNode(ctx, m, id, func(spec *swarm.NodeSpec) bool {
		if spec.Role == swarm.NodeRoleWorker {
			return false
		}
		spec.Role = swarm.NodeRoleWorker
		return true
	}); err != nil {
		return fmt.Errorf("demoting it through %s: %w", m.Name, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := m.Docker.NodeRemove(ctx, id, swarm.NodeRemoveOptions{Force: true})
		if err == nil || strings.Contains(err.Error(), "not found") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("through %s: %w", m.Name, err)
		}
		if werr := wait.Sleep(ctx, time.Second); werr != nil {
			return werr
		}
	}
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
