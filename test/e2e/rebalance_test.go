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

// TestSwarmRebalance: 6 replicas on 3 workers; one worker drained and made active again leaves
// it empty (3-3-0); `plan` lists the service as skewed (and exits 0: up does not move tasks);
// `rebalance` spreads it 2-2-2, with never fewer than 5 of its tasks running meanwhile; a service
// that would replace all its tasks at once is refused before anything changes.
func TestSwarmRebalance(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := uniq("e2e-rb")
	img := "machine-e2e/" + p + ":1"
	localImage(t, img)
	m, w1, w2, w3 := p+"-m", p+"-w1", p+"-w2", p+"-w3"
	t.Cleanup(func() { e.run("rm", "-f", "-y", m, w1, w2, w3) })
	file := filepath.Join(t.TempDir(), "cluster.yml")
	content := fmt.Sprintf("name: %s\ndriver: container\ndriver-options: {network: %s-net}\nswarm: {routing-mesh: false}\nnodes:\n  - {name: %s, role: manager, availability: drain}\n  - {name: %s}\n  - {name: %s}\n  - {name: %s}\nimages:\n  - {name: %s, source: local}\n", p, p, m, w1, w2, w3, img)
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.run("swarm", "up", "-f", file); r.code != 0 {
		t.Fatalf("swarm up: %s", r)
	}
	if r := e.docker(m, "service", "create", "-q", "--name", "web", "--replicas", "6", "--endpoint-mode", "dnsrr", img, "sleep", "3600"); r.code != 0 {
		t.Fatalf("service create: %s", r)
	}
	spread := func() string {
		counts := map[string]int{w1: 0, w2: 0, w3: 0}
		r := e.docker(m, "service", "ps", "--filter", "desired-state=running", "--format", "{{.Node}} {{.CurrentState}}", "web")
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[1] == "Running" {
				counts[f[0]]++
			}
		}
		return fmt.Sprintf("%d-%d-%d", counts[w1], counts[w2], counts[w3])
	}
	waitFor := func(want ...string) string {
		t.Helper()
		var got string
		for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
			got = spread()
			for _, w := range want {
				if got == w {
					return got
				}
			}
		}
		t.Fatalf("tasks spread %s, want one of %v", got, want)
		return ""
	}
	waitFor("2-2-2")
	e.docker(m, "node", "update", "--availability", "drain", w3)
	waitFor("3-3-0")
	e.docker(m, "node", "update", "--availability", "active", w3)
	time.Sleep(3 * time.Second)
	if got := spread(); got != "3-3-0" {
		t.Fatalf("after w3 came back: %s (swarm moved tasks by itself?)", got)
	}
	r := e.run("swarm", "plan", "-f", file)
	if r.code != 0 || !strings.Contains(r.stdout, "service web: 6 replicas on 3 nodes as 3-3-0 (`machine swarm rebalance` spreads it)") {
		t.Fatalf("plan with web skewed: %s", r)
	}
	// All at once is more than the budget: refused, nothing redeployed.
	e.docker(m, "service", "update", "-q", "--detach", "--update-parallelism", "0", "web")
	if r := e.run("swarm", "rebalance", "-f", file); r.code == 0 || !strings.Contains(r.stderr, "service web replaces all of its tasks at once") {
		t.Errorf("rebalance of a service that replaces all at once: %s", r)
	}
	if got := spread(); got != "3-3-0" {
		t.Errorf("after the refusal: %s", got)
	}
	e.docker(m, "service", "update", "-q", "--update-parallelism", "1", "web")
	waitFor("3-3-0")

	// Sampled while the rebalance runs: running tasks never below 5.
	leastRunning := e.leastRunning(m, "web")
	r = e.run("swarm", "rebalance", "-f", file, "web")
	least := leastRunning()
	if r.code != 0 || !strings.Contains(r.stdout, "(web) redeployed: it was 3-3-0") {
		t.Fatalf("rebalance: %s", r)
	}
	if got := waitFor("2-2-2"); got != "2-2-2" {
		t.Errorf("after rebalance: %s", got)
	}
	if least < 5 {
		t.Errorf("%d of web's 6 tasks were running at one moment of the rebalance", least)
	}
	if r := e.run("swarm", "plan", "-f", file); r.code != 0 || strings.Contains(r.stdout, "service web") {
		t.Errorf("plan after rebalance: %s", r)
	}
}
