package swarm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm/cluster"
)

// fakeSwarm is the swarm that fake engines share: what real managers keep in raft, as far as
// Up, Down, converge and roll read and change it. Its rules are those the real engines showed in
// the end-to-end tests: a node joins with a role's token, an update names the version it read,
// a node that is in a swarm cannot init or join another.
type fakeSwarm struct {
	mu       sync.Mutex
	id       string
	nodes    map[string]*swarm.Node // by node ID
	engineOf map[string]string      // node ID → machine
	networks []network.Summary
	seq      int
	changes  []string        // every call that changed the swarm, in order
	outRaft  map[string]bool // managers a forced new cluster left out of raft
	// unknownFor: nodes a forced new cluster inherited, "unknown" for this many more inspects
	// (as a real agent reconnects after its backoff)
	unknownFor map[string]int
	// autolock: managers are locked when their engine restarts; key is the unlock key, keys
	// counts the keys it has had.
	autolock bool
	key      string
	keys     int
	// root counts the swarm's root CAs; rotating: a rotation is under way (each node list gets
	// one more node a certificate of the new root); forced is the spec's ForceRotate.
	root     int
	rotating bool
	forced   uint64
}

func (s *fakeSwarm) tlsInfo() swarm.TLSInfo {
	return swarm.TLSInfo{TrustRoot: fmt.Sprintf("root%d", s.root), CertIssuerSubject: []byte{byte(s.root)}, CertIssuerPublicKey: []byte{byte(s.root)}}
}

func newFakeSwarm() *fakeSwarm {
	return &fakeSwarm{nodes: map[string]*swarm.Node{}, engineOf: map[string]string{}, outRaft: map[string]bool{}, unknownFor: map[string]int{}}
}

func (s *fakeSwarm) changed(format string, a ...any) {
	s.changes = append(s.changes, fmt.Sprintf(format, a...))
}

// nodeOf is the node ID of a machine's engine ("" when it is in no swarm).
func (s *fakeSwarm) nodeOf(machine string) string {
	for id, m := range s.engineOf {
		if m == machine {
			return id
		}
	}
	return ""
}

// fakeEngine is one machine's engine. Only what swarm calls is answered: anything else panics
// on the nil APIClient, which names the call.
type fakeEngine struct {
	client.APIClient
	sw   *fakeSwarm
	name string
	ip   string
	// killed: when the host was killed (down since); a machine made again after it gets a
	// fresh engine.
	killed time.Time
	// down: the engine does not answer; failJoin: so many joins fail before one succeeds;
	// notBack: after a drain, the node is never Ready again (its engine did not come back).
	down     bool
	failJoin int
	notBack  bool
	// locked: restarted with autolock on; knows is the unlock key this manager was last given
	// (a manager down during a rotation still needs the old one).
	locked bool
	knows  string
	// pending: a join the engine gave up on (its own timeout) left it pending, in no swarm.
	pending bool
	// expired: when its swarm certificate expired (it was off for longer): its swarm state is
	// in error, as swarmkit says it, until it leaves.
	expired time.Time
	// leaveTimesOut: so many leaves without force end at the engine's own deadline (a loaded
	// host), the node still in its swarm.
	leaveTimesOut int
}

var errDown = errors.New("Cannot connect to the Docker daemon: connection refused")

func (e *fakeEngine) Close() error { return nil }

