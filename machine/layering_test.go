package machine

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayering: no import runs from a lower layer back up to a higher one (docs/architecture.md).
func TestLayering(t *testing.T) {
	const mod = "github.com/machine-tools/machine/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	// rank: a package may import only packages of a lower rank (or its own subpackages' plumbing).
	rank := func(p string) int {
		p = strings.TrimPrefix(p, mod)
		switch {
		case strings.HasPrefix(p, "internal/"):
			return 0
		case p == "drivers":
			return 1
		case strings.HasPrefix(p, "drivers/"), p == "provision":
			return 2
		case p == "machine", p == "images":
			return 3
		case strings.HasPrefix(p, "swarm/"): // the cluster file, the port preflight
			return 4
		case p == "swarm":
			return 5
		case strings.HasPrefix(p, "cmd/"), strings.HasPrefix(p, "test/"):
			return 6
		}
		return -1
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		from := f[0]
		for _, to := range f[1:] {
			if !strings.HasPrefix(to, mod) {
				continue
			}
			checked++
			rf, rt := rank(from), rank(to)
			if rf < 0 || rt < 0 {
				t.Errorf("%s imports %s: a package docs/architecture.md does not place", from, to)
				continue
			}
			same := rf == rt && (rf == 0 || rf == 6) // plumbing may use plumbing
			if rt >= rf && !same {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports must run downwards", from, rf, to, rt)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d imports checked: go list output is not what this test expects", checked)
	}
}
