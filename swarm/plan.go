package swarm

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/machine-tools/machine/internal/safetext"
	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm/cluster"
)

// UnmanagedLabelPrefix: node labels whose key starts with it are not the cluster file's to
// manage. `swarm up` sets every other label of a file's node to exactly what the file says (a
// label the file no longer has is removed) and leaves these alone, so that other tools can keep
// labels of their own on the same nodes.
const UnmanagedLabelPrefix = "local."

// ObservedNode is a swarm node as a manager lists it, with the store's machine it is.
type ObservedNode struct {
	Machine      string
	ID           string
	Manager      bool
	Leader       bool
	Reachable    bool // a manager that the others reach (workers: always true)
	Ready        bool
	Availability string
	Labels       map[string]string
	// DownSince is when a node that is down was last changed (its going down), zero otherwise.
	DownSince time.Time
	// RaftAddr is a manager's raft address (its host part).
	RaftAddr string
	// RaftAddrOwn, for the one manager of a swarm whose raft address is not its machine's: that
	// address is one of its host's own, of its own choosing (not one it moved from).
	RaftAddrOwn bool
}

// Observed is the live cluster: what the planner compares the file with.
type Observed struct {
	// Machines are the store's machines (the file's and any others).
	Machines map[string]bool
	// InSwarm says whether the swarm has formed (a manager of the file's answered as one).
	InSwarm bool
	// Nodes are the swarm's nodes, by machine name.
	Nodes map[string]ObservedNode
	// Engines are the machines' recorded engine options.
	Engines map[string]machine.EngineOptions
	// Networks are the swarm's overlay networks by name.
	Networks map[string]bool
	// Ingress: the swarm has its routing mesh's network.
	Ingress bool
	// MeshCannotWork: every node is a container host on this computer's engine and its kernel
	// has no IPVS loaded, which their engines cannot load: the routing mesh cannot work there.
	MeshCannotWork bool
	// Images lists, per image, the nodes that have it.
	Images map[string]map[string]bool
	// Unobserved are the file's machines whose engine could not be read, with the reason: what
	// the plan says of them is a guess.
	Unobserved map[string]string
	// Stale are node entries left behind by a machine that joined again (rebuilt, or out of the
	// swarm by force): Down, beside the machine's live entry.
	Stale []ObservedNode
	// Autolock: the swarm locks its managers at rest.
	Autolock bool
	// At is when the cluster was read.
	At time.Time
	// Skewed are the replicated services whose tasks could be spread more evenly.
	Skewed []Skew
	// Moved are the file's machines whose host answers at another address now ("OLD → NEW"):
	// followed (the record, the certificate) when up reads the cluster.
	Moved map[string]string
	// IPs are the addresses of the file's machines whose engines answered.
	IPs map[string]string
	// Lent are the addresses machine lent to the file's managers while their raft address moved
	// (a run that stopped half-way left them): by machine.
	Lent map[string]string
	// Locked are the file's managers found locked (autolock, their engine restarted); Unlocked,
	// those that were, and were unlocked with the store's kept key while the cluster was read.
	Locked, Unlocked []string
	// PendingLeft are the file's machines whose engine was stuck in a pending join: they left it
	// while the cluster was read (up's joins join them again).
	PendingLeft []string
	// Expired are the file's machines whose swarm certificate expired while they were off
	// (when): out of their swarm until they join again. Up has them leave it while it reads the
	// cluster; their old entries are in Stale.
	Expired map[string]time.Time
	// CertExpiry is the validity the swarm gives node certificates.
	CertExpiry time.Duration
	// Expiring are the file's machines whose swarm certificate is in its last tenth of validity
	// (when it expires): read by Observe, for plan's warnings.
	Expiring map[string]time.Time
}

// Complete is nil when every machine of the file that exists was read, else an error naming
// those that were not: a plan made without them is not one to print as the truth.
func (o Observed) Complete() error {
	if len(o.Unobserved) == 0 {
		return nil
	}
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(o.Unobserved)) {
		parts = append(parts, name+" ("+o.Unobserved[name]+")")
	}
	return fmt.Errorf("could not observe %s: no plan without them; start them (machine start NAME) or check them (machine status NAME), then plan again", strings.Join(parts, ", "))
}

