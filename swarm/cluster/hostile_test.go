package cluster

import (
	"runtime"
	"strings"
	"testing"

	"github.com/machine-tools/machine/machine"
)

// TestClusterFileValuesAreOneLine: a newline or any control character in any value of a cluster
// file (the engine's env and options, labels, names, images) is refused with its line, before a
// host is made: through a systemd unit, a newline would start a directive of its own.
func TestClusterFileValuesAreOneLine(t *testing.T) {
	head := "name: c\ndriver: container\n"
	node := "nodes:\n  - name: m1\n    role: manager\n"
	for in, want := range map[string]string{
		head + "engine:\n  env: [\"B=x\\nExecStartPre=/usr/bin/touch /tmp/pwned2\\n#\"]\n" + node: "f.yml:4: \"B=x\\nExecStartPre=/usr/bin/touch /tmp/pwned2\\n#\" holds a newline",
		head + "engine:\n  opt: [\"log-level=debug\\rExecStartPre=/bin/true\"]\n" + node:          "holds a carriage return",
		head + "engine:\n  env:\n    - |\n      A=1\n      ExecStartPre=/bin/true\n" + node:       "f.yml:5:",
		head + node + "    labels: {zone: \"a\\u001b[2Jb\"}\n":                                    "holds an escape character",
		head + node + "images: [\"busybox\\u202e\"]\n":                                            "holds the control character U+202E",
		head + "engine:\n  registry-mirror: [\"https://m.example\\n\"]\n" + node:                  "holds a newline",
	} {
		_, err := parse("f.yml", []byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q:\n got %v\nwant %q", in, err, want)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\r\x1b\u202e") {
			t.Errorf("the error prints a raw control character: %q", err)
		}
	}
}

// TestClusterEngineValuesChecked: values that are one line but could not reach the host as
// given are refused by Validate with the option's name and the rule.
func TestClusterEngineValuesChecked(t *testing.T) {
	for engine, want := range map[string]string{
		"env: [\"1BAD=x\"]":                                         "engine.env \"1BAD=x\": give NAME=value",
		"opt: [\"tlsverify=false\"]":                                "tlsverify is machine's to set",
		"opt: [\"host=tcp://0.0.0.0:2375\"]":                        "use --engine-port",
		"insecure-registry: [\"x;y\"]":                              "give host:port",
		"registry-mirror: [\"https://m/path\"]":                     "without a path",
		"label: [\"provider=other\"]":                               "provider is the label machine sets",
		"label: [\"a=1\", \"a=2\"]":                                 "given twice with different values",
		"install-url: \"--config=/etc/shadow\"":                     "give an http:// or https:// URL",
		"opt: [\"storage-driver=vfs\"]\n  storage-driver: overlay2": "give it once",
	} {
		in := "name: c\ndriver: container\nengine:\n  " + engine + "\nnodes: [{name: m1, role: manager}]\n"
		c, err := parse("f.yml", []byte(in))
		if err == nil {
			err = c.validate(machine.Drivers())
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s:\n got %v\nwant %q", engine, err, want)
		}
	}
	ok := "name: c\ndriver: container\nengine:\n  env: [\"P=$HOME\", \"Q=100%\", \"HTTPS_PROXY=http://u:p@proxy:3128\"]\n  opt: [\"label=a=b\", \"log-level=debug\"]\n  insecure-registry: [\"10.0.0.0/8\", \"reg.local:5000\", \"[fd00::1]:5000\"]\nnodes: [{name: m1, role: manager}]\n"
	c, err := parse("f.yml", []byte(ok))
	if err == nil {
		err = c.validate(machine.Drivers())
	}
	if err != nil {
		t.Fatalf("a plain file is refused: %v", err)
	}
}

// TestDeepNestingRefusedCheaply: nesting beyond MaxDepth is refused before the YAML parser runs
// (whose memory grows with the square of the depth), with the line; the depth a file needs is not.
func TestDeepNestingRefusedCheaply(t *testing.T) {
	for name, in := range map[string]string{
		"flow":      "name: x\nnodes: " + strings.Repeat("[", 100000) + "\n",
		"mappings":  "name: x\nnodes: " + strings.Repeat("{a: ", 100000) + "\n",
		"dashes":    "name: x\nnodes:\n" + strings.Repeat("- ", 100000) + "a\n",
		"multiline": "name: x\nnodes:\n" + strings.Repeat("  [\n", 100) + "\n",
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := parse("f.yml", []byte(in))
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), "nest more than 16 levels") {
			t.Errorf("%s: %v", name, err)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
			t.Errorf("%s: refusing it allocated %d MiB", name, alloc>>20)
		}
	}
	// Brackets inside quoted values and comments do not count.
	in := "name: x # [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\ndriver: container\nnodes: [{name: m1, role: manager, labels: {a: \"" + strings.Repeat("[", 70) + "\", b: '" + strings.Repeat("{", 70) + "'}}]\n"
	if _, err := parse("f.yml", []byte(in)); err != nil && strings.Contains(err.Error(), "nest") {
		t.Errorf("quoted brackets counted: %v", err)
	}
	if l := nestingDepth([]byte("a:\n  - - - [[x]]\n"), 4); l != 2 {
		t.Errorf("depth 5 over 4 found at line %d, want 2", l)
	}
	if l := nestingDepth([]byte("a:\n  - - - [[x]]\n"), 5); l != 0 {
		t.Errorf("depth 5 refused at 5 (line %d)", l)
	}
}
