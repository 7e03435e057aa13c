//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSwarmMovedHosts: a worker and then a manager get another address (their container
// disconnected from its network and connected again with another --ip); `plan` names both
// machines' new addresses and the manager's rejoin; `up` repairs them: `machine ip`, `ssh` and
// docker over TLS work for both, the swarm has its 3 managers reachable and no stale entries,
// and a replicated service sampled throughout never has fewer than its replicas minus one running.
func TestSwarmMovedHosts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := uniq("e2e-mv")
	img := "machine-e2e/" + p + ":1"
	localImage(t, img)
	m1, m2, m3, w1 := p+"-m1", p+"-m2", p+"-m3", p+"-w1"
	netName := p + "-net"
	t.Cleanup(func() { e.run("rm", "-f", "-y", m1, m2, m3, w1) })
	file := filepath.Join(t.TempDir(), "cluster.yml")
	content := fmt.Sprintf("name: %s\ndriver: container\ndriver-options: {network: %s}\nswarm: {routing-mesh: false}\nnodes:\n  - {name: %s, role: manager}\n  - {name: %s, role: manager}\n  - {name: %s, role: manager}\n  - {name: %s}\nimages:\n  - {name: %s, source: local}\n", p, netName, m1, m2, m3, w1, img)
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.run("swarm", "up", "-f", file); r.code != 0 {
		t.Fatalf("swarm up: %s", r)
	}
	if r := e.docker(m1, "service", "create", "-q", "--name", "app", "--replicas", "3", "--endpoint-mode", "dnsrr", img, "sleep", "3600"); r.code != 0 {
		t.Fatalf("service create: %s", r)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		if n, _ := e.running(m1, "app"); n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("app never had its 3 tasks running")
		}
	}
	leastRunning := e.leastRunning(m1, "app")

	// Each moves to an address of its network that nothing has: .200 and .201 of its subnet.
	at := func(last byte) string { return addressIn(t, netName, last) }
	move := func(h, ip string) string {
		t.Helper()
		old := strings.TrimSpace(e.must("ip", h))
		reconnect(t, netName, h, ip)
		return old
	}
	oldW, oldM := move(w1, at(200)), move(m2, at(201))
	r := e.run("swarm", "plan", "-f", file)
	for _, want := range []string{
		w1 + ": address " + oldW + " → " + at(200),
		m2 + ": address " + oldM + " → " + at(201),
		m2 + ": manager address " + oldM + " → " + at(201) + ": its raft address does not follow",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan does not say %q: %s", want, r)
		}
	}
	if r.code != 2 {
		t.Errorf("plan with moved hosts: exit %d, want 2", r.code)
	}
	r = e.run("swarm", "up", "-f", file)
	if r.code != 0 {
		t.Fatalf("up with moved hosts: %s", r)
	}
	t.Logf("up with moved hosts:\n%s", r.stderr)
	for h, ip := range map[string]string{w1: at(200), m2: at(201)} {
		if got := strings.TrimSpace(e.must("ip", h)); got != ip {
			t.Errorf("machine ip %s: %s, want %s", h, got, ip)
		}
		e.must("ssh", h, "true")
		if d := e.docker(h, "version", "--format", "{{.Server.Version}}"); d.code != 0 {
			t.Errorf("docker over TLS to %s: %s", h, d)
		}
	}
	expectNodes(t, e, m1, map[string]string{m1: "manager", m2: "manager", m3: "manager", w1: "worker"})
	if r := e.docker(m1, "node", "ls", "--filter", "role=manager", "--format", "{{.Hostname}} {{.ManagerStatus}}"); strings.Count(r.stdout, "Reachable")+strings.Count(r.stdout, "Leader") != 3 {
		t.Errorf("managers: %s", r)
	}
	if r := e.run("swarm", "plan", "-f", file); r.code != 0 {
		t.Errorf("plan after the repair: %s", r)
	}
	if least := leastRunning(); least < 2 {
		t.Errorf("app had %d of its 3 tasks running at one moment", least)
	}
}

// TestMachineFollowsItsMovedHost: a container host reconnected to its network with another IP,
// twice. After the first move `ip` gives the driver's answer at once (as docker-machine's does),
// and `env` (which hands the address to the docker CLI) follows the host: the record, the pinned
// host keys, a certificate for the new address; its stdout stays only the variables. After the
// second, `machine ssh` (whose connection is bounded at 20 s, all of which the old address would
// take) asks the driver, follows, and runs the command there. Docker over TLS works each time.
func TestMachineFollowsItsMovedHost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	netName, h := uniq("e2e-fm-net"), uniq("e2e-fm")
	createHosts(t, e, netName, nil, h)
	first, second := addressIn(t, netName, 200), addressIn(t, netName, 201)

	reconnect(t, netName, h, first)
	if got := strings.TrimSpace(e.must("ip", h)); got != first {
		t.Errorf("machine ip after the move: %s, want %s", got, first)
	}
	r := e.run("env", h)
	if r.code != 0 || !strings.Contains(r.stdout, `DOCKER_HOST="tcp://`+first+`:2376"`) || !strings.Contains(r.stderr, "its host is at "+first+" now") {
		t.Fatalf("env after the move: %s", r)
	}
	if d := e.docker(h, "info", "--format", "{{.Name}}"); d.code != 0 || strings.TrimSpace(d.stdout) != h {
		t.Errorf("docker over TLS at %s: %s", first, d)
	}

	reconnect(t, netName, h, second)
	r = e.run("ssh", h, "hostname")
	if r.code != 0 || strings.TrimSpace(r.stdout) != h {
		t.Fatalf("ssh after the move from %s to %s: %s", first, second, r)
	}
	if got := strings.TrimSpace(e.must("url", h)); got != "tcp://"+second+":2376" {
		t.Errorf("machine url after the second move: %s", got)
	}
	if d := e.docker(h, "info", "--format", "{{.Name}}"); d.code != 0 || strings.TrimSpace(d.stdout) != h {
		t.Errorf("docker over TLS at %s: %s", second, d)
	}
}