// ChangeKind is what a change does.
type ChangeKind string

// The kinds of change, in the order a plan applies them.
const (
	ChangeCreate       ChangeKind = "create"
	ChangeAddress      ChangeKind = "address"
	ChangeUnlock       ChangeKind = "unlock"
	ChangeRejoin       ChangeKind = "rejoin"  // a manager whose raft address is not its address any more
	ChangeExpired      ChangeKind = "expired" // a node whose certificate expired: it joins again
	ChangeJoin         ChangeKind = "join"
	ChangePromote      ChangeKind = "promote"
	ChangeLabel        ChangeKind = "label"
	ChangeAvailability ChangeKind = "availability"
	ChangeDemote       ChangeKind = "demote"
	ChangeEngine       ChangeKind = "engine"
	ChangeNetwork      ChangeKind = "network"
	ChangeSwarm        ChangeKind = "swarm" // a setting of the swarm itself (autolock)
	ChangeImage        ChangeKind = "image"
	ChangeRemove       ChangeKind = "remove"
	ChangeKeep         ChangeKind = "keep"        // not in the file; kept (--prune removes it)
	ChangeStale        ChangeKind = "stale"       // an old node entry of a machine that joined again
	ChangeForget       ChangeKind = "forget"      // the entry of a node gone for good: down, no machine, not in the file
	ChangeSkewed       ChangeKind = "skewed"      // a service up does not move: `swarm rebalance` does
	ChangeCertificate  ChangeKind = "certificate" // a warning: a node's certificate expires soon
	ChangeRaftAlone    ChangeKind = "raft-alone"  // a warning: a lone manager's raft address stays (no node to move it through)
)

// Change is one line of a plan.
type Change struct {
	Kind   ChangeKind `json:"kind"`
	Node   string     `json:"node,omitempty"`
	Detail string     `json:"detail"`
	// Restart: applying it restarts the node's engine (it is drained first and rolled).
	Restart bool `json:"restart,omitempty"`
	// ID is the swarm node a stale change removes.
	ID string `json:"id,omitempty"`
}

// String is the change as one printable line: control characters that came with a label or a
// name read from the swarm are shown as escapes, never sent to the terminal.
func (c Change) String() string {
	if c.Node == "" {
		return safetext.Printable(c.Detail)
	}
	return safetext.Printable(c.Node + ": " + c.Detail)
}

// meshOffAtStart is the change of a new swarm without the routing mesh.
const meshOffAtStart = "routing mesh off (its ingress network removed as the swarm starts)"

// meshOffNoIPVS is the same for a file that does not say, on hosts where the mesh cannot work.
const meshOffNoIPVS = "routing mesh off: the hosts' kernel has no IPVS, without which it cannot work (its ingress network removed as the swarm starts; `swarm: {routing-mesh: true}` keeps it)"

// PlanOptions tune Plan.
type PlanOptions struct {
	// Prune: nodes that the file no longer has are drained, removed from the swarm (demoted
	// first when managers) and their machines removed; the entries of nodes gone for good
	// (down for longer than DownFor, no machine of the store, not in the file) are removed.
	Prune bool
	// DownFor is how long a node gone for good must have been down before Prune removes its
	// entry (the CLI's default: an hour; zero: at once).
	DownFor time.Duration
}

// WritePlan prints a plan as `swarm up` shows it before it acts: a header, then a change a line.
func WritePlan(w io.Writer, plan []Change) error {
	head := "the plan:"
	if !Changes(plan) {
		head = "nothing to change"
	}
	_, err := fmt.Fprintln(w, head)
	for _, ch := range plan {
		if _, err = fmt.Fprintf(w, "  %s\n", ch); err != nil {
			break
		}
	}
	return err
}

// QuorumError is a plan refused because a step would leave too few managers reachable.
type QuorumError struct{ Msg string }

func (e *QuorumError) Error() string { return e.Msg }

