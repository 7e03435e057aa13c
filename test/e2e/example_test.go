//go:build e2e

package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestExampleModule: a separate Go module (test/example, with a replace directive) imports the
// public API and builds a 2-node swarm of container hosts with it, then removes it.
func TestExampleModule(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("go", "run", ".")
	cmd.Dir = "../example"
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run test/example: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "a swarm of 2 nodes") || !strings.Contains(string(out), "is a swarm active") {
		t.Fatalf("output:\n%s", out)
	}
}
