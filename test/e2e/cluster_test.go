//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/machine-tools/machine/swarm"
)

// localImage imports the busybox image into the local engine (the side-load source).
func localImage(t testing.TB, ref string) {
	t.Helper()
	out, err := exec.Command("docker", "-H", "unix:///var/run/docker.sock", "import", "-c", `CMD ["sh"]`, busyboxTar(t), ref).CombinedOutput()
	if err != nil {
		t.Fatalf("docker import: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "-H", "unix:///var/run/docker.sock", "rmi", ref).Run() })
}

// TestSwarmUpDown: a whole cluster from one file, side-loaded images, a global service that needs
// no pull, a re-run that changes nothing, a failed node that a fixed re-run finishes, and down.
func TestSwarmUpDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := uniq("e2e-up")
	img := "machine-e2e/" + p + ":1"
	localImage(t, img)
	m, w1, w2 := p+"-m", p+"-w1", p+"-w2"
	t.Cleanup(func() { e.run("rm", "-f", "-y", m, w1, w2) })
	file := filepath.Join(t.TempDir(), "cluster.yml")
	write := func(w2opts string) {
		content := fmt.Sprintf(`name: %s
driver: container
driver-options:
  network: %s-net
nodes:
  - name: %s
    role: manager
    labels: {zone: a}
  - name: %s
    labels: {zone: b}
  - name: %s
    driver-options: {%s}
networks:
  - {name: appnet, attachable: true}
images:
  - {name: %s, source: local}
`, p, p, m, w1, w2, w2opts, img)
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// w2 asks for an address outside its network: its create fails, the others are kept.
	write(fmt.Sprintf("extra-network: %s-back, subnet: 10.233.0.0/24, ip: 10.234.0.9", p))
	r := e.run("swarm", "up", "-f", file)
	if r.code == 0 || !strings.Contains(r.stderr, w2+": create:") || !strings.Contains(r.stderr, "run the same `machine swarm up` again") {
		t.Fatalf("a failing node should be named with its phase: %s", r)
	}
	if ls := strings.Fields(e.must("ls", "-q")); len(ls) != 2 {
		t.Fatalf("the machines that were made should be kept: %v", ls)
	}
	write(fmt.Sprintf("extra-network: %s-back", p))
	if r := e.run("swarm", "up", "-f", file); r.code != 0 {
		t.Fatalf("re-run after the fix: %s", r)
	}
	expectNodes(t, e, m, map[string]string{m: "manager", w1: "worker", w2: "worker"})
	var rep swarm.Report
	if err := json.Unmarshal([]byte(e.must("swarm", "status", "--format", "json", m)), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Managers.Total != 1 || rep.Managers.Reachable != 1 || rep.Managers.Needed != 1 || !rep.Managers.OK || rep.Leader != m || rep.Skew || len(rep.Nodes) != 3 {
		t.Errorf("status report: %+v", rep)
	}
	if exp, err := time.Parse(time.RFC3339, rep.RootCAExpiry); err != nil || time.Until(exp) < 365*24*time.Hour {
		t.Errorf("the root CA's expiry %q (%v)", rep.RootCAExpiry, err)
	}
	for _, row := range rep.Nodes {
		if exp, err := time.Parse(time.RFC3339, row.CertExpiry); err != nil || time.Until(exp) < 24*time.Hour {
			t.Errorf("%s: swarm certificate expiry %q (%v)", row.Hostname, row.CertExpiry, err)
		}
	}
	for _, row := range rep.Nodes {
		want := map[string]string{m: "a", w1: "b", w2: ""}[row.Hostname]
		if row.Labels["zone"] != want {
			t.Errorf("%s zone label %q, want %q", row.Hostname, row.Labels["zone"], want)
		}
	}
	// Again: nothing changes.
	r = e.run("swarm", "up", "-f", file)
	if r.code != 0 {
		t.Fatal(r)
	}
	for _, changed := range []string{"creating", "joined", "initialised", "loaded ", "created"} {
		if strings.Contains(r.stderr, changed) {
			t.Errorf("a second up should change nothing, but said %q:\n%s", changed, r.stderr)
		}
	}
	if !strings.Contains(r.stderr, "nothing to change") {
		t.Errorf("a second up should say there is nothing to change:\n%s", r.stderr)
	}
	// The image is on every node: a global service starts everywhere with no registry to pull from.
	if r := e.docker(m, "service", "create", "-q", "--detach", "--mode", "global", "--name", "g", "--network", "appnet", img, "sleep", "600"); r.code != 0 {
		t.Fatal(r)
	}
	waitFor(t, "a task on every node", 90*time.Second, func() (bool, string) {
		r := e.docker(m, "service", "ps", "g", "--format", "{{.Node}} {{.CurrentState}} {{.Error}}")
		return strings.Count(r.stdout, "Running") == 3, r.stdout
	})
	// pull --swarm with the same image: every node skips it.
	r = e.run("pull", "--swarm", m, "--from-local", "--json", img)
	var res []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 || len(res) != 3 {
		t.Fatalf("pull --json: %v %s", err, r)
	}
	for _, x := range res {
		if x["skipped"] != true {
			t.Errorf("pull should skip %v", x)
		}
	}
	if r := e.run("swarm", "down", "-f", file); r.code != 0 {
		t.Fatal(r)
	}
	if ls := strings.TrimSpace(e.must("ls", "-q")); ls != "" {
		t.Fatalf("down left machines: %q", ls)
	}
	if left := leftovers(t, []string{m, w1, w2}, []string{p + "-net", p + "-back"}); len(left) > 0 {
		t.Fatalf("down left %v", left)
	}
}

// TestPullSideLoad: an image streamed from the local engine to three hosts at once, read once;
// a second run skips every node.
func TestPullSideLoad(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := uniq("e2e-pull")
	img := "machine-e2e/" + p + ":1"
	localImage(t, img)
	names := []string{p + "-1", p + "-2", p + "-3"}
	createHosts(t, e, p+"-net", nil, names...)
	r := e.run("pull", "--nodes", strings.Join(names, ","), "--from-local", img)
	if r.code != 0 || strings.Count(r.stdout, " ok") != 3 || !strings.Contains(r.stderr, "once from the local engine for 3 node(s)") {
		t.Fatalf("side-load: %s", r)
	}
	ids := map[string]bool{}
	for _, n := range names {
		d := e.docker(n, "image", "inspect", "--format", "{{.ID}}", img)
		if d.code != 0 {
			t.Fatalf("%s lacks the image: %s", n, d)
		}
		ids[strings.TrimSpace(d.stdout)] = true
	}
	if len(ids) != 1 {
		t.Fatalf("nodes hold different images: %v", ids)
	}
	r = e.run("pull", "--nodes", strings.Join(names, ","), "--from-local", img)
	if r.code != 0 || strings.Count(r.stdout, "skipped") != 3 {
		t.Fatalf("second side-load: %s", r)
	}
	// From a named node instead of the local engine.
	e.docker(names[2], "rmi", img)
	r = e.run("pull", "--nodes", names[2], "--from", names[0], img)
	if r.code != 0 || !strings.Contains(r.stderr, "once from "+names[0]) || strings.Count(r.stdout, " ok") != 1 {
		t.Fatalf("side-load from a node: %s", r)
	}
	expectOneLineError(t, e.run("pull", img), "--nodes", "--swarm")
}