// Plan compares the cluster file with the live cluster and returns the changes that bring the
// one to the other, in the order Up applies them. It is a pure function: it reads nothing. A plan
// any of whose steps would leave fewer than a majority of the managers reachable is refused with
// the arithmetic.
func Plan(c *cluster.Cluster, obs Observed, o PlanOptions) ([]Change, error) {
	var out []Change
	add := func(ch Change) { out = append(out, ch) }
	file := map[string]cluster.Node{}
	for _, n := range c.Nodes {
		file[n.Name] = n
	}
	// Machines whose host moved: followed first (nothing else can be read of them).
	for _, name := range slices.Sorted(maps.Keys(obs.Moved)) {
		add(Change{Kind: ChangeAddress, Node: name, Detail: "address " + obs.Moved[name] + " (the machine follows it: its record, and its engine's certificate reissued)"})
	}
	// Managers whose raft address is not where their host is now: the others cannot reach
	// them. Swarm never updates a manager's raft address: it leaves and joins again.
	// A manager alone in its raft is reachable to itself wherever it is: whether it moved is
	// told by its raft address not being its host's (RaftAddrOwn).
	managers := 0
	for _, on := range obs.Nodes {
		if on.Manager {
			managers++
		}
	}
	for _, n := range c.Managers() {
		on, in := obs.Nodes[n.Name]
		ip := obs.IPs[n.Name]
		if moved, ok := obs.Moved[n.Name]; ok {
			_, ip, _ = strings.Cut(moved, " → ")
		}
		if !in || !on.Manager || on.RaftAddr == "" || ip == "" || on.RaftAddr == ip || (n.AdvertiseAddr != "" && n.AdvertiseAddr != ip) {
			continue
		}
		what := "manager address " + on.RaftAddr + " → " + ip + ": its raft address does not follow"
		lentHere := obs.Lent[n.Name] != "" && obs.Lent[n.Name] == on.RaftAddr
		if managers == 1 || lentHere {
			switch {
			case on.RaftAddrOwn && !lentHere:
			case len(c.Nodes) == 1:
				add(Change{Kind: ChangeRaftAlone, Node: n.Name, Detail: what + ", and swarm moves it only through another manager: it stays " + on.RaftAddr + " while " + n.Name + " is the swarm's only node (nothing needs it there); `up` moves it once the file has a second node"})
			default:
				add(Change{Kind: ChangeRejoin, Node: n.Name, ID: on.ID, Detail: what + " (" + on.RaftAddr + " lent to it for the while; another node of the file holds the swarm as a manager while it leaves and joins again as one)"})
			}
			continue
		}
		if _, moved := obs.Moved[n.Name]; !moved && on.Reachable {
			continue // reachable at that address: an advertise address of its own choosing
		}
		add(Change{Kind: ChangeRejoin, Node: n.Name, ID: on.ID, Detail: what + " (demoted, out of the swarm, joined again as a manager)"})
	}
	// Locked managers first: nothing else can be read of them.
	for _, name := range obs.Locked {
		add(Change{Kind: ChangeUnlock, Node: name, Detail: "unlock (locked: autolock on, its engine restarted; with the key the store keeps)"})
	}
	// Nodes whose certificate expired while they were off: out of the swarm, to join again.
	for _, name := range slices.Sorted(maps.Keys(obs.Expired)) {
		add(Change{Kind: ChangeExpired, Node: name, Detail: "its swarm certificate expired at " + obs.Expired[name].Format(time.RFC3339) + " (off for longer than its validity): out of its swarm, joins again (labels and availability restored, its old entry removed)"})
	}
	// Machines, then joins.
	for _, n := range c.Nodes {
		if !obs.Machines[n.Name] {
			add(Change{Kind: ChangeCreate, Node: n.Name, Detail: "create machine (" + c.DriverName(n) + ")"})
		}
	}
	for _, n := range c.Nodes {
		if _, in := obs.Nodes[n.Name]; !in || !obs.InSwarm {
			detail := "join as " + string(n.Role)
			if !obs.InSwarm && n.Name == c.Managers()[0].Name {
				detail = "start the swarm (first manager)"
			}
			add(Change{Kind: ChangeJoin, Node: n.Name, Detail: detail})
		}
	}
	// Roles: promotions first (they add managers), demotions after the labels (they take
	// managers away, one at a time).
	var demotions []Change
	for _, n := range c.Nodes {
		on, in := obs.Nodes[n.Name]
		if !in {
			continue
		}
		switch want := n.Role == cluster.Manager; {
		case want && !on.Manager:
			add(Change{Kind: ChangePromote, Node: n.Name, Detail: "promote to manager"})
		case !want && on.Manager:
			demotions = append(demotions, Change{Kind: ChangeDemote, Node: n.Name, Detail: "demote to worker"})
		}
	}
	// Labels and availability, exactly the file's.
	for _, n := range c.Nodes {
		on, in := obs.Nodes[n.Name]
		if !in {
			continue
		}
		for _, ch := range labelChanges(n.Labels, on.Labels) {
			add(Change{Kind: ChangeLabel, Node: n.Name, Detail: ch})
		}
		if want := availabilityOf(n); on.Availability != "" && on.Availability != want {
			add(Change{Kind: ChangeAvailability, Node: n.Name, Detail: "availability " + on.Availability + "→" + want})
		}
	}
	// Engines of machines that exist (rolled while the roles are still the old ones).
	want, err := machine.ParseEngineOptions(c.Engine, nil)
	if err != nil {
		return nil, err
	}
	for _, n := range c.Nodes {
		have, ok := obs.Engines[n.Name]
		if !ok {
			continue
		}
		changes := engineChanges(want, have)
		restart := slices.ContainsFunc(changes, func(d string) bool { return !reloadableChange(d) })
		for _, d := range changes {
			how := " (reloaded: no restart)"
			if restart {
				how = " (restarts the engine)"
			}
			add(Change{Kind: ChangeEngine, Node: n.Name, Detail: "engine: " + d + how, Restart: restart})
		}
	}
	// Demotions after the roll-out: a node restarted soon after its demotion can come back as
	// a manager the swarm no longer counts.
	out = append(out, demotions...)
	// The routing mesh, networks and images.
	unsaid := c.Swarm.RoutingMesh == nil && obs.MeshCannotWork
	switch want := c.RoutingMesh(); {
	case !obs.InSwarm && unsaid:
		add(Change{Kind: ChangeNetwork, Detail: meshOffNoIPVS})
	case unsaid: // a swarm's mesh, where it cannot work and the file does not say, is left as it is
	case !obs.InSwarm && !want:
		add(Change{Kind: ChangeNetwork, Detail: meshOffAtStart})
	case obs.InSwarm && want && !obs.Ingress:
		add(Change{Kind: ChangeNetwork, Detail: "routing mesh on (ingress network created)"})
	case obs.InSwarm && !want && obs.Ingress:
		add(Change{Kind: ChangeNetwork, Detail: "routing mesh off (ingress network removed)"})
	}
	if want := c.Swarm.Autolock; want != nil && (*want != obs.Autolock || !obs.InSwarm) && (*want || obs.InSwarm) {
		d := "autolock off (managers no longer locked at rest)"
		if *want {
			d = "autolock on (the unlock key kept in the store; `machine swarm unlock-key` prints it)"
		}
		add(Change{Kind: ChangeSwarm, Detail: d})
	}
	if want, have := c.CertExpiry(), obs.CertExpiry; want > 0 && (obs.InSwarm && want != have || !obs.InSwarm && want != defaultCertExpiry) {
		d := "node certificates valid for " + hours(want) + " (the new swarm's root CA rotated for it at once: swarm applies a validity with a new CA)"
		if obs.InSwarm {
			d = "node certificate validity " + hours(obs.CertExpiry) + " → " + hours(want) + " (the root CA rotated for it: every node's certificate reissued, waited for)"
		}
		add(Change{Kind: ChangeSwarm, Detail: d})
	}
	for _, nw := range c.Networks {
		if !obs.Networks[nw.Name] {
			add(Change{Kind: ChangeNetwork, Detail: "network " + nw.Name + " created"})
		}
	}
	for _, im := range c.Images {
		missing := 0
		for _, n := range c.Nodes {
			if !obs.Images[im.Name][n.Name] {
				missing++
			}
		}
		if missing > 0 {
			add(Change{Kind: ChangeImage, Detail: fmt.Sprintf("image %s to %d node(s)", im.Name, missing)})
		}
	}
	// Old entries of machines that joined again: removed (they count against the quorum).
	for _, st := range obs.Stale {
		how := " (down, left by an earlier join)"
		if st.Ready {
			how = " (left by an earlier join: ready until the managers miss its heartbeats)"
		}
		add(Change{Kind: ChangeStale, Node: st.Machine, ID: st.ID, Detail: "remove its old node entry " + shortID(st.ID) + how})
	}
	// Nodes that left the file.
	for _, name := range slices.Sorted(maps.Keys(obs.Nodes)) {
		if _, kept := file[name]; kept {
			continue
		}
		on := obs.Nodes[name]
		if !on.Ready && !obs.Machines[name] {
			add(goneForGood(name, on, obs.At, o))
			continue
		}
		if !o.Prune {
			add(Change{Kind: ChangeKeep, Node: name, Detail: "not in the file (kept; --prune removes it)"})
			continue
		}
		d := "drain and remove node, then its machine"
		if on.Manager {
			d = "demote, drain and remove node, then its machine"
		}
		add(Change{Kind: ChangeRemove, Node: name, Detail: d})
	}
	for _, s := range obs.Skewed {
		add(Change{Kind: ChangeSkewed, Detail: s.String()})
	}
	for _, name := range slices.Sorted(maps.Keys(obs.Expiring)) {
		add(Change{Kind: ChangeCertificate, Node: name, Detail: certWarning(obs.Expiring[name], obs.At)})
	}
	return out, checkQuorum(out, obs)
}

