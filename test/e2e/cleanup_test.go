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
)

// TestCleanupIsTrue: what a create makes is found by `rm -f` whatever stopped it (SIGKILL at
// three moments), and so is the host of a damaged record; a removal that fails is a non-zero
// exit (a read-only store); a create under way is listed as Creating and not removed under it.
func TestCleanupIsTrue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	base := uniq("e2e-clean")
	for i, after := range []time.Duration{400 * time.Millisecond, 1200 * time.Millisecond, 2500 * time.Millisecond} {
		name := base + "-k" + string(rune('a'+i))
		cmd := exec.Command(machineBin, "create", "-d", "container", name)
		cmd.Env = append(cleanEnv(), "MACHINE_STORAGE_PATH="+e.store)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(after)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if r := e.run("rm", "-f", name); r.code != 0 && !strings.Contains(r.stderr, "does not exist") {
			t.Errorf("SIGKILL after %s, then rm -f: %s", after, r)
		}
		if left := leftovers(t, []string{name}, nil); len(left) > 0 {
			t.Errorf("SIGKILL after %s, then rm -f left %v", after, left)
		}
	}

	// A damaged record of a swarm worker: its container and volume are found by their labels,
	// its node entry by its name in the swarm of the store's manager. A worker removed as usual
	// leaves the swarm's list too.
	dmg, mgr, wk := base+"-dmg", base+"-mgr", base+"-wk"
	createHosts(t, e, base+"-net", nil, dmg, mgr, wk)
	e.must("swarm", "init", mgr)
	e.must("swarm", "join", "--manager", mgr, dmg, wk)
	if err := os.WriteFile(filepath.Join(e.store, "machines", dmg, "config.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := e.run("rm", "-f", dmg); r.code != 0 || !strings.Contains(r.stderr, "("+dmg+") its node was removed from the swarm's list through "+mgr) {
		t.Errorf("rm -f of a damaged record: %s", r)
	}
	if left := leftovers(t, []string{dmg}, nil); len(left) > 0 {
		t.Errorf("rm -f of a damaged record left %v", left)
	}
	if r := e.run("rm", "-y", wk); r.code != 0 || !strings.Contains(r.stderr, "("+wk+") its node was removed from the swarm's list through "+mgr) {
		t.Errorf("rm of a worker: %s", r)
	}
	if got := nodeTable(t, e, mgr); len(got) != 1 || !strings.HasPrefix(got[0], mgr+" ") {
		t.Errorf("the swarm's list after both were removed: %q", got)
	}

	// A store that cannot be written: rm says so and exits non-zero.
	ro := base + "-ro"
	e.must("create", "-d", "container", ro)
	dir := filepath.Join(e.store, "machines")
	if out, err := exec.Command("mount", "--bind", dir, dir).CombinedOutput(); err != nil {
		t.Fatalf("mount --bind: %v %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "remount,ro,bind", dir).CombinedOutput(); err != nil {
		_ = exec.Command("umount", dir).Run()
		t.Fatalf("remount ro: %v %s", err, out)
	}
	r := e.run("rm", "-f", ro)
	_ = exec.Command("umount", dir).Run()
	if r.code == 0 || !strings.Contains(r.stderr, "read-only file system") || strings.Contains(r.stdout, "Successfully removed") {
		t.Errorf("rm -f on a read-only store: %s", r)
	}
	e.must("rm", "-f", ro)

	// Five creates at once: listed as Creating while they run, never as dead ones; rm -f of one
	// under way is refused.
	var cmds []*exec.Cmd
	var names []string
	for i := range 5 {
		name := base + "-c" + string(rune('a'+i))
		names = append(names, name)
		cmd := exec.Command(machineBin, "create", "-d", "container", name)
		cmd.Env = append(cleanEnv(), "MACHINE_STORAGE_PATH="+e.store)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	t.Cleanup(func() { e.run(append([]string{"rm", "-f", "-y"}, names...)...) })
	creating, refused := 0, false
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
		r := e.run("ls", "--format", "{{.Name}} {{.State}} {{.Error}}")
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			switch f[1] {
			case "Creating":
				creating++
				if !refused {
					rr := e.run("rm", "-f", f[0])
					if rr.code == 0 || !strings.Contains(rr.stderr, "is being created now") {
						t.Errorf("rm -f of a create under way: %s", rr)
					}
					refused = true
				}
			case "Running":
			default:
				t.Errorf("a create under way listed as %q", line)
			}
		}
		if strings.Count(r.stdout, "Running") == 5 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("create %s: %v", names[i], err)
		}
	}
	if creating == 0 || !refused {
		t.Errorf("no create was seen under way (Creating %d times)", creating)
	}
}

// TestConcurrentSwarmUp: two `swarm up` of one file at once: one makes the swarm, the other is
// refused at once naming it; the result is one swarm that plans nothing more.
func TestConcurrentSwarmUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := uniq("e2e-twice-m1")
	file := filepath.Join(t.TempDir(), "cluster.yml")
	if err := os.WriteFile(file, []byte("name: "+uniq("e2e-twice")+"\ndriver: container\nnodes:\n  - {name: "+m+", role: manager}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.run("swarm", "down", "-f", file) })
	res := make([]result, 2)
	parallel(func() { res[0] = e.run("swarm", "up", "-f", file) }, func() { res[1] = e.run("swarm", "up", "-f", file) })
	ok, refused := 0, 0
	for _, r := range res {
		switch {
		case r.code == 0:
			ok++
		case strings.Contains(r.stderr, "is changing the cluster") && strings.Contains(r.stderr, "wait for it to finish"):
			refused++
		default:
			t.Errorf("a swarm up beside another: %s", r)
		}
	}
	if ok != 1 || refused != 1 {
		t.Fatalf("want one up and one refused, got %d and %d", ok, refused)
	}
	if r := e.run("swarm", "plan", "-f", file); r.code != 0 {
		t.Errorf("plan after: %s", r)
	}
}
