//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSwarmConverge: the same file, changed, converges the live cluster: a plan first (exactly
// the edits), `up` applies it while a replicated service keeps at least 2 of 3 replicas
// running, and afterwards the plan is empty and `up` a no-op. Then a plan that would cost quorum
// is refused with nothing changed.
func TestSwarmConverge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := uniq("e2e-cv")
	img := "machine-e2e/" + p + ":1"
	localImage(t, img)
	n := func(s string) string { return p + "-" + s }
	t.Cleanup(func() { e.run("rm", "-f", "-y", n("m1"), n("m2"), n("m3"), n("w1"), n("w2"), n("w3")) })
	file := filepath.Join(t.TempDir(), "cluster.yml")
	write := func(nodes, engine string) {
		content := fmt.Sprintf("name: %s\ndriver: container\ndriver-options: {network: %s-net}\n%snodes:\n%simages:\n  - {name: %s, source: local}\n",
			p, p, engine, strings.ReplaceAll(nodes, "P-", p+"-"), img)
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`  - {name: P-m1, role: manager, labels: {tier: core}}
  - {name: P-m2, role: manager}
  - {name: P-m3, role: manager}
  - {name: P-w1, labels: {zone: a}}
  - {name: P-w2}
`, "")
	if r := e.run("swarm", "up", "-f", file); r.code != 0 {
		t.Fatalf("up: %s", r)
	}
	if r := e.run("swarm", "plan", "-f", file); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Fatalf("plan of an unchanged file: %s", r)
	}
	// A replicated service to watch (no routing mesh on this kernel: dnsrr), spread one replica
	// per node: a drain moves one replica, never two (docs/cluster-file.md).
	if r := e.docker(n("m1"), "service", "create", "-q", "--detach", "--name", "web", "--replicas", "3", "--replicas-max-per-node", "1", "--endpoint-mode", "dnsrr", img, "sleep", "3600"); r.code != 0 {
		t.Fatal(r)
	}
	// Running replicas, as the first manager that answers sees them (-1: none answered; the
	// managers' engines restart in turn).
	running := func() int {
		for _, m := range []string{n("m1"), n("m2"), n("w1"), n("m3")} {
			r := e.docker(m, "service", "ps", "web", "--filter", "desired-state=running", "--format", "{{.CurrentState}}")
			if r.code == 0 {
				return strings.Count(r.stdout, "Running")
			}
		}
		return -1
	}
	waitFor(t, "3 replicas running", 90*time.Second, func() (bool, string) { k := running(); return k == 3, fmt.Sprint(k, " running") })

	// The edits: a worker more, one less, a promotion, a demotion, a renamed label, a dropped
	// label, an availability, and a registry mirror.
	write(`  - {name: P-m1, role: manager}
  - {name: P-m2, role: manager, availability: pause}
  - {name: P-m3}
  - {name: P-w1, role: manager, labels: {zone: b}}
  - {name: P-w3}
`, "engine: {env: [MACHINE_E2E=1]}\n")
	r := e.run("swarm", "plan", "--prune", "-f", file)
	if r.code != 2 {
		t.Fatalf("plan of a changed file should exit 2: %s", r)
	}
	got := regexp.MustCompile(p+`-`).ReplaceAllString(strings.TrimSpace(r.stdout), "P-")
	want := `P-w3: create machine (container)
P-w3: join as worker
P-w1: promote to manager
P-m1: label tier removed
P-m2: availability active→pause
P-w1: label zone a→b
P-m1: engine: env MACHINE_E2E=1 added (restarts the engine)
P-m2: engine: env MACHINE_E2E=1 added (restarts the engine)
P-m3: engine: env MACHINE_E2E=1 added (restarts the engine)
P-w1: engine: env MACHINE_E2E=1 added (restarts the engine)
P-m3: demote to worker
image ` + img + ` to 1 node(s)
P-w2: drain and remove node, then its machine`
	if got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}

	// Apply it, sampling the service every 0.5 s.
	var mu sync.Mutex
	minRunning, samples := 3, 0
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
			k := running()
			if k < 0 {
				continue
			}
			if k < 2 {
				t.Logf("%s: %d running:\n%s", time.Now().Format("15:04:05.0"), k, e.docker(n("m1"), "service", "ps", "web", "--format", "{{.Node}} {{.DesiredState}} {{.CurrentState}}").stdout)
			}
			mu.Lock()
			samples++
			minRunning = min(minRunning, k)
			mu.Unlock()
		}
	}()
	r = e.run("swarm", "up", "--prune", "-f", file)
	close(stop)
	<-done
	if r.code != 0 {
		t.Fatalf("up of the changed file: %s", r)
	}
	if minRunning < 2 || samples < 4 {
		t.Errorf("during the roll-out, replicas running fell to %d (%d samples)", minRunning, samples)
	}
	roles := e.docker(n("m1"), "node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}} {{.Availability}}").stdout
	for _, w := range []string{n("w1") + " (Reachable|Leader) Active", n("m3") + "  Active", n("m2") + " (Reachable|Leader) Pause", n("w3") + "  Active"} {
		if !regexp.MustCompile(w).MatchString(roles) {
			t.Errorf("nodes after up, want %q:\n%s", w, roles)
		}
	}
	if strings.Contains(roles, n("w2")) || e.run("status", n("w2")).code == 0 {
		t.Errorf("w2 should be out of the swarm and gone:\n%s", roles)
	}
	if env := e.run("ssh", n("w1"), "tr '\\0' '\\n' < /proc/$(pidof dockerd)/environ"); !strings.Contains(env.stdout, "MACHINE_E2E=1") {
		t.Errorf("w1's dockerd has not the new environment: %s", env)
	}
	// A registry mirror: dockerd reloads it (no drain, no restart), checked with docker info.
	pid := strings.TrimSpace(e.run("ssh", n("w3"), "pidof dockerd").stdout)
	write(`  - {name: P-m1, role: manager}
  - {name: P-m2, role: manager, availability: pause}
  - {name: P-m3}
  - {name: P-w1, role: manager, labels: {zone: b}}
  - {name: P-w3}
`, "engine: {env: [MACHINE_E2E=1], registry-mirror: https://mirror.example.test}\n")
	if r := e.run("swarm", "plan", "-f", file); r.code != 2 || strings.Count(r.stdout, "registry-mirror https://mirror.example.test added (reloaded: no restart)") != 5 {
		t.Errorf("plan of a mirror: %s", r)
	}
	if r := e.run("swarm", "up", "-f", file); r.code != 0 || strings.Contains(r.stderr, "draining") || strings.Count(r.stderr, "reloaded (no restart)") != 5 {
		t.Errorf("up with a mirror: %s", r)
	}
	if info := e.docker(n("w3"), "info", "--format", "{{.RegistryConfig.Mirrors}}").stdout; !strings.Contains(info, "mirror.example.test") {
		t.Errorf("w3's engine has no mirror: %q", info)
	}
	if now := strings.TrimSpace(e.run("ssh", n("w3"), "pidof dockerd").stdout); now != pid || pid == "" {
		t.Errorf("dockerd restarted for a mirror: pid %s, now %s", pid, now)
	}
	if r := e.run("swarm", "plan", "--prune", "-f", file); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Errorf("plan after up: %s", r)
	}
	if r := e.run("swarm", "up", "--prune", "-f", file); r.code != 0 || !strings.Contains(r.stderr, "nothing to change") {
		t.Errorf("up again: %s", r)
	}

	// Quorum: one of three managers down, and the file demotes another: refused, nothing changed.
	e.must("kill", n("m2"))
	waitFor(t, "m2 unreachable", 60*time.Second, func() (bool, string) {
		out := e.docker(n("m1"), "node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}").stdout
		return strings.Contains(out, n("m2")+" Unreachable"), out
	})
	before := e.docker(n("m1"), "node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}} {{.Availability}}").stdout
	write(`  - {name: P-m1, role: manager}
  - {name: P-m2, role: manager, availability: pause}
  - {name: P-m3}
  - {name: P-w1, labels: {zone: b}}
  - {name: P-w3}
`, "engine: {env: [MACHINE_E2E=1], registry-mirror: https://mirror.example.test}\n")
	r = e.run("swarm", "up", "-f", file)
	if r.code == 0 || !strings.Contains(r.stderr, "3 managers, 1 down ("+n("m2")+"): demoting "+n("w1")+" would leave 1 of 2 reachable") {
		t.Errorf("a plan that costs quorum: %s", r)
	}
	if after := e.docker(n("m1"), "node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}} {{.Availability}}").stdout; after != before {
		t.Errorf("the refused plan changed the swarm:\n%s\nto\n%s", before, after)
	}
}