// goneForGood is the change for a node that is down, is no machine of the store and is not in
// the file: its entry removed with --prune once it has been down for DownFor, else kept.
func goneForGood(name string, on ObservedNode, at time.Time, o PlanOptions) Change {
	down := "down"
	if !on.DownSince.IsZero() && !at.IsZero() {
		down = "down for " + at.Sub(on.DownSince).Round(time.Minute).String()
	}
	switch {
	case !o.Prune:
		return Change{Kind: ChangeKeep, Node: name, Detail: down + ", not in the file, no machine (kept; --prune removes its entry)"}
	case o.DownFor > 0 && (on.DownSince.IsZero() || at.Sub(on.DownSince) < o.DownFor):
		return Change{Kind: ChangeKeep, Node: name, Detail: fmt.Sprintf("%s, not in the file, no machine (kept until it has been down for %s: --down-for)", down, o.DownFor)}
	}
	return Change{Kind: ChangeForget, Node: name, ID: on.ID, Detail: "remove its node entry " + shortID(on.ID) + " (" + down + ", not in the file, no machine)"}
}

// checkQuorum walks the plan with the managers reachable now: every step must leave a majority
// of the managers reachable. An even manager count is allowed (Up warns about it).
func checkQuorum(plan []Change, obs Observed) error {
	total, reachable := 0, 0
	var down []string
	for _, name := range slices.Sorted(maps.Keys(obs.Nodes)) {
		if n := obs.Nodes[name]; n.Manager {
			total++
			if n.Reachable {
				reachable++
			} else {
				down = append(down, name)
			}
		}
	}
	if total == 0 {
		return nil
	}
	for _, ch := range plan {
		on := obs.Nodes[ch.Node]
		switch {
		case ch.Kind == ChangePromote, ch.Kind == ChangeJoin && strings.HasSuffix(ch.Detail, "manager"):
			total++
			reachable++
		case (ch.Kind == ChangeDemote || ch.Kind == ChangeRemove || ch.Kind == ChangeForget) && on.Manager:
			if !on.Reachable {
				total--
				continue
			}
			if total == 1 {
				return &QuorumError{fmt.Sprintf("%s is the last manager: it is removed only by `machine swarm down`", ch.Node)}
			}
			left, of := reachable-1, total-1
			if left < of/2+1 {
				return &QuorumError{fmt.Sprintf("%d managers, %d down (%s): %s %s would leave %d of %d reachable, fewer than the %d a majority needs: start %s first",
					total, len(down), strings.Join(down, ", "), verb(ch.Kind), ch.Node, left, of, of/2+1, strings.Join(down, ", "))}
			}
			total, reachable = of, left
		case ch.Kind == ChangeEngine && ch.Restart && on.Manager && total > 1:
			// A restart takes the manager away for a while.
			if reachable-1 < total/2+1 {
				return &QuorumError{fmt.Sprintf("%d managers, %d reachable: restarting the engine of %s would leave %d of %d reachable, fewer than the %d a majority needs: start %s first",
					total, reachable, ch.Node, reachable-1, total, total/2+1, strings.Join(down, ", "))}
			}
		}
	}
	return nil
}