func (e *fakeEngine) Info(ctx context.Context) (system.Info, error) {
	e.sw.mu.Lock()
	defer e.sw.mu.Unlock()
	if e.down {
		return system.Info{}, errDown
	}
	info := system.Info{Name: e.name}
	if e.locked {
		info.Swarm.LocalNodeState = swarm.LocalNodeStateLocked
		return info, nil
	}
	if e.pending {
		info.Swarm.LocalNodeState = swarm.LocalNodeStatePending
		return info, nil
	}
	if !e.expired.IsZero() {
		info.Swarm.LocalNodeState = swarm.LocalNodeStateError
		info.Swarm.Error = fmt.Sprintf("error while loading TLS certificate in /var/lib/docker/swarm/certificates/swarm-node.crt: certificate (1 - x) not valid after %s, and it is currently %s: x509: certificate has expired or is not yet valid: ",
			e.expired.UTC().Format(time.RFC1123), time.Now().UTC().Format(time.RFC1123))
		return info, nil
	}
	id := e.sw.nodeOf(e.name)
	if id == "" {
		info.Swarm.LocalNodeState = swarm.LocalNodeStateInactive
		return info, nil
	}
	n := e.sw.nodes[id]
	info.Swarm.LocalNodeState = swarm.LocalNodeStateActive
	info.Swarm.NodeID, info.Swarm.NodeAddr = id, n.Status.Addr
	info.Swarm.ControlAvailable = n.Spec.Role == swarm.NodeRoleManager
	if info.Swarm.ControlAvailable {
		info.Swarm.Cluster = &swarm.ClusterInfo{ID: e.sw.id}
	}
	for _, m := range e.sw.nodes {
		if m.ManagerStatus != nil {
			info.Swarm.RemoteManagers = append(info.Swarm.RemoteManagers, swarm.Peer{NodeID: m.ID, Addr: m.ManagerStatus.Addr})
		}
	}
	return info, nil
}

func (e *fakeEngine) ImageInspect(ctx context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	return image.InspectResponse{}, errdefs.NotFound(fmt.Errorf("No such image: %s", ref))
}

// manager is the engine's node when it is an active manager (the API of a worker refuses swarm
// calls).
func (e *fakeEngine) manager() (*swarm.Node, error) {
	if e.down {
		return nil, errDown
	}
	if e.locked {
		return nil, errdefs.Unavailable(errors.New("Swarm is encrypted and needs to be unlocked before it can be used."))
	}
	id := e.sw.nodeOf(e.name)
	if id == "" || e.sw.nodes[id].Spec.Role != swarm.NodeRoleManager {
		return nil, errdefs.Unavailable(errors.New("This node is not a swarm manager."))
	}
	return e.sw.nodes[id], nil
}

func (e *fakeEngine) addNode(role swarm.NodeRole, adv string) string {
	e.sw.seq++
	id := fmt.Sprintf("node%02d%s", e.sw.seq, strings.Repeat("x", 20))
	n := &swarm.Node{ID: id, Spec: swarm.NodeSpec{Role: role, Availability: swarm.NodeAvailabilityActive},
		Description: swarm.NodeDescription{Hostname: e.name, TLSInfo: e.sw.tlsInfo()}, Status: swarm.NodeStatus{State: swarm.NodeStateReady, Addr: adv}}
	n.Version.Index = uint64(e.sw.seq)
	if role == swarm.NodeRoleManager {
		n.ManagerStatus = &swarm.ManagerStatus{Reachability: swarm.ReachabilityReachable, Addr: adv + ":2377", Leader: len(e.sw.nodes) == 0}
	}
	e.sw.nodes[id], e.sw.engineOf[id] = n, e.name
	return id
}

func (e *fakeEngine) SwarmInit(ctx context.Context, req swarm.InitRequest) (string, error) {
	e.sw.mu.Lock()
	defer e.sw.mu.Unlock()
	if e.down {
		return "", errDown
	}
	if self := e.sw.nodeOf(e.name); self != "" && req.ForceNewCluster {
		for id, n := range e.sw.nodes {
			if id != self && n.ManagerStatus != nil {
				e.sw.outRaft[id] = true
				n.ManagerStatus.Reachability, n.ManagerStatus.Leader = swarm.ReachabilityUnreachable, false
			}
			if id != self && n.ManagerStatus == nil && n.Status.State == swarm.NodeStateReady {
				n.Status.State = swarm.NodeStateUnknown
				e.sw.unknownFor[id] = 3
			}
		}
		e.sw.nodes[self].ManagerStatus.Leader = true
		e.sw.changed("force new cluster on %s advertising %s", e.name, req.AdvertiseAddr)
		return self, nil
	}
	if e.sw.nodeOf(e.name) != "" {
		return "", errors.New("This node is already part of a swarm.")
	}
	e.sw.id = "cluster0123456789abcdef"
	if req.AutoLockManagers {
		e.sw.setAutolock(true)
	}
	id := e.addNode(swarm.NodeRoleManager, req.AdvertiseAddr)
	e.sw.networks = append(e.sw.networks, network.Summary{Name: "ingress", ID: "ingress0", Driver: "overlay", Scope: "swarm", Ingress: true})
	e.sw.changed("init %s advertising %s", e.name, req.AdvertiseAddr)
	return id, nil
}