// TestSwarmRoutingMesh: `swarm: {routing-mesh: false}` makes a swarm without the ingress network
// (removed before the worker joins: the worker has no ingress sandbox), a service publishing a
// port with mode=host runs on it; changed back, the plan says so and up creates the network; off
// again while a service publishes a port through it: refused, naming the fix, nothing changed.
func TestSwarmRoutingMesh(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := uniq("e2e-mesh")
	m, w := p+"-m", p+"-w"
	t.Cleanup(func() { e.run("rm", "-f", "-y", m, w) })
	file := filepath.Join(t.TempDir(), "cluster.yml")
	write := func(mesh bool) {
		writeFile(t, file, fmt.Sprintf("name: %s\ndriver: container\ndriver-options: {network: %s-net}\nnodes:\n  - {name: %s, role: manager}\n  - {name: %s}\nswarm: {routing-mesh: %t}\n", p, p, m, w, mesh))
	}
	hasIngress := func(node string) bool {
		r := e.docker(node, "network", "inspect", "--format", "{{.Ingress}}", "ingress")
		return r.code == 0 && strings.TrimSpace(r.stdout) == "true"
	}
	write(false)
	if r := e.run("swarm", "up", "-f", file); r.code != 0 || !strings.Contains(r.stderr, "routing mesh off: ingress network removed") {
		t.Fatalf("swarm up without the routing mesh: %s", r)
	}
	if hasIngress(m) || hasIngress(w) { // a worker lists the networks it has a sandbox of
		t.Errorf("an ingress network without the routing mesh")
	}
	write(true)
	if r := e.run("swarm", "plan", "-f", file); r.code != 2 || strings.TrimSpace(r.stdout) != "routing mesh on (ingress network created)" {
		t.Errorf("plan with the routing mesh back: %s", r)
	}
	if r := e.run("swarm", "up", "-f", file); r.code != 0 || !hasIngress(m) {
		t.Fatalf("swarm up with the routing mesh back: %s", r)
	}
	// A service publishing a port through ingress (its image need not exist: the service holds
	// the network whatever its tasks do).
	if d := e.docker(m, "service", "create", "--detach", "--name", p+"-web", "--publish", "8080:80", "busybox:none", "true"); d.code != 0 {
		t.Fatalf("a service publishing a port through ingress: %s", d)
	}
	write(false)
	r := e.run("swarm", "up", "-f", file)
	expectOneLineError(t, r, "ingress", "mode=host")
	if !hasIngress(m) {
		t.Errorf("the refused change removed the ingress network")
	}
}