func verb(k ChangeKind) string {
	if k == ChangeDemote {
		return "demoting"
	}
	return "removing"
}

func availabilityOf(n cluster.Node) string {
	if n.Availability == "" {
		return "active"
	}
	return n.Availability
}

// labelChanges lists what makes have's labels the file's (keys under UnmanagedLabelPrefix
// excepted), sorted by key.
func labelChanges(want, have map[string]string) []string {
	var out []string
	keys := slices.Sorted(maps.Keys(want))
	for _, k := range keys {
		switch old, ok := have[k]; {
		case !ok:
			out = append(out, fmt.Sprintf("label %s=%s added", k, want[k]))
		case old != want[k]:
			out = append(out, fmt.Sprintf("label %s %s→%s", k, old, want[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(have)) {
		if _, ok := want[k]; !ok && !strings.HasPrefix(k, UnmanagedLabelPrefix) {
			out = append(out, fmt.Sprintf("label %s removed", k))
		}
	}
	return out
}

// reloadableChange says whether an engine change line is one dockerd takes on SIGHUP.
func reloadableChange(d string) bool {
	for _, p := range []string{"registry-mirror ", "insecure-registry ", "label "} {
		if strings.HasPrefix(d, p) {
			return true
		}
	}
	return false
}

// engineChanges lists how want differs from have, one line per option.
func engineChanges(want, have machine.EngineOptions) []string {
	var out []string
	list := func(name string, w, h []string) {
		show := func(x string) string { return x }
		if name == "env" {
			show = safetext.MaskEnv // a proxy's password, a token: never printed
		}
		for _, x := range w {
			if !slices.Contains(h, x) {
				out = append(out, fmt.Sprintf("%s %s added", name, show(x)))
			}
		}
		for _, x := range h {
			if !slices.Contains(w, x) {
				out = append(out, fmt.Sprintf("%s %s removed", name, show(x)))
			}
		}
	}
	list("registry-mirror", want.RegistryMirrors, have.RegistryMirrors)
	list("insecure-registry", want.InsecureRegistries, have.InsecureRegistries)
	list("label", want.Labels, have.Labels)
	list("opt", want.Opts, have.Opts)
	list("env", want.Env, have.Env)
	if want.StorageDriver != have.StorageDriver {
		out = append(out, fmt.Sprintf("storage-driver %q→%q", have.StorageDriver, want.StorageDriver))
	}
	for _, k := range slices.Sorted(maps.Keys(want.RegistryCAs)) {
		if have.RegistryCAs[k] != want.RegistryCAs[k] {
			out = append(out, "registry-ca "+k+" set")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(have.RegistryCAs)) {
		if _, ok := want.RegistryCAs[k]; !ok {
			out = append(out, "registry-ca "+k+" removed")
		}
	}
	return out
}

func shortID(id string) string { return id[:min(12, len(id))] }

// defaultCertExpiry is the validity swarm gives node certificates unless told otherwise.
const defaultCertExpiry = 2160 * time.Hour

// certWarning is plan's line on a node's certificate in its last tenth of validity.
func certWarning(expires, now time.Time) string {
	return fmt.Sprintf("its swarm certificate expires at %s (in %s), and swarm renews a running node's well before: check the node's clock and that it reaches the managers (a node off past it must join again: up does that)",
		expires.UTC().Format(time.RFC3339), expires.Sub(now).Round(time.Second))
}