func (e *fakeEngine) SwarmInspect(ctx context.Context) (swarm.Swarm, error) {
	e.sw.mu.Lock()
	defer e.sw.mu.Unlock()
	if _, err := e.manager(); err != nil {
		return swarm.Swarm{}, err
	}
	sw := swarm.Swarm{ClusterInfo: swarm.ClusterInfo{ID: e.sw.id}, JoinTokens: swarm.JoinTokens{Worker: "SWMTKN-1-worker", Manager: "SWMTKN-1-manager"}}
	sw.Spec.EncryptionConfig.AutoLockManagers = e.sw.autolock
	sw.Spec.CAConfig.ForceRotate = e.sw.forced
	sw.TLSInfo, sw.RootRotationInProgress = e.sw.tlsInfo(), e.sw.rotating
	return sw, nil
}

// setAutolock turns autolock on or off; a new key when it goes on. Every manager that is up
// learns the key.
func (s *fakeSwarm) setAutolock(on bool) {
	s.autolock = on
	if on && s.key == "" {
		s.rotate()
	}
	if !on {
		s.key = ""
	}
	s.changed("autolock %v", on)
}

func (s *fakeSwarm) rotate() {
	s.keys++
	s.key = fmt.Sprintf("SWMKEY-1-fake%d", s.keys)
	for _, e := range engines[s] {
		if !e.down && !e.locked {
			e.knows = s.key
		}
	}
}

func (e *fakeEngine) SwarmUpdate(ctx context.Context, v swarm.Version, spec swarm.Spec, flags swarm.UpdateFlags) error {
	e.sw.mu.Lock()
	defer e.sw.mu.Unlock()
	if _, err := e.manager(); err != nil {
		return err
	}
	if spec.EncryptionConfig.AutoLockManagers != e.sw.autolock {
		e.sw.setAutolock(spec.EncryptionConfig.AutoLockManagers)
	}
	if spec.CAConfig.ForceRotate != e.sw.forced {
		e.sw.forced, e.sw.root, e.sw.rotating = spec.CAConfig.ForceRotate, e.sw.root+1, true
		e.sw.changed("root CA rotation %d", e.sw.root)
	}
	if flags.RotateManagerUnlockKey && e.sw.autolock {
		e.sw.rotate()
		e.sw.changed("unlock key rotated")
	}
	return nil
}

func (e *fakeEngine) SwarmGetUnlockKey(ctx context.Context) (swarm.UnlockKeyResponse, error) {
	e.sw.mu.Lock()
	defer e.sw.mu.Unlock()
	if _, err := e.manager(); err != nil {
		return swarm.UnlockKeyResponse{}, err
	}
	return swarm.UnlockKeyResponse{UnlockKey: e.sw.key}, nil
}

func (e *fakeEngine) SwarmUnlock(ctx context.Context, req swarm.UnlockRequest) error {
	e.sw.mu.Lock()
	defer e.sw.mu.Unlock()
	if !e.locked {
		return errors.New("Error response from daemon: swarm is not locked")
	}
	if req.UnlockKey != e.knows {
		return errors.New("Error response from daemon: invalid key: " + req.UnlockKey)
	}
	e.locked, e.knows = false, e.sw.key
	e.sw.changed("unlock %s", e.name)
	return nil
}

// restart restarts a machine's engine: a manager of a swarm with autolock comes back locked.
func (f *fakeCluster) restart(name string) {
	f.sw.mu.Lock()
	defer f.sw.mu.Unlock()
	e := f.engines[name]
	e.down = false
	if id := f.sw.nodeOf(name); id != "" && f.sw.autolock && f.sw.nodes[id].Spec.Role == swarm.NodeRoleManager {
		e.locked = true
	}
}

