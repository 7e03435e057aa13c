//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	containerdrv "github.com/machine-tools/machine/drivers/container"
)

// TestHostileEngineValues: values that would write a line of their own into dockerd's systemd
// drop-in (and so run as root on the host) are refused before anything is made, from the flags
// and from a cluster file; values with $ and % reach dockerd exactly as written; a proxy's
// password is in a 0600 drop-in and never printed.
func TestHostileEngineValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	name := uniq("e2e-hostile")
	t.Cleanup(func() { e.run("rm", "-f", "-y", name) })

	for _, c := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"--engine-env", "B=x\nExecStartPre=/usr/bin/touch /tmp/pwned2\n#"}, []string{`--engine-env "B=x\nExecStartPre=/usr/bin/touch /tmp/pwned2\n#": a newline is not allowed`}},
		{[]string{"--engine-opt", "log-level=debug\rExecStartPre=/usr/bin/touch /tmp/pwned3"}, []string{"--engine-opt", "a carriage return is not allowed"}},
		{[]string{"--engine-insecure-registry", "x;y"}, []string{`--engine-insecure-registry "x;y"`, "give host:port"}},
		{[]string{"--engine-registry-mirror", "https://mirror.example.test\nExecStartPre=/usr/bin/touch /tmp/pwned4"}, []string{"--engine-registry-mirror", "a newline"}},
		{[]string{"--engine-opt", "tlsverify=false"}, []string{"tlsverify is machine's to set"}},
		{[]string{"--container-cpu-shares", "262145"}, []string{"--container-cpu-shares", "give 2 to 262144"}},
	} {
		r := e.run(append(append([]string{"create", "-d", "container"}, c.args...), name)...)
		expectOneLineError(t, r, c.wants...)
	}
	expectOneLineError(t, e.run("create", "-d", "container", name+"-"), "starts or ends with a hyphen")
	dir := t.TempDir()
	file := filepath.Join(dir, "cluster.yml")
	hostile := "name: " + name + "\ndriver: container\nengine:\n  env:\n    - \"B=x\\nExecStartPre=/usr/bin/touch /tmp/pwned2\\n#\"\nnodes:\n  - name: " + name + "\n    role: manager\n"
	if err := os.WriteFile(file, []byte(hostile), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"up", "plan"} {
		r := e.run("swarm", cmd, "-f", file)
		if r.code != 1 || !strings.Contains(r.stderr, "cluster.yml:5: ") || !strings.Contains(r.stderr, "holds a newline") {
			t.Errorf("swarm %s of a hostile file: %s", cmd, r)
		}
	}
	if out := e.must("ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("refused input left machines: %q", out)
	}
	if left := leftovers(t, []string{name}, nil); len(left) > 0 {
		t.Fatalf("refused input left %v", left)
	}

	// Values with $, %, quotes and a credential, and a label given as an --engine-opt.
	const secret = "s3cr3t-pw"
	e.must("create", "-d", "container",
		"--engine-env", "P=$HOME", "--engine-env", "Q=100%", "--engine-env", `R=a "b" \c`,
		"--engine-env", "HTTPS_PROXY=http://user:"+secret+"@proxy.invalid:3128", "--engine-env", "NO_PROXY=*",
		"--engine-opt", "label=rack=7", name)
	environ := e.must("ssh", name, `tr '\0' '\n' < /proc/$(pidof dockerd)/environ`)
	for _, want := range []string{"P=$HOME\n", "Q=100%\n", `R=a "b" \c` + "\n", "HTTPS_PROXY=http://user:" + secret + "@proxy.invalid:3128\n"} {
		if !strings.Contains(environ, want) {
			t.Errorf("dockerd's environment lacks %q:\n%s", want, environ)
		}
	}
	if out := e.must("ssh", name, "stat -c %a /etc/systemd/system/docker.service.d/10-machine.conf"); strings.TrimSpace(out) != "600" {
		t.Errorf("the drop-in holding a password is %s", out)
	}
	// systemd's own reading of the unit: no warning about the drop-in.
	if r := e.run("ssh", name, "systemd-analyze verify docker.service 2>&1; echo rc=$?"); !strings.Contains(r.stdout, "rc=0") || strings.Contains(r.stdout, "10-machine.conf") {
		t.Errorf("systemd-analyze verify: %s", r)
	}
	if out := e.docker(name, "info", "--format", "{{json .Labels}}"); !strings.Contains(out.stdout, `"rack=7"`) || !strings.Contains(out.stdout, `"provider=container"`) {
		t.Errorf("engine labels: %s", out)
	}
	for _, args := range [][]string{{"inspect", name}, {"ls"}, {"--debug", "provision", name}} {
		r := e.run(args...)
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("machine %v prints the proxy's password: %s", args, r)
		}
	}
	if r := e.run("inspect", name); !strings.Contains(r.stdout, "http://user:****@proxy.invalid:3128") {
		t.Errorf("inspect does not show the masked proxy: %s", r)
	}
	// Templates that print without end, or loop without printing: bounded, and Ctrl-C stops them.
	for _, args := range [][]string{{"ls", "--format", "{{range 100000000000}}xxxxxxxx{{end}}"}, {"inspect", "--format", "{{range 100000000000}}xxxxxxxx{{end}}", name}} {
		r := e.run(args...)
		if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "--format: it would print more than 16 MiB") {
			t.Errorf("machine %v: %s", args[:1], r)
		}
	}
	for _, args := range [][]string{{"ls", "--format", "{{range 100000000000}}{{end}}"}, {"inspect", "--format", "{{range 100000000000}}{{end}}", name}} {
		start := time.Now()
		done, stderr := e.interrupt(time.Second, args...)
		if done || !strings.Contains(stderr, "interrupted") || time.Since(start) > 10*time.Second {
			t.Errorf("machine %v after Ctrl-C: finished %v after %s: %s", args[:1], done, time.Since(start), stderr)
		}
	}
	// A plan that changes the environment shows it masked.
	other := "name: " + name + "\ndriver: container\nengine:\n  env: [\"HTTPS_PROXY=http://user:other-" + secret + "@proxy.invalid:3128\"]\nnodes:\n  - name: " + name + "\n    role: manager\n"
	if err := os.WriteFile(file, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.run("swarm", "plan", "-f", file)
	if strings.Contains(r.stdout+r.stderr, secret) || !strings.Contains(r.stdout, "env HTTPS_PROXY=http://user:****@proxy.invalid:3128 added") {
		t.Errorf("swarm plan: %s", r)
	}
}

