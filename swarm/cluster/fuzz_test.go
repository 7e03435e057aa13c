package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/machine-tools/machine/machine"
)

// TestBadYAMLIsAnError: inputs that crashed or exhausted the YAML decoder are one clear error.
func TestBadYAMLIsAnError(t *testing.T) {
	bomb := "name: x\ndriver: container\nengine:\n  label:\n    a: &a [x, x, x, x, x, x, x, x]\n    b: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n    c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nnodes: [{name: m, role: manager}]\n"
	for in, want := range map[string]string{
		"nodes:\n  ! x\n":          "check its syntax",
		"networks: !x\n":           "check its syntax",
		"images:\n  ! 0\n":         "check its syntax",
		bomb:                       "nested YAML aliases are not allowed",
		"":                         "the cluster file is empty",
		strings.Repeat("#", 2<<20): "more than a cluster file's",
	} {
		_, err := parse("f.yml", []byte(in))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "f.yml") {
			t.Errorf("%.30q: %v (want %q, and the file's name)", in, err, want)
		}
	}
}

// FuzzParse: no input crashes the parser or the validation; make fuzz runs it for a
// fixed time with the corpus of testdata/cluster and testdata/fuzz.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "cluster", "*.yml"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{"nodes:\n  ! x\n", "networks: !x\n", "images:\n  ! 0\n", "a: &a [*a]\n", "name: x\nnodes: [{name: 0x1F}]\n",
		"name: x\nnodes: " + strings.Repeat("[", 20) + "\n", "nodes:\n" + strings.Repeat("- ", 20) + "x\n", "name: \"a\\nb\"\n", "name: x # [[[[\n"} {
		f.Add([]byte(s))
	}
	reg := machine.Drivers()
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parse("f.yml", b)
		if err != nil {
			return
		}
		_ = c.validate(reg)
		for _, n := range c.Nodes {
			_, _ = c.CreateOptions(n)
		}
	})
}
