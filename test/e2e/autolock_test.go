//go:build e2e

package e2e

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	containerdrv "github.com/machine-tools/machine/drivers/container"
)

// TestSwarmAutolock: a file with `autolock: true` (3 managers, 2 workers) makes a swarm whose unlock key the store keeps
// (0600); a manager whose engine restarted is locked: `swarm status` says so, `plan` lists its
// unlock, `up` unlocks it and says so; `unlock-key --rotate` gives a new key, and a manager
// restarted after that is unlocked by `swarm unlock` with the new key. The key is printed only
// by `unlock-key`: never in other commands' output, in a process's argv on this computer or the
// hosts (sampled throughout), or in the hosts' engine logs. Then `rotate-ca`: afterwards every
// node's certificate is issued by the swarm's new root CA.
func TestSwarmAutolock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := uniq("e2e-al")
	m1, m2, m3, w1, w2 := p+"-m1", p+"-m2", p+"-m3", p+"-w1", p+"-w2"
	t.Cleanup(func() { e.run("rm", "-f", "-y", m1, m2, m3, w1, w2) })
	file := filepath.Join(t.TempDir(), "cluster.yml")
	content := fmt.Sprintf("name: %s\ndriver: container\ndriver-options: {network: %s-net}\nswarm: {autolock: true}\nnodes:\n  - {name: %s, role: manager}\n  - {name: %s, role: manager}\n  - {name: %s, role: manager}\n  - {name: %s}\n  - {name: %s}\n", p, p, m1, m2, m3, w1, w2)
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	// Every process's argv, on this computer and on the hosts, sampled while the commands run.
	var mu sync.Mutex
	var argvs []string
	stop := make(chan struct{})
	var sampling sync.WaitGroup
	sampling.Add(1)
	go func() {
		defer sampling.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			var seen []string
			if out, err := exec.Command("ps", "-eo", "args").Output(); err == nil {
				seen = append(seen, string(out))
			}
			for _, h := range []string{m1, m2, m3} {
				out, _ := exec.Command("docker", "-H", containerdrv.DefaultEngineHost, "exec", h, "sh", "-c", `for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' < "$f"; echo; done`).Output()
				seen = append(seen, string(out))
			}
			mu.Lock()
			argvs = append(argvs, seen...)
			mu.Unlock()
		}
	}()
	var outputs []string
	run := func(args ...string) result {
		r := e.run(args...)
		outputs = append(outputs, r.stdout+r.stderr)
		return r
	}
	if r := run("swarm", "up", "-f", file); r.code != 0 || !strings.Contains(r.stdout+r.stderr, "the unlock key is kept in the store") {
		t.Fatalf("swarm up: %s", r)
	}
	keys, _ := filepath.Glob(filepath.Join(e.store, "swarms", "*.unlock-key"))
	if len(keys) != 1 {
		t.Fatalf("kept keys: %v", keys)
	}
	if st, err := os.Stat(keys[0]); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the kept key's mode: %v %v", st, err)
	}
	key := strings.TrimSpace(e.must("swarm", "unlock-key", "-f", file))
	if !strings.HasPrefix(key, "SWMKEY-1-") {
		t.Fatalf("unlock-key printed %q", key)
	}

	restart := func(h string) {
		t.Helper()
		e.must("ssh", h, "systemctl restart docker")
		if r := e.docker(h, "info", "--format", "{{.Swarm.LocalNodeState}}"); strings.TrimSpace(r.stdout) != "locked" {
			t.Fatalf("%s after its engine restarted: %s", h, r)
		}
	}
	restart(m2)
	if r := run("swarm", "status", m2); r.code == 0 || !strings.Contains(r.stderr, "the swarm is locked on this node") || !strings.Contains(r.stderr, "machine swarm unlock "+m2) {
		t.Errorf("status of a locked manager: %s", r)
	}
	if r := run("swarm", "plan", "-f", file); r.code != 2 || !strings.Contains(r.stdout, m2+": unlock (locked") {
		t.Errorf("plan with %s locked: %s", m2, r)
	}
	if r := run("swarm", "up", "-f", file); r.code != 0 || !strings.Contains(r.stdout+r.stderr, m2+") was locked (autolock, its engine restarted): unlocked with the key the store keeps") {
		t.Fatalf("up with %s locked: %s", m2, r)
	}
	all := map[string]string{m1: "manager", m2: "manager", m3: "manager", w1: "worker", w2: "worker"}
	expectNodes(t, e, m1, all)

	// A new key; the old one no longer unlocks a manager restarted after the rotation.
	r := e.run("swarm", "unlock-key", "--rotate", "-f", file)
	newKey := strings.TrimSpace(r.stdout)
	if r.code != 0 || !strings.HasPrefix(newKey, "SWMKEY-1-") || newKey == key {
		t.Fatalf("unlock-key --rotate: %s", r)
	}
	time.Sleep(2 * time.Second) // the managers apply the rotation through raft
	restart(m3)
	if r := run("swarm", "unlock", "-f", file); r.code != 0 || !strings.Contains(r.stdout, "("+m3+") unlocked with the kept key") || !strings.Contains(r.stdout, "("+m1+") not locked") {
		t.Fatalf("unlock after the rotation: %s", r)
	}
	// `machine restart` of a manager: it comes back locked, and is unlocked.
	if r := run("restart", m2); r.code != 0 || !strings.Contains(r.stdout+r.stderr, "its swarm was locked (autolock): unlocked with the kept key") {
		t.Errorf("restart of a manager: %s", r)
	}
	if r := run("swarm", "plan", "-f", file); r.code != 0 {
		t.Errorf("plan after the unlocks: %s", r)
	}
	expectNodes(t, e, m1, all)
	close(stop)
	sampling.Wait()

	for _, k := range []string{key, newKey} {
		for _, o := range outputs {
			if strings.Contains(o, k) {
				t.Errorf("an unlock key in a command's output: %q", o)
			}
		}
		for _, a := range argvs {
			if strings.Contains(a, k) {
				t.Errorf("an unlock key in a process's argv: %q", a)
			}
		}
		for _, h := range []string{m1, m2, m3} {
			if out := e.must("ssh", h, "journalctl --no-pager -q -u docker || true"); strings.Contains(out, k) {
				t.Errorf("an unlock key in %s's engine log", h)
			}
		}
	}
	if len(argvs) == 0 {
		t.Error("no process listing was sampled")
	}

	// A new root CA: every node's certificate is issued by it afterwards.
	oldRoot := e.docker(m1, "swarm", "ca").stdout
	if r := e.run("swarm", "rotate-ca", "-f", file); r.code != 0 || !strings.Contains(r.stdout, "all 5 nodes hold a certificate it issued") || !strings.Contains(r.stderr, "5 of 5 nodes hold a certificate of the new root CA") {
		t.Fatalf("rotate-ca: %s", r)
	}
	root := parseCert(t, e.docker(m1, "swarm", "ca").stdout)
	if strings.TrimSpace(oldRoot) == "" || e.docker(m1, "swarm", "ca").stdout == oldRoot {
		t.Errorf("the root CA did not change")
	}
	for h := range all {
		cert := parseCert(t, e.must("ssh", h, "cat /var/lib/docker/swarm/certificates/swarm-node.crt"))
		if err := cert.CheckSignatureFrom(root); err != nil {
			t.Errorf("%s's certificate is not issued by the new root CA: %v", h, err)
		}
	}
}

// parseCert is the first certificate of a PEM text.
func parseCert(t *testing.T, text string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(text))
	if b == nil {
		t.Fatalf("no certificate in %q", text)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