// TestPausedHost: a host whose engine accepts connections and answers nothing (its container
// paused) is named within seconds by every command that reads the swarm, which exits non-zero;
// Ctrl-C during such a read says `interrupted:` and prints no plan.
func TestPausedHost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m, w := uniq("e2e-pause-m1"), uniq("e2e-pause-w1")
	file := filepath.Join(t.TempDir(), "cluster.yml")
	if err := os.WriteFile(file, []byte("name: "+uniq("e2e-pause")+"\ndriver: container\nnodes:\n  - {name: "+m+", role: manager}\n  - {name: "+w+"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = exec.Command("docker", "unpause", w).Run()
		e.run("swarm", "down", "-f", file)
	})
	e.must("swarm", "up", "-f", file)
	if out, err := exec.Command("docker", "pause", w).CombinedOutput(); err != nil {
		t.Fatalf("docker pause: %v %s", err, out)
	}
	for _, args := range [][]string{{"swarm", "plan", "-f", file}, {"swarm", "check", m}, {"pull", "--swarm", m, "busybox:none"}} {
		start := time.Now()
		r := e.run(args...)
		took := time.Since(start)
		if r.code == 0 || r.code == 2 || !strings.Contains(r.stdout+r.stderr, w) || took > 30*time.Second {
			t.Errorf("machine %v with %s paused, after %s: %s", args, w, took.Round(time.Second), r)
		}
		if args[1] == "plan" && (r.code != 1 || !strings.Contains(r.stderr, "could not observe "+w) || strings.TrimSpace(r.stdout) != "") {
			t.Errorf("plan with %s paused: want exit 1 naming it and no plan: %s", w, r)
		}
	}
	cmd := exec.Command(machineBin, "swarm", "plan", "-f", file)
	cmd.Env = append(cleanEnv(), "MACHINE_STORAGE_PATH="+e.store)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	_ = cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if err == nil || !strings.HasPrefix(stderr.String(), "machine: interrupted: ") || stdout.Len() > 0 {
		t.Errorf("Ctrl-C of a plan waiting for a paused host: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if out, err := exec.Command("docker", "unpause", w).CombinedOutput(); err != nil {
		t.Fatalf("docker unpause: %v %s", err, out)
	}
	if r := e.run("swarm", "plan", "-f", file); r.code != 0 {
		t.Errorf("plan after the host came back: %s", r)
	}
}