func (e *fakeEngine) SwarmJoin(ctx context.Context, req swarm.JoinRequest) error {
	e.sw.mu.Lock()
	defer e.sw.mu.Unlock()
	if e.down {
		return errDown
	}
	if e.failJoin > 0 {
		e.failJoin--
		return errors.New("Error response from daemon: Timeout was reached before node joined.")
	}
	if e.sw.nodeOf(e.name) != "" {
		return errors.New("This node is already part of a swarm.")
	}
	role := swarm.NodeRoleWorker
	switch req.JoinToken {
	case "SWMTKN-1-manager":
		role = swarm.NodeRoleManager
	case "SWMTKN-1-worker":
	default:
		return errors.New("invalid join token")
	}
	e.addNode(role, req.AdvertiseAddr)
	e.knows = e.sw.key
	e.sw.changed("join %s as %s advertising %s", e.name, role, req.AdvertiseAddr)
	return nil
}

func (e *fakeEngine) SwarmLeave(ctx context.Context, force bool) error {
	e.sw.mu.Lock()
	defer e.sw.mu.Unlock()
	if e.down {
		return errDown
	}
	if e.pending {
		e.pending = false
		e.sw.changed("leave %s (pending)", e.name)
		return nil
	}
	if !e.expired.IsZero() {
		e.expired = time.Time{}
		e.sw.changed("leave %s (certificate expired)", e.name)
		return nil
	}
	if e.leaveTimesOut > 0 && !force {
		e.leaveTimesOut--
		return errors.New("Error response from daemon: context deadline exceeded")
	}
	id := e.sw.nodeOf(e.name)
	if id == "" {
		return errors.New("This node is not part of a swarm")
	}
	delete(e.sw.engineOf, id)
	e.sw.nodes[id].Status.State = swarm.NodeStateDown
	if e.sw.nodes[id].ManagerStatus != nil {
		delete(e.sw.nodes, id) // a manager that leaves is taken out of raft
	}
	e.sw.changed("leave %s", e.name)
	return nil
}

func (e *fakeEngine) NodeList(ctx context.Context, _ swarm.NodeListOptions) ([]swarm.Node, error) {
	e.sw.mu.Lock()
	defer e.sw.mu.Unlock()
	if _, err := e.manager(); err != nil {
		return nil, err
	}
	total, up := 0, 0
	for id, n := range e.sw.nodes {
		if n.ManagerStatus != nil && !e.sw.outRaft[id] {
			total++
			if eng := engines[e.sw][e.sw.engineOf[id]]; eng != nil && !eng.down && !eng.locked {
				up++
			}
		}
	}
	if up < total/2+1 {
		return nil, errors.New("Error response from daemon: rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.")
	}
	if e.sw.rotating { // one more node that is up gets a certificate of the new root
		left, advanced := 0, false
		for _, id := range slicesSorted(e.sw.nodes) {
			n := e.sw.nodes[id]
			if n.Description.TLSInfo.TrustRoot == e.sw.tlsInfo().TrustRoot {
				continue
			}
			if eng := engines[e.sw][e.sw.engineOf[id]]; eng != nil && !eng.down && !advanced {
				n.Description.TLSInfo, advanced = e.sw.tlsInfo(), true
				continue
			}
			left++
		}
		e.sw.rotating = left > 0
	}
	var out []swarm.Node
	for _, id := range slicesSorted(e.sw.nodes) {
		n := copyNode(e.sw.nodes[id])
		if eng := engines[e.sw][e.sw.engineOf[id]]; n.ManagerStatus != nil && (eng == nil || eng.down || eng.locked) {
			n.ManagerStatus.Reachability = swarm.ReachabilityUnreachable
		}
		out = append(out, n)
	}
	return out, nil
}

func (e *fakeEngine) NodeInspectWithRaw(ctx context.Context, id string) (swarm.Node, []byte, error) {
	e.sw.mu.Lock()
	defer e.sw.mu.Unlock()
	if _, err := e.manager(); err != nil {
		return swarm.Node{}, nil, err
	}
	n, ok := e.sw.nodes[id]
	if !ok {
		return swarm.Node{}, nil, errdefs.NotFound(fmt.Errorf("node %s not found", id))
	}
	if k, ok := e.sw.unknownFor[id]; ok {
		if k <= 1 {
			delete(e.sw.unknownFor, id)
			n.Status.State = swarm.NodeStateReady
		} else {
			e.sw.unknownFor[id] = k - 1
		}
	}
	return copyNode(n), nil, nil
}

