//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSwarmBackupRestore: a 3-manager + 2-worker swarm holding a replicated service on an overlay
// network, a global service, a secret and a config read by a task, and node labels is backed up
// (from a manager that is not the leader, the service never below its replicas minus one); a
// restore over it is refused; every host is removed; a restore onto new hosts at other addresses
// (interrupted while the state is placed, while the new cluster is forced and while the raft
// address is moved, each run going on from the last) brings back the services with their tasks
// running, the secret's and the config's content inside a task, the network and the labels, the
// restored manager's raft address its own; the plan then has nothing to change.
func TestSwarmBackupRestore(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := uniq("e2e-bk")
	img := "machine-e2e/" + p + ":1"
	localImage(t, img)
	names := []string{p + "-m1", p + "-m2", p + "-m3", p + "-w1", p + "-w2"}
	m1, m2, w1 := names[0], names[1], names[3]
	net := p + "-net"
	// The hosts' network is the test's own: it outlives them, and goes after them.
	t.Cleanup(func() {
		e.run(append([]string{"rm", "-f", "-y"}, names...)...)
		_ = exec.Command("docker", "network", "rm", net).Run()
	})
	octet := os.Getpid()%200 + 20
	if out, err := exec.Command("docker", "network", "create", "--subnet", fmt.Sprintf("10.238.%d.0/24", octet), net).CombinedOutput(); err != nil {
		t.Fatalf("docker network create: %v %s", err, out)
	}
	file := filepath.Join(t.TempDir(), "cluster.yml")
	// The hosts' addresses are the file's (the restore's new hosts get others: see below).
	ip := func(i int) string { return fmt.Sprintf("10.238.%d.%d", octet, 11+i) }
	content := fmt.Sprintf(`name: %s
driver: container
driver-options: {network: %s}
nodes:
  - {name: %s, role: manager, driver-options: {ip: %s}}
  - {name: %s, role: manager, driver-options: {ip: %s}}
  - {name: %s, role: manager, driver-options: {ip: %s}}
  - {name: %s, labels: {zone: a}, driver-options: {ip: %s}}
  - {name: %s, labels: {zone: b}, driver-options: {ip: %s}}
networks:
  - {name: appnet, attachable: true}
images:
  - {name: %s, source: local}
`, p, net, names[0], ip(0), names[1], ip(1), names[2], ip(2), names[3], ip(3), names[4], ip(4), img)
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.run("swarm", "up", "-f", file); r.code != 0 {
		t.Fatalf("swarm up: %s", r)
	}
	mustDocker := func(node, stdin string, args ...string) string {
		t.Helper()
		r := e.dockerWith(nil, stdin, node, args...)
		if r.code != 0 {
			t.Fatalf("docker %s on %s: %s", strings.Join(args, " "), node, r)
		}
		return strings.TrimSpace(r.stdout)
	}
	mustDocker(m1, "the secret of "+p, "secret", "create", "s1", "-")
	mustDocker(m1, "the config of "+p, "config", "create", "c1", "-")
	mustDocker(m1, "", "service", "create", "-q", "--detach", "--name", "app", "--replicas", "2", "--network", "appnet", "--endpoint-mode", "dnsrr",
		"--secret", "s1", "--config", "source=c1,target=/c1", "--constraint", "node.role==worker", img, "sleep", "3600")
	mustDocker(m1, "", "service", "create", "-q", "--detach", "--name", "g", "--mode", "global", "--endpoint-mode", "dnsrr", img, "sleep", "3600")
	running := func(node, service string) int {
		r := e.docker(node, "service", "ps", service, "--filter", "desired-state=running", "--format", "{{.CurrentState}}")
		return strings.Count(r.stdout, "Running")
	}
	waitRunning := func(node string, want map[string]int) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for {
			ok := true
			for s, n := range want {
				ok = ok && running(node, s) == n
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("on %s: app %d running, g %d running; want %v", node, running(node, "app"), running(node, "g"), want)
			}
			time.Sleep(time.Second)
		}
	}
	waitRunning(m1, map[string]int{"app": 2, "g": 5})
	mustDocker(m1, "", "node", "update", "--label-add", "local.team=blue", w1) // a label outside the file

	// The backup, the service sampled through another manager meanwhile.
	out := filepath.Join(t.TempDir(), "swarm.backup")
	stop, lowest := make(chan struct{}), make(chan int, 1)
	go func() {
		low := 2
		for {
			select {
			case <-stop:
				lowest <- low
				return
			case <-time.After(500 * time.Millisecond):
			}
			if n := running(m1, "app"); n < low {
				low = n
			}
		}
	}()
	began := time.Now()
	r := e.run("swarm", "backup", "-f", file, "-o", out)
	close(stop)
	if r.code != 0 {
		t.Fatalf("swarm backup: %s", r)
	}
	t.Logf("backup in %s: %s", time.Since(began).Round(100*time.Millisecond), strings.TrimSpace(r.stdout))
	if low := <-lowest; low < 1 {
		t.Errorf("during the backup the service had %d running tasks (replicas 2)", low)
	}
	if !strings.Contains(r.stdout, "2 services, 1 secrets, 1 configs") || !strings.Contains(r.stdout, "3 managers, 2 workers") {
		t.Errorf("backup: %s", r)
	}
	st, err := os.Stat(out)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the backup file: %v %v", st, err)
	}
	// Over the live swarm: refused, nothing changed.
	expectOneLineError(t, e.run("swarm", "restore", "-f", file, out), "is up", "pass --force")

	// Interrupted at three moments (before, during and after the chosen manager's engine stop):
	// the whole file or none, nothing beside it, and the three managers reachable again.
	interrupted := 0
	for _, after := range []time.Duration{800 * time.Millisecond, 2500 * time.Millisecond, 5 * time.Second} {
		dir := t.TempDir()
		done, msg := e.interrupt(after, "swarm", "backup", "-f", file, "-o", filepath.Join(dir, "cut.backup"))
		var left []string
		if entries, err := os.ReadDir(dir); err == nil {
			for _, en := range entries {
				left = append(left, en.Name())
			}
		}
		switch {
		case done && (len(left) != 1 || left[0] != "cut.backup"):
			t.Errorf("after %s: a backup that finished left %v", after, left)
		case !done && !strings.Contains(msg, "interrupted"):
			t.Errorf("after %s: the error does not say it was interrupted: %s", after, msg)
		case !done && len(left) > 0:
			t.Errorf("after %s: an interrupted backup left %v", after, left)
		}
		if !done {
			interrupted++
		}
		for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(time.Second) {
			r := e.docker(m1, "node", "ls", "--filter", "role=manager", "--format", "{{.ManagerStatus}}")
			if r.code == 0 && strings.Count(r.stdout, "Reachable")+strings.Count(r.stdout, "Leader") == 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after a backup interrupted at %s the managers are %q (%s)", after, r.stdout, msg)
			}
		}
	}
	if interrupted == 0 {
		t.Error("every backup finished before its interrupt: nothing was tested")
	}
	t.Logf("%d of 3 backups interrupted", interrupted)

	// Every host gone. The backup came from a manager that was not the leader (m1 led).
	var from string
	for _, n := range names[:3] {
		if strings.Contains(r.stdout, " from "+n+" ") {
			from = n
		}
	}
	if from == "" || from == m1 {
		t.Errorf("the backup was taken from %q: want a manager that is not the leader %s", from, m1)
	}
	if r := e.run("rm", "-f", "-y", names[0], names[1], names[2], names[3], names[4]); r.code != 0 {
		t.Fatalf("rm: %s", r)
	}
	// The new hosts at other addresses (the dead-disk case): the file as it was, each host's
	// address 50 further on.
	moved := content
	for i := range names {
		moved = strings.Replace(moved, "ip: "+ip(i)+"}", fmt.Sprintf("ip: 10.238.%d.%d}", octet, 61+i), 1)
	}
	if err := os.WriteFile(file, []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	// Interrupted at three moments, each run going on from where the one before stopped:
	// while the state is placed (the engine stopped), while the new cluster is forced, and while
	// the raft address is moved; then run to its end.
	began = time.Now()
	for _, moment := range []string{"stopping its engine, placing the backup's swarm state", "forcing a new cluster of one", "lent to its"} {
		done, seen, msg := e.interruptAt(moment, "swarm", "restore", "-f", file, out)
		if done || !seen {
			t.Fatalf("restore interrupted at %q: finished %v, the moment seen %v:\n%s", moment, done, seen, msg)
		}
		if !strings.Contains(msg, "interrupted") && !strings.Contains(msg, "context canceled") {
			t.Errorf("restore interrupted at %q does not say so:\n%s", moment, msg)
		}
	}
	r = e.run("swarm", "restore", "-f", file, out)
	if r.code != 0 {
		t.Fatalf("swarm restore after three interrupted ones: %s", r)
	}
	t.Logf("restore onto 5 new hosts at other addresses, interrupted three times, in %s:\n%s", time.Since(began).Round(100*time.Millisecond), r.stderr)
	// The restored manager's raft address is its own (the backup's was lent it for the while).
	if got := mustTrim(t, e.docker(from, "node", "inspect", "self", "--format", "{{.ManagerStatus.Addr}}")); !strings.HasPrefix(got, strings.TrimSpace(e.must("ip", from))+":") {
		t.Errorf("the restored manager %s's raft address: %s", from, got)
	}
	if left, _ := filepath.Glob(filepath.Join(e.store, "clusters", "lent-*")); len(left) > 0 {
		t.Errorf("the store still notes a lent address: %v", left)
	}
	expectNodes(t, e, m1, map[string]string{names[0]: "manager", names[1]: "manager", names[2]: "manager", names[3]: "worker", names[4]: "worker"})
	waitRunning(m2, map[string]int{"app": 2, "g": 5})
	// The secret and the config, read inside one of app's tasks.
	where := strings.Fields(mustDocker(m1, "", "service", "ps", "app", "--filter", "desired-state=running", "--format", "{{.Node}}"))
	if len(where) == 0 {
		t.Fatal("no running task of app")
	}
	id := mustDocker(where[0], "", "ps", "-q", "--filter", "label=com.docker.swarm.service.name=app")
	id = strings.Fields(id)[0]
	if got := mustDocker(where[0], "", "exec", id, "busybox", "cat", "/run/secrets/s1", "/c1"); got != "the secret of "+p+"the config of "+p {
		t.Errorf("inside the task: %q", got)
	}
	if got := mustDocker(m1, "", "network", "ls", "--filter", "name=appnet", "--format", "{{.Name}} {{.Driver}}"); got != "appnet overlay" {
		t.Errorf("the network: %q", got)
	}
	if got := mustDocker(m1, "", "node", "inspect", w1, "--format", `{{.Spec.Labels.zone}} {{index .Spec.Labels "local.team"}}`); got != "a blue" {
		t.Errorf("w1's label zone: %q", got)
	}
	if r := e.run("swarm", "plan", "-f", file); r.code != 0 {
		t.Errorf("the plan after the restore: %s", r)
	}
}