// TestSwarmLoneManagerMoved: the one manager of a swarm gets another address, twice. Swarm keeps
// its raft address (its worker, told that address, goes Down). `plan` names the move and how it
// is made; `up`, interrupted at a moment of the move (the worker joining again as a manager to
// hold the swarm; the manager joining again), and run again, finishes it: the manager's raft
// address is its new one, the worker's manager list names it, the roles are the file's again,
// the worker's label and the service's tasks are there, the old address lent to the manager is
// given back, and the plan has nothing left to change. The second move needs the worker to be
// made a manager again after the first: a node keeps the address it first joined through, so a
// worker that joined through an address the manager no longer has cannot be promoted.
func TestSwarmLoneManagerMoved(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := uniq("e2e-lm")
	img := "machine-e2e/" + p + ":1"
	localImage(t, img)
	m1, w1 := p+"-m1", p+"-w1"
	netName := p + "-net"
	t.Cleanup(func() { e.run("rm", "-f", "-y", m1, w1) })
	file := filepath.Join(t.TempDir(), "cluster.yml")
	content := fmt.Sprintf("name: %s\ndriver: container\ndriver-options: {network: %s}\nswarm: {routing-mesh: false}\nnodes:\n  - {name: %s, role: manager}\n  - {name: %s, labels: {zone: a}}\nimages:\n  - {name: %s, source: local}\n", p, netName, m1, w1, img)
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.run("swarm", "up", "-f", file); r.code != 0 {
		t.Fatalf("swarm up: %s", r)
	}
	if r := e.docker(m1, "service", "create", "-q", "--name", "app", "--replicas", "2", "--endpoint-mode", "dnsrr", img, "sleep", "3600"); r.code != 0 {
		t.Fatalf("service create: %s", r)
	}
	waitTasks := func(why string) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
			if n, _ := e.running(m1, "app"); n == 2 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: app does not have its 2 tasks running", why)
			}
		}
	}
	waitTasks("after up")

	// Moved twice: up interrupted once as the worker joins again as a manager to hold the swarm,
	// once as the manager joins again (after it left the swarm: the worker alone holds it).
	for i, moment := range []string{"in again as a manager, through", "(" + m1 + ") joining as manager, advertising"} {
		old := strings.TrimSpace(e.must("ip", m1))
		now := addressIn(t, netName, byte(200+i))
		reconnect(t, netName, m1, now)
		r := e.run("swarm", "plan", "-f", file)
		for _, want := range []string{
			m1 + ": address " + old + " → " + now,
			m1 + ": manager address " + old + " → " + now + ": its raft address does not follow (" + old + " lent to it for the while",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("plan does not say %q: %s", want, r)
			}
		}
		if r.code != 2 {
			t.Errorf("plan with the manager moved: exit %d, want 2", r.code)
		}
		done, seen, msg := e.interruptAt(moment, "swarm", "up", "-f", file)
		if done || !seen {
			t.Fatalf("up interrupted at %q: finished %v, the moment seen %v:\n%s", moment, done, seen, msg)
		}
		r = e.run("swarm", "up", "-f", file)
		if r.code != 0 {
			t.Fatalf("up after the one interrupted at %q: %s\n(the interrupted one:\n%s)", moment, r, msg)
		}
		t.Logf("up after the one interrupted at %q:\n%s", moment, r.stderr)
		if got := mustTrim(t, e.docker(m1, "node", "inspect", "self", "--format", "{{.ManagerStatus.Addr}}")); got != now+":2377" {
			t.Errorf("m1's raft address: %s, want %s:2377", got, now)
		}
		if got := mustTrim(t, e.docker(w1, "info", "--format", "{{range .Swarm.RemoteManagers}}{{.Addr}} {{end}}")); got != now+":2377" {
			t.Errorf("the worker's managers: %q, want %s:2377", got, now)
		}
		expectNodes(t, e, m1, map[string]string{m1: "manager", w1: "worker"})
		if got := mustTrim(t, e.docker(m1, "node", "inspect", w1, "--format", "{{.Spec.Labels.zone}}")); got != "a" {
			t.Errorf("w1's label zone: %q", got)
		}
		waitTasks("after the repair")
		if addrs := e.must("ssh", m1, "ip", "-o", "addr", "show"); strings.Contains(addrs, " "+old+"/") {
			t.Errorf("the lent address %s is still on m1:\n%s", old, addrs)
		}
		if left, _ := filepath.Glob(filepath.Join(e.store, "clusters", "lent-*")); len(left) > 0 {
			t.Errorf("the store still notes a lent address: %v", left)
		}
		if r := e.run("swarm", "plan", "-f", file); r.code != 0 {
			t.Errorf("plan after the repair: %s", r)
		}
	}
}

func mustTrim(t *testing.T, r result) string {
	t.Helper()
	if r.code != 0 {
		t.Errorf("%s", r)
	}
	return strings.TrimSpace(r.stdout)
}