// TestRebuiltNodeEntry (and a worker stuck pending): a machine removed without leaving the swarm and made again by `swarm up`
// leaves its old node entry Down; the plan names it and `up` removes it.
func TestRebuiltNodeEntry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m, w := uniq("e2e-rebuilt-m1"), uniq("e2e-rebuilt-w1")
	file := filepath.Join(t.TempDir(), "cluster.yml")
	if err := os.WriteFile(file, []byte("name: "+uniq("e2e-rebuilt")+"\ndriver: container\nnodes:\n  - {name: "+m+", role: manager}\n  - {name: "+w+"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.run("swarm", "down", "-f", file) })
	e.must("swarm", "up", "-f", file)
	// rm takes a member's entry out of its swarm through a manager: with the manager paused it
	// cannot, says so, and the entry stays (as it does for a machine rebuilt behind machine's back).
	if out, err := exec.Command("docker", "-H", containerdrv.DefaultEngineHost, "pause", m).CombinedOutput(); err != nil {
		t.Fatalf("docker pause: %v %s", err, out)
	}
	r := e.run("rm", "-f", w)
	if out, err := exec.Command("docker", "-H", containerdrv.DefaultEngineHost, "unpause", m).CombinedOutput(); err != nil {
		t.Fatalf("docker unpause: %v %s", err, out)
	}
	if r.code != 0 || !strings.Contains(r.stderr, "("+w+") its node ") || !strings.Contains(r.stderr, "docker node rm --force") {
		t.Fatalf("rm -f of a worker whose manager does not answer: %s", r)
	}
	e.must("swarm", "up", "-f", file)
	entries := func() []string {
		r := e.docker(m, "node", "ls", "--format", "{{.Hostname}} {{.Status}}")
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if strings.HasPrefix(l, w+" ") {
				out = append(out, l)
			}
		}
		return out
	}
	// The old entry goes Down once its heartbeats are missed.
	deadline := time.Now().Add(90 * time.Second)
	for len(entries()) != 2 || !strings.Contains(strings.Join(entries(), ","), "Down") {
		if time.Now().After(deadline) {
			t.Fatalf("no old entry went Down: %v", entries())
		}
		time.Sleep(time.Second)
	}
	r = e.run("swarm", "plan", "-f", file)
	if r.code != 2 || !strings.Contains(r.stdout, w+": remove its old node entry") {
		t.Fatalf("plan with a rebuilt machine's old entry: %s", r)
	}
	e.must("swarm", "up", "-f", file)
	if got := entries(); len(got) != 1 || got[0] != w+" Ready" {
		t.Errorf("after up: %v", got)
	}
	if r := e.run("swarm", "plan", "-f", file); r.code != 0 {
		t.Errorf("plan after: %s", r)
	}

	// A join its engine gave up on (nothing answers at the manager address it was given: the
	// engine's own 20 s timeout) leaves the worker pending for good; up leaves it, joins it again.
	e.must("swarm", "leave", w)
	e.must("ssh", m, "iptables -I INPUT -p tcp --dport 2399 -j DROP") // the manager's own host: nothing answers there
	token := strings.TrimSpace(e.must("swarm", "join-token", m))
	join := e.docker(w, "swarm", "join", "--token", token, strings.TrimSpace(e.must("ip", m))+":2399")
	if st := e.docker(w, "info", "--format", "{{.Swarm.LocalNodeState}}"); strings.TrimSpace(st.stdout) != "pending" && strings.TrimSpace(st.stdout) != "error" {
		t.Fatalf("after a join to nothing (%s): %s", join, st)
	}
	r = e.run("swarm", "up", "-f", file)
	if r.code != 0 || !strings.Contains(r.stderr, "("+w+") its engine was stuck in a swarm join that did not finish (pending, or in error): it left it, and joins again") {
		t.Fatalf("up with a worker pending: %s", r)
	}
	if got := entries(); len(got) != 1 || got[0] != w+" Ready" {
		t.Errorf("after up: %v", got)
	}
}