func (e *fakeEngine) NodeUpdate(ctx context.Context, id string, v swarm.Version, spec swarm.NodeSpec) error {
	e.sw.mu.Lock()
	defer e.sw.mu.Unlock()
	if _, err := e.manager(); err != nil {
		return err
	}
	n, ok := e.sw.nodes[id]
	if !ok {
		return errdefs.NotFound(fmt.Errorf("node %s not found", id))
	}
	if v.Index != n.Version.Index {
		return errors.New("rpc error: code = Unknown desc = update out of sequence")
	}
	e.sw.seq++
	n.Version.Index = uint64(e.sw.seq)
	if spec.Role != n.Spec.Role && e.sw.outRaft[id] {
		return errors.New("rpc error: code = NotFound desc = can't find manager in raft memberlist")
	}
	if spec.Role != n.Spec.Role {
		if spec.Role == swarm.NodeRoleManager {
			n.ManagerStatus = &swarm.ManagerStatus{Reachability: swarm.ReachabilityReachable, Addr: n.Status.Addr + ":2377"}
		} else {
			n.ManagerStatus = nil
		}
		e.sw.changed("role %s %s", e.sw.engineOf[id], spec.Role)
	}
	if spec.Availability != n.Spec.Availability {
		e.sw.changed("availability %s %s", e.sw.engineOf[id], spec.Availability)
		if spec.Availability == swarm.NodeAvailabilityDrain && e.engine(id) != nil && e.engine(id).notBack {
			n.Status.State = swarm.NodeStateDown
		}
	}
	if !mapsEqual(spec.Labels, n.Spec.Labels) {
		e.sw.changed("labels %s %v", e.sw.engineOf[id], spec.Labels)
	}
	n.Spec = spec
	return nil
}

// engines lets a node's update find its engine (to play one that does not come back).
var engines = map[*fakeSwarm]map[string]*fakeEngine{}

func (e *fakeEngine) engine(id string) *fakeEngine { return engines[e.sw][e.sw.engineOf[id]] }

func (e *fakeEngine) NodeRemove(ctx context.Context, id string, _ swarm.NodeRemoveOptions) error {
	e.sw.mu.Lock()
	defer e.sw.mu.Unlock()
	if _, err := e.manager(); err != nil {
		return err
	}
	if _, ok := e.sw.nodes[id]; !ok {
		return errdefs.NotFound(fmt.Errorf("node %s not found", id))
	}
	e.sw.changed("remove node of %s", e.sw.engineOf[id])
	delete(e.sw.nodes, id)
	delete(e.sw.engineOf, id)
	return nil
}

func (e *fakeEngine) NetworkList(ctx context.Context, _ network.ListOptions) ([]network.Summary, error) {
	e.sw.mu.Lock()
	defer e.sw.mu.Unlock()
	if e.down {
		return nil, errDown
	}
	if e.sw.nodeOf(e.name) == "" {
		return nil, nil
	}
	return slices.Clone(e.sw.networks), nil
}

func (e *fakeEngine) NetworkCreate(ctx context.Context, name string, o network.CreateOptions) (network.CreateResponse, error) {
	e.sw.mu.Lock()
	defer e.sw.mu.Unlock()
	if _, err := e.manager(); err != nil {
		return network.CreateResponse{}, err
	}
	id := fmt.Sprintf("net%d", len(e.sw.networks))
	e.sw.networks = append(e.sw.networks, network.Summary{Name: name, ID: id, Driver: o.Driver, Scope: "swarm", Ingress: o.Ingress, Attachable: o.Attachable})
	e.sw.changed("network %s", name)
	return network.CreateResponse{ID: id}, nil
}

func (e *fakeEngine) NetworkRemove(ctx context.Context, id string) error {
	e.sw.mu.Lock()
	defer e.sw.mu.Unlock()
	if _, err := e.manager(); err != nil {
		return err
	}
	e.sw.networks = slices.DeleteFunc(e.sw.networks, func(n network.Summary) bool { return n.ID == id })
	e.sw.changed("remove network %s", id)
	return nil
}

func copyNode(n *swarm.Node) swarm.Node {
	c := *n
	if n.ManagerStatus != nil {
		ms := *n.ManagerStatus
		c.ManagerStatus = &ms
	}
	return c
}

