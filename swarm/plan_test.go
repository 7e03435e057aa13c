package swarm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm/cluster"
)

func parse(t *testing.T, y string) *cluster.Cluster {
	t.Helper()
	c, err := cluster.Parse("c.yml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// live is an up cluster of m1..m3 (managers, m1 leads) and w1, w2, with labels zone=a on w1.
func live() Observed {
	o := Observed{Machines: map[string]bool{}, InSwarm: true, Nodes: map[string]ObservedNode{}, Engines: map[string]machine.EngineOptions{},
		Networks: map[string]bool{"app": true, "ingress": true}, Ingress: true, Images: map[string]map[string]bool{}}
	for _, n := range []string{"m1", "m2", "m3", "w1", "w2"} {
		o.Machines[n] = true
		on := ObservedNode{Machine: n, ID: "id-" + n, Manager: n[0] == 'm', Leader: n == "m1", Reachable: true, Ready: true, Availability: "active", Labels: map[string]string{}}
		o.Nodes[n] = on
		o.Engines[n] = machine.EngineOptions{Port: 2376}
	}
	o.Nodes["w1"].Labels["zone"] = "a"
	return o
}

const base = `name: c
driver: container
nodes:
  - {name: m1, role: manager}
  - {name: m2, role: manager}
  - {name: m3, role: manager}
  - {name: w1, labels: {zone: a}}
  - {name: w2}
networks: [{name: app}]
`

func lines(plan []Change) string {
	var out []string
	for _, c := range plan {
		out = append(out, c.String())
	}
	return strings.Join(out, "\n")
}

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		edit       func(*Observed)
		prune      bool
		want       string
	}{
		{"nothing", base, nil, false, ""},
		{"a worker more", strings.Replace(base, "networks:", "  - {name: w3}\nnetworks:", 1), nil, false, "w3: create machine (container)\nw3: join as worker"},
		{"promote a worker", strings.Replace(base, "{name: w2}", "{name: w2, role: manager}", 1), nil, false, "w2: promote to manager"},
		{"demote a manager", strings.Replace(base, "{name: m3, role: manager}", "{name: m3}", 1), nil, false, "m3: demote to worker"},
		{"rename a label", strings.Replace(base, "zone: a", "zone: b", 1), nil, false, "w1: label zone a→b"},
		{"drop a label, keep others' labels", strings.Replace(base, "{name: w1, labels: {zone: a}}", "{name: w1}", 1),
			func(o *Observed) { o.Nodes["w1"].Labels["local.owner"] = "ops" }, false, "w1: label zone removed"},
		{"add a label", strings.Replace(base, "{name: w2}", "{name: w2, labels: {disk: ssd}}", 1), nil, false, "w2: label disk=ssd added"},
		{"availability", strings.Replace(base, "{name: w2}", "{name: w2, availability: drain}", 1), nil, false, "w2: availability active→drain"},
		{"availability back to active", base, func(o *Observed) { n := o.Nodes["w2"]; n.Availability = "pause"; o.Nodes["w2"] = n }, false, "w2: availability pause→active"},
		{"a registry mirror", base + "engine: {registry-mirror: https://mirror.example}\n", nil, false,
			strings.Join([]string{"m1", "m2", "m3", "w1", "w2"}, ": engine: registry-mirror https://mirror.example added (reloaded: no restart)\n") + ": engine: registry-mirror https://mirror.example added (reloaded: no restart)"},
		{"an environment variable and a mirror", base + "engine: {env: [X=1], registry-mirror: https://m.example}\n", func(o *Observed) {
			for _, n := range []string{"m1", "m2", "m3", "w1"} {
				delete(o.Engines, n)
			}
		}, false, "w2: engine: registry-mirror https://m.example added (restarts the engine)\nw2: engine: env X=1 added (restarts the engine)"},
		{"a network", strings.Replace(base, "networks:", "  - {name: w9}\nnetworks:", 1), func(o *Observed) { o.Networks = map[string]bool{"ingress": true} }, false, "w9: create machine (container)\nw9: join as worker\nnetwork app created"},
		{"an image", base + "images: [busybox:1]\n", func(o *Observed) { o.Images["busybox:1"] = map[string]bool{"m1": true, "m2": true} }, false, "image busybox:1 to 3 node(s)"},
		{"no routing mesh", base + "swarm: {routing-mesh: false}\n", nil, false, "routing mesh off (ingress network removed)"},
		{"the routing mesh back", base + "swarm: {routing-mesh: true}\n", func(o *Observed) { o.Ingress = false }, false, "routing mesh on (ingress network created)"},
		{"no routing mesh from nothing", strings.Replace(base, "  - {name: m2, role: manager}\n  - {name: m3, role: manager}\n  - {name: w1, labels: {zone: a}}\n  - {name: w2}\n", "", 1) + "swarm: {routing-mesh: false}\n", func(o *Observed) { *o = Observed{} }, false,
			"m1: create machine (container)\nm1: start the swarm (first manager)\n" + meshOffAtStart + "\nnetwork app created"},
		{"a rebuilt worker's old entry", base, func(o *Observed) {
			o.Stale = []ObservedNode{{Machine: "w2", ID: "0123456789abcdef0123", Availability: "active"}}
		}, false, "w2: remove its old node entry 0123456789ab (down, left by an earlier join)"},
		{"a label with an escape sequence", strings.Replace(base, "zone: a", "zone: b", 1), func(o *Observed) { o.Nodes["w1"].Labels["zone"] = "\x1b[2Ja" }, false, `w1: label zone \x1b[2Ja→b`},
		{"an environment variable with a password", base + "engine: {env: [\"HTTPS_PROXY=http://u:pw@proxy:3128\", API_TOKEN=t0k]}\n", func(o *Observed) {
			for _, n := range []string{"m1", "m2", "m3", "w1"} {
				delete(o.Engines, n)
			}
		}, false, "w2: engine: env HTTPS_PROXY=http://u:****@proxy:3128 added (restarts the engine)\nw2: engine: env API_TOKEN=**** added (restarts the engine)"},
		{"a new certificate validity", base + "swarm: {cert-expiry: 720h}\n", func(o *Observed) { o.CertExpiry = 2160 * time.Hour }, false,
			"node certificate validity 2160h → 720h (the root CA rotated for it: every node's certificate reissued, waited for)"},
		{"the certificate validity the swarm has", base + "swarm: {cert-expiry: 720h}\n", func(o *Observed) { o.CertExpiry = 720 * time.Hour }, false, ""},
		{"a certificate in its last tenth", base, func(o *Observed) {
			o.At = time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
			o.Expiring = map[string]time.Time{"w1": o.At.Add(5 * time.Minute)}
		}, false, "w1: its swarm certificate expires at 2026-12-03T03:05:00Z (in 5m0s), and swarm renews a running node's well before: check the node's clock and that it reaches the managers (a node off past it must join again: up does that)"},
		{"a node left, kept", strings.Replace(base, "  - {name: w2}\n", "", 1), nil, false, "w2: not in the file (kept; --prune removes it)"},
		{"a node left, pruned", strings.Replace(base, "  - {name: w2}\n", "", 1), nil, true, "w2: drain and remove node, then its machine"},
		{"a manager left, pruned", strings.Replace(base, "  - {name: m3, role: manager}\n", "", 1), nil, true, "m3: demote, drain and remove node, then its machine"},
		{"from nothing, certificates valid 1h", strings.Replace(base, "  - {name: m2, role: manager}\n  - {name: m3, role: manager}\n  - {name: w1, labels: {zone: a}}\n  - {name: w2}\n", "", 1) + "swarm: {cert-expiry: 1h}\n", func(o *Observed) { *o = Observed{} }, false,
			"m1: create machine (container)\nm1: start the swarm (first manager)\nnode certificates valid for 1h (the new swarm's root CA rotated for it at once: swarm applies a validity with a new CA)\nnetwork app created"},
		{"from nothing", base, func(o *Observed) { *o = Observed{} }, false,
			"m1: create machine (container)\nm2: create machine (container)\nm3: create machine (container)\nw1: create machine (container)\nw2: create machine (container)\nm1: start the swarm (first manager)\nm2: join as manager\nm3: join as manager\nw1: join as worker\nw2: join as worker\nnetwork app created"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := live()
			if tc.edit != nil {
				tc.edit(&obs)
			}
			plan, err := Plan(parse(t, tc.file), obs, PlanOptions{Prune: tc.prune})
			if err != nil {
				t.Fatal(err)
			}
			if got := lines(plan); got != tc.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestPlanKeepsQuorum(t *testing.T) {
	down := func(n string) func(*Observed) {
		return func(o *Observed) { x := o.Nodes[n]; x.Reachable = false; o.Nodes[n] = x }
	}
	for _, tc := range []struct {
		name, file string
		edit       func(*Observed)
		prune      bool
		want       string // "" : accepted
	}{
		{"one of three down, demote another", strings.Replace(base, "{name: m2, role: manager}", "{name: m2}", 1), down("m3"), false,
			"3 managers, 1 down (m3): demoting m2 would leave 1 of 2 reachable, fewer than the 2 a majority needs: start m3 first"},
		{"one of three down, remove another", strings.Replace(base, "  - {name: m2, role: manager}\n", "", 1), down("m3"), true,
			"removing m2 would leave 1 of 2"},
		{"all up, demote one", strings.Replace(base, "{name: m2, role: manager}", "{name: m2}", 1), nil, false, ""},
		{"demote the one that is down", strings.Replace(base, "{name: m3, role: manager}", "{name: m3}", 1), down("m3"), false, ""},
		{"one down, engine restart of a manager", base + "engine: {env: [x=1]}\n", down("m3"), false, "restarting the engine of m1"},
		{"one down, engine reload of a manager", base + "engine: {label: [x=1]}\n", down("m3"), false, ""},
		{"promote first, then demote", strings.Replace(strings.Replace(base, "{name: m2, role: manager}", "{name: m2}", 1), "{name: w1, labels: {zone: a}}", "{name: w1, role: manager, labels: {zone: a}}", 1), down("m3"), false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := live()
			if tc.edit != nil {
				tc.edit(&obs)
			}
			_, err := Plan(parse(t, tc.file), obs, PlanOptions{Prune: tc.prune})
			var qe *QuorumError
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (!errors.As(err, &qe) || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("want a refusal with %q, got %v", tc.want, err)
			}
		})
	}
}

// TestPlanCountsJoiningManagers: the only manager may leave the file when another joins as a
// manager first; a plan whose only reachable manager would go is refused.
func TestPlanCountsJoiningManagers(t *testing.T) {
	obs := live()
	for _, n := range []string{"m2", "m3", "w2"} {
		delete(obs.Nodes, n)
	}
	file := "name: c\ndriver: container\nnodes:\n  - {name: w1, labels: {zone: a}}\n  - {name: w2, role: manager}\n"
	plan, err := Plan(parse(t, file), obs, PlanOptions{Prune: true})
	if err != nil {
		t.Fatalf("w2 joins as a manager before m1 goes: %v", err)
	}
	if got := lines(plan); got != "w2: join as manager\nm1: demote, drain and remove node, then its machine" {
		t.Errorf("plan:\n%s", got)
	}
	x := obs.Nodes["m1"]
	x.Reachable = false
	obs.Nodes["m1"] = x
	obs.Nodes["w2"] = ObservedNode{Machine: "w2", Manager: true, Reachable: true, Ready: true, Availability: "active"}
	file = "name: c\ndriver: container\nnodes:\n  - {name: w1, labels: {zone: a}}\n  - {name: m1, role: manager}\n"
	if _, err := Plan(parse(t, file), obs, PlanOptions{Prune: true}); err == nil || !strings.Contains(err.Error(), "removing w2") {
		t.Errorf("removing the only reachable manager: %v", err)
	}
}

func TestWritePlan(t *testing.T) {
	var b strings.Builder
	WritePlan(&b, nil)
	if b.String() != "nothing to change\n" {
		t.Errorf("empty plan: %q", b.String())
	}
	b.Reset()
	WritePlan(&b, []Change{{Kind: ChangeCreate, Node: "w3"}})
	if !strings.HasPrefix(b.String(), "the plan:\n  ") || strings.Count(b.String(), "\n") != 2 {
		t.Errorf("a plan of one change: %q", b.String())
	}
}

// TestSettling: a manager's swarm-side timeout is asked through again until it answers; any
// other error at once.
func TestSettling(t *testing.T) {
	n := 0
	err := settling(t.Context(), func(context.Context) error {
		if n++; n < 3 {
			return errors.New("Error response from daemon: rpc error: code = DeadlineExceeded desc = context deadline exceeded")
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Errorf("after %d calls: %v", n, err)
	}
	n = 0
	err = settling(t.Context(), func(context.Context) error { n++; return errors.New("permission denied") })
	if err == nil || n != 1 {
		t.Errorf("another error: %d calls, %v", n, err)
	}
}

// TestPlanNodesGoneForGood: a node that is down, no machine and not in the file is kept without
// --prune, kept with it until it has been down for DownFor, then its entry is removed; a manager
// gone so counts as unreachable already (no quorum refusal).
func TestPlanNodesGoneForGood(t *testing.T) {
	c := parse(t, base)
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	obs := live()
	obs.At = at
	obs.Nodes["old"] = ObservedNode{Machine: "old", ID: "id-old0123456789", Ready: false, Availability: "active", DownSince: at.Add(-3 * time.Hour)}
	obs.Nodes["oldm"] = ObservedNode{Machine: "oldm", ID: "id-oldm123456789", Manager: true, Ready: false, DownSince: at.Add(-10 * time.Minute)}
	for _, tc := range []struct {
		o    PlanOptions
		want string
	}{
		{PlanOptions{}, "old: down for 3h0m0s, not in the file, no machine (kept; --prune removes its entry)\noldm: down for 10m0s, not in the file, no machine (kept; --prune removes its entry)"},
		{PlanOptions{Prune: true, DownFor: time.Hour}, "old: remove its node entry id-old012345 (down for 3h0m0s, not in the file, no machine)\noldm: down for 10m0s, not in the file, no machine (kept until it has been down for 1h0m0s: --down-for)"},
		{PlanOptions{Prune: true}, "old: remove its node entry id-old012345 (down for 3h0m0s, not in the file, no machine)\noldm: remove its node entry id-oldm12345 (down for 10m0s, not in the file, no machine)"},
	} {
		plan, err := Plan(c, obs, tc.o)
		if err != nil {
			t.Fatalf("%+v: %v", tc.o, err)
		}
		if got := lines(plan); got != tc.want {
			t.Errorf("%+v:\n got:\n%s\nwant:\n%s", tc.o, got, tc.want)
		}
	}
}

// TestPlanMovedHosts: a machine whose host answers at another address is followed first; a
// manager whose raft address is not its host's any more (and the others cannot reach it) is
// rejoined; a reachable manager advertising an address of its own choosing is left alone.
func TestPlanMovedHosts(t *testing.T) {
	c := parse(t, base)
	obs := live()
	obs.IPs = map[string]string{"m1": "10.0.0.1", "m2": "10.0.0.9", "m3": "10.0.1.3"}
	for _, n := range []string{"m1", "m2", "m3"} {
		on := obs.Nodes[n]
		on.RaftAddr = "10.0.0." + n[1:]
		obs.Nodes[n] = on
	}
	m2 := obs.Nodes["m2"]
	m2.Reachable = false
	obs.Nodes["m2"] = m2
	obs.Moved = map[string]string{"w1": "10.0.0.11 → 10.0.0.21"}
	plan, err := Plan(c, obs, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "w1: address 10.0.0.11 → 10.0.0.21 (the machine follows it: its record, and its engine's certificate reissued)\n" +
		"m2: manager address 10.0.0.2 → 10.0.0.9: its raft address does not follow (demoted, out of the swarm, joined again as a manager)"
	if got := lines(plan); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestPlanLoneManagerMoved: the one manager of a swarm is reachable to itself wherever it is:
// a raft address that is not its host's (and not an address of its host's own) is moved through
// another node of the file (its old address lent for the while); one of its host's own is left
// alone; with no other node in the file it is a warning, not a change; a manager that was lent
// its old address (a run that stopped half-way) is moved on even beside another manager.
func TestPlanLoneManagerMoved(t *testing.T) {
	const two = "name: c\ndriver: container\nnodes:\n  - {name: m1, role: manager}\n  - {name: w1}\n"
	lone := func(file string) (*cluster.Cluster, Observed) {
		c := parse(t, file)
		obs := Observed{Machines: map[string]bool{"m1": true, "w1": true}, InSwarm: true, Ingress: true,
			Nodes: map[string]ObservedNode{"m1": {Machine: "m1", ID: "id1", Manager: true, Leader: true, Reachable: true, Ready: true, Availability: "active", Labels: map[string]string{}, RaftAddr: "10.0.0.1"}},
			IPs:   map[string]string{"m1": "10.0.0.9", "w1": "10.0.0.11"}}
		if len(c.Nodes) == 2 {
			obs.Nodes["w1"] = ObservedNode{Machine: "w1", ID: "idw", Reachable: true, Ready: true, Availability: "active", Labels: map[string]string{}}
		}
		return c, obs
	}
	c, obs := lone(two)
	plan, err := Plan(c, obs, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "m1: manager address 10.0.0.1 → 10.0.0.9: its raft address does not follow (10.0.0.1 lent to it for the while; another node of the file holds the swarm as a manager while it leaves and joins again as one)"
	if got := lines(plan); got != want || !Changes(plan) || plan[0].Kind != ChangeRejoin || plan[0].ID != "id1" {
		t.Errorf("lone manager moved: got %+v, want %s", plan, want)
	}

	own := obs.Nodes["m1"]
	own.RaftAddrOwn = true
	obs.Nodes["m1"] = own
	if plan, _ := Plan(c, obs, PlanOptions{}); Changes(plan) {
		t.Errorf("an advertise address of the host's own: %s", lines(plan))
	}
	obs.Lent = map[string]string{"m1": "10.0.0.1"} // lent by machine: not the host's own
	if plan, _ := Plan(c, obs, PlanOptions{}); !Changes(plan) || plan[0].Kind != ChangeRejoin {
		t.Errorf("an address machine lent: %s", lines(plan))
	}

	c, obs = lone("name: c\ndriver: container\nnodes:\n  - {name: m1, role: manager}\n")
	plan, _ = Plan(c, obs, PlanOptions{})
	if Changes(plan) || len(plan) != 1 || plan[0].Kind != ChangeRaftAlone || !strings.Contains(plan[0].Detail, "it stays 10.0.0.1 while m1 is the swarm's only node") {
		t.Errorf("a one-node file: %s", lines(plan))
	}

	// Beside another manager (the helper of a run that stopped half-way), reachable there.
	c, obs = lone(two)
	obs.Nodes["w1"] = ObservedNode{Machine: "w1", ID: "idw", Manager: true, Reachable: true, Ready: true, Availability: "active", Labels: map[string]string{}, RaftAddr: "10.0.0.11"}
	if plan, _ := Plan(c, obs, PlanOptions{}); strings.Contains(lines(plan), "m1: manager address") {
		t.Errorf("reachable beside another manager, nothing lent: %s", lines(plan))
	}
	obs.Lent = map[string]string{"m1": "10.0.0.1"}
	plan, _ = Plan(c, obs, PlanOptions{})
	if got := lines(plan); !strings.Contains(got, "m1: manager address 10.0.0.1 → 10.0.0.9: its raft address does not follow (10.0.0.1 lent") || !strings.Contains(got, "w1: demote") {
		t.Errorf("lent, beside the helper: %s", got)
	}
}

// TestPlanMeshWhereItCannotWork: a file that does not name the routing mesh, on container
// hosts whose kernel has no IPVS, starts its swarm without it and leaves an existing swarm's as
// it is; a file that asks for it gets it.
func TestPlanMeshWhereItCannotWork(t *testing.T) {
	const unsaid = "name: c\ndriver: container\nnodes:\n  - {name: m1, role: manager}\n"
	fresh := Observed{Machines: map[string]bool{"m1": true}, MeshCannotWork: true}
	plan, err := Plan(parse(t, unsaid), fresh, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := lines(plan); !strings.Contains(got, meshOffNoIPVS) {
		t.Errorf("a new swarm, the mesh unsaid where it cannot work:\n%s", got)
	}
	if plan, _ := Plan(parse(t, unsaid+"swarm: {routing-mesh: true}\n"), fresh, PlanOptions{}); strings.Contains(lines(plan), "routing mesh off") {
		t.Errorf("the mesh asked for is turned off:\n%s", lines(plan))
	}
	formed := Observed{Machines: map[string]bool{"m1": true}, InSwarm: true, MeshCannotWork: true,
		Nodes: map[string]ObservedNode{"m1": {Machine: "m1", ID: "id1", Manager: true, Leader: true, Reachable: true, Ready: true, Availability: "active", Labels: map[string]string{}}}}
	for _, ingress := range []bool{true, false} {
		formed.Ingress = ingress
		if plan, _ := Plan(parse(t, unsaid), formed, PlanOptions{}); Changes(plan) {
			t.Errorf("a formed swarm (ingress %v), the mesh unsaid where it cannot work: %s", ingress, lines(plan))
		}
	}
	formed.Ingress, formed.MeshCannotWork = false, false
	if plan, _ := Plan(parse(t, unsaid), formed, PlanOptions{}); !strings.Contains(lines(plan), "routing mesh on") {
		t.Errorf("where the mesh works, unsaid means on: %s", lines(plan))
	}
}

func TestMeshCannotWork(t *testing.T) {
	dir := t.TempDir()
	old := ipvsPath
	t.Cleanup(func() { ipvsPath = old })
	t.Setenv("MACHINE_CONTAINER_ENGINE_HOST", "")
	ipvsPath = filepath.Join(dir, "ip_vs")
	c := parse(t, "name: c\ndriver: container\nnodes:\n  - {name: m1, role: manager}\n  - {name: w1}\n")
	if !meshCannotWork(c) {
		t.Error("container hosts on the local engine, no IPVS: the mesh can work?")
	}
	if meshCannotWork(parse(t, "name: c\ndriver: container\nnodes:\n  - {name: m1, role: manager}\n  - {name: w1, driver: generic, driver-options: {ip-address: 10.0.0.2}}\n")) {
		t.Error("a generic host has its own kernel")
	}
	if meshCannotWork(parse(t, "name: c\ndriver: container\ndriver-options: {engine-host: \"tcp://10.0.0.5:2376\"}\nnodes:\n  - {name: m1, role: manager}\n")) {
		t.Error("an engine elsewhere has its own kernel")
	}
	if err := os.WriteFile(ipvsPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if meshCannotWork(c) {
		t.Error("IPVS loaded: the mesh can work")
	}
}