// TestSwarmRecover: two of three manager hosts killed: plan and status say the quorum is lost
// within seconds; recover with the quorum intact is refused; recover forces a new cluster on the
// survivor, makes the lost managers again from the file and joins them (interrupted at three
// moments, each run going on from the last); the global service's
// task on the worker runs throughout; the plan then has nothing to change.
func TestSwarmRecover(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := uniq("e2e-rc")
	img := "machine-e2e/" + p + ":1"
	localImage(t, img)
	m1, m2, m3, w1 := p+"-m1", p+"-m2", p+"-m3", p+"-w1"
	t.Cleanup(func() { e.run("rm", "-f", "-y", m1, m2, m3, w1) })
	file := filepath.Join(t.TempDir(), "cluster.yml")
	content := fmt.Sprintf(`name: %s
driver: container
driver-options: {network: %s-net}
nodes:
  - {name: %s, role: manager}
  - {name: %s, role: manager}
  - {name: %s, role: manager}
  - {name: %s}
images:
  - {name: %s, source: local}
`, p, p, m1, m2, m3, w1, img)
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.run("swarm", "up", "-f", file); r.code != 0 {
		t.Fatalf("swarm up: %s", r)
	}
	expectOneLineError(t, e.run("swarm", "recover", "-f", file), "has its quorum", "nothing to recover")
	if r := e.docker(m1, "service", "create", "-q", "--detach", "--name", "g", "--mode", "global", "--endpoint-mode", "dnsrr", img, "sleep", "3600"); r.code != 0 {
		t.Fatalf("service create: %s", r)
	}
	task := func() string {
		r := e.docker(w1, "ps", "-q", "--filter", "label=com.docker.swarm.service.name=g")
		return strings.TrimSpace(r.stdout)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for task() == "" {
		if time.Now().After(deadline) {
			t.Fatal("g's task never ran on the worker")
		}
		time.Sleep(time.Second)
	}
	before := task()
	kill := func(h string) {
		if out, err := exec.Command("docker", "kill", h).CombinedOutput(); err != nil {
			t.Fatalf("docker kill %s: %v %s", h, err, out)
		}
	}
	// One of three managers gone: a backup would stop a second one, and is refused.
	kill(m3)
	expectOneLineError(t, e.run("swarm", "backup", "-f", file, "-o", filepath.Join(t.TempDir(), "b")), "stopping one for the copy would leave 1 of 3", "start "+m3+" first")
	kill(m2)
	start := time.Now()
	r := e.run("swarm", "plan", "-f", file)
	if r.code == 0 || !strings.Contains(r.stderr, "quorum lost: 2 of 3 managers unreachable ("+m2+", "+m3+")") || !strings.Contains(r.stderr, "machine swarm recover") {
		t.Fatalf("plan with quorum lost: %s", r)
	}
	took := time.Since(start).Round(100 * time.Millisecond)
	if took > 40*time.Second {
		t.Errorf("plan took %s to say the quorum is lost", took)
	}
	// status reads the swarm through its manager, which says it has no leader once its election
	// timed out (about ten seconds after the majority went).
	var st result
	for i := 0; i < 20; i++ {
		if st = e.run("swarm", "status", m1); st.code != 0 && strings.Contains(st.stderr, "quorum lost") {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if st.code == 0 || !strings.Contains(st.stderr, "quorum lost: ") {
		t.Errorf("status with quorum lost, %s after the kill: %s", time.Since(start).Round(time.Second), st)
	}
	// Interrupted at three moments, each run going on from where the one before stopped: while
	// the new cluster is forced, while the old managers are taken out of the node list, and while
	// the lost managers' machines are made again; then run to its end.
	began := time.Now()
	for _, moment := range []string{"forcing a new cluster of one", "out of the node list (a manager of the old cluster)", "creating the machine"} {
		done, seen, msg := e.interruptAt(moment, "swarm", "recover", "-f", file)
		if done || !seen {
			t.Fatalf("recover interrupted at %q: finished %v, the moment seen %v:\n%s", moment, done, seen, msg)
		}
		if !strings.Contains(msg, "interrupted") && !strings.Contains(msg, "context canceled") {
			t.Errorf("recover interrupted at %q does not say so:\n%s", moment, msg)
		}
	}
	if r := e.run("swarm", "recover", "-f", file); r.code != 0 {
		t.Fatalf("swarm recover after three interrupted ones: %s", r)
	}
	t.Logf("plan said the quorum was lost in %s; recover took %s", took, time.Since(began).Round(100*time.Millisecond))
	expectNodes(t, e, m1, map[string]string{m1: "manager", m2: "manager", m3: "manager", w1: "worker"})
	if after := task(); after != before {
		t.Errorf("g's task on the worker was replaced (%s, then %s): it should run throughout", before, after)
	}
	if r := e.run("swarm", "plan", "-f", file); r.code != 0 {
		t.Errorf("the plan after recover: %s", r)
	}
}