func slicesSorted(m map[string]*swarm.Node) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// fakeCluster is a store whose machines are engines machine did not make (the none driver: no
// SSH, so nothing but their engines is reached), each engine a fake of one shared swarm.
type fakeCluster struct {
	api     *machine.API
	sw      *fakeSwarm
	engines map[string]*fakeEngine
}

func newFakeCluster(t *testing.T) *fakeCluster {
	t.Helper()
	api, err := machine.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeCluster{api: api, sw: newFakeSwarm(), engines: map[string]*fakeEngine{}}
	engines[f.sw] = f.engines
	t.Cleanup(func() { delete(engines, f.sw) })
	return f
}

// file is a cluster file of none-driver machines at 10.99.0.N, the first managers managers.
func (f *fakeCluster) file(t *testing.T, managers int, names ...string) *cluster.Cluster {
	t.Helper()
	y := "name: fake\ndriver: none\nnodes:\n"
	for i, n := range names {
		y += fmt.Sprintf("  - name: %s\n    driver-options: {url: \"tcp://10.99.0.%d:2376\"}\n", n, i+1)
		if i < managers {
			y += "    role: manager\n"
		}
		if _, ok := f.engines[n]; !ok {
			f.engines[n] = &fakeEngine{sw: f.sw, name: n, ip: fmt.Sprintf("10.99.0.%d", i+1)}
		}
	}
	c, err := cluster.Parse("fake.yml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// open opens a machine of the store with its fake engine.
func (f *fakeCluster) open(name string) (*Node, error) {
	h, err := f.api.Load(name)
	if err != nil {
		return nil, err
	}
	f.sw.mu.Lock() // up opens the machines it makes as each is made
	defer f.sw.mu.Unlock()
	e := f.engines[name]
	if e == nil {
		return nil, fmt.Errorf("no fake engine for %s", name)
	}
	if st, err := os.Stat(h.CertPath()); err == nil && !e.killed.IsZero() && st.ModTime().After(e.killed) {
		// The machine was made again: a new host, in no swarm.
		if id := f.sw.nodeOf(name); id != "" {
			delete(f.sw.engineOf, id)
		}
		e = &fakeEngine{sw: f.sw, name: name, ip: e.ip}
		f.engines[name] = e
	}
	return &Node{Host: h, Docker: e}, nil
}

// up runs `swarm up` of c on the fake engines; the plan it made and the progress lines are kept.
func (f *fakeCluster) up(ctx context.Context, c *cluster.Cluster, o UpOptions) (plan []Change, err error) {
	r := newRun(f.api, c)
	o.OnPlan = func(p []Change) { plan = p }
	r.up, r.open = o, f.open
	return plan, r.do(ctx, upSteps)
}

func (f *fakeCluster) down(ctx context.Context, c *cluster.Cluster, o DownOptions) error {
	r := newRun(f.api, c)
	r.down, r.open = o, f.open
	return r.do(ctx, downSteps)
}

// roles is the swarm's nodes as "machine:role:availability", sorted.
func (f *fakeCluster) roles() []string {
	f.sw.mu.Lock()
	defer f.sw.mu.Unlock()
	var out []string
	for id, n := range f.sw.nodes {
		out = append(out, fmt.Sprintf("%s:%s:%s", f.sw.engineOf[id], n.Spec.Role, n.Spec.Availability))
	}
	slices.Sort(out)
	return out
}

func (f *fakeCluster) changes() []string {
	f.sw.mu.Lock()
	defer f.sw.mu.Unlock()
	return slices.Clone(f.sw.changes)
}

// The swarm runs no services here: a drain has nothing to move.
func (e *fakeEngine) TaskList(ctx context.Context, _ swarm.TaskListOptions) ([]swarm.Task, error) {
	return nil, nil
}

func (e *fakeEngine) ServiceList(ctx context.Context, _ swarm.ServiceListOptions) ([]swarm.Service, error) {
	return nil, nil
}

// kill makes a machine's host gone: its engine no longer answers.
func (f *fakeCluster) kill(name string) {
	f.engines[name].down, f.engines[name].killed = true, time.Now()
}
