package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/machine-tools/machine/machine"
)

func load(t *testing.T, name string) (*Cluster, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "cluster", name))
	if err != nil {
		t.Fatal(err)
	}
	c, err := parse(filepath.Join("..", "..", "testdata", "cluster", name), b)
	if err != nil {
		return nil, err
	}
	return c, c.validate(machine.Drivers())
}

func TestValidClusterFiles(t *testing.T) {
	c, err := load(t, "valid-lab.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Managers()) != 1 || len(c.Workers()) != 2 || c.Images[0].Source != "local" || !c.Networks[0].Attachable {
		t.Fatalf("parsed %+v", c)
	}
	w2 := c.Nodes[2]
	co, err := c.CreateOptions(w2)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(co.DriverOptions); co.Driver != "container" || got != "map[extra-network:lab-backplane network:lab-net]" {
		t.Errorf("driver %s options %s", co.Driver, got)
	}
	g, err := load(t, "valid-generic.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Managers()) != 3 || g.Images[0].Name != "registry.example.com/app/web:1.4" || g.Images[0].Source != "" {
		t.Fatalf("parsed %+v", g)
	}
	gco, err := g.CreateOptions(g.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	if e := gco.Engine; fmt.Sprint(e.Labels, e.RegistryMirrors) != "[env=prod] [https://mirror.example.com]" {
		t.Errorf("engine options %+v", e)
	}
	if g.Nodes[4].Availability != "drain" || g.Nodes[3].Labels["disk"] != "ssd" {
		t.Errorf("node 5: %+v", g.Nodes[4])
	}
}

func TestInvalidClusterFilesNameTheLine(t *testing.T) {
	for file, wants := range map[string][]string{
		"invalid-role.yml":          {"invalid-role.yml:7:", `role "boss"`},
		"invalid-option.yml":        {"invalid-option.yml:7:", `no option "netwrk"`, "network"},
		"invalid-unknown-field.yml": {"invalid-unknown-field.yml:5:", `unknown field "rol"`},
		"invalid-no-manager.yml":    {"invalid-no-manager.yml:5:", "listed twice", "no manager"},
		"invalid-driver.yml":        {"invalid-driver.yml:6:", `unknown driver "hyperv"`},
		"invalid-option-type.yml":   {"invalid-option-type.yml:6:", "network: give a string, not a mapping", "invalid-option-type.yml:11:", "cpu-count: give a whole number, not many", "invalid-option-type.yml:14:", "share-folder is not supported"},
	} {
		_, err := load(t, file)
		if err == nil {
			t.Errorf("%s: accepted", file)
			continue
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", file, err, w)
			}
		}
	}
}

func TestQuorumWarning(t *testing.T) {
	if QuorumWarning(3) != "" || QuorumWarning(1) != "" {
		t.Error("odd manager counts need no warning")
	}
	if w := QuorumWarning(4); !strings.Contains(w, "loss of 1") || !strings.Contains(w, "majority of 3") {
		t.Errorf("4 managers: %q", w)
	}
}

// TestEveryUnknownKeyAndNumericNames: every unknown key is named with its line (the decoder
// stops at the first), and a name that YAML reads as a number (0x1F would become "31") is refused.
func TestEveryUnknownKeyAndNumericNames(t *testing.T) {
	_, err := parse("c.yml", []byte("name: t\nfoo: 1\nnodes:\n  - name: m\n    role: manager\n    baz: 3\nnetworks:\n  - {name: n, color: red}\nbar: 2\n"))
	for _, want := range []string{`c.yml:2: unknown field "foo"`, `c.yml:6: unknown field "baz" in nodes`, `c.yml:8: unknown field "color" in networks`, `c.yml:9: unknown field "bar"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in: %v", want, err)
		}
	}
	for _, name := range []string{"0x1F", "0o17", "1.50", "+12"} {
		_, err := parse("c.yml", []byte("name: t\nnodes:\n  - name: "+name+"\n    role: manager\n"))
		if err == nil || !strings.Contains(err.Error(), `write it in quotes (name: "`+name+`")`) {
			t.Errorf("name %s: %v", name, err)
		}
	}
	for _, ok := range []string{`"0x1F"`, "12", "1e3"} { // quoted; a number that reads the same; a string to YAML
		if _, err := parse("c.yml", []byte("name: t\nnodes:\n  - name: "+ok+"\n    role: manager\n")); err != nil {
			t.Errorf("name %s: %v", ok, err)
		}
	}
}

// TestEngineVersionMinKey: the cluster file's engine section takes version-min (from the engine's
// option table), checked as a version.
func TestEngineVersionMinKey(t *testing.T) {
	c, err := parse("v.yml", []byte("name: v\ndriver: container\nengine:\n  version-min: \"24.0\"\nnodes:\n  - name: v1\n    role: manager\n"))
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.CreateOptions(c.Nodes[0])
	if err != nil || o.Engine.VersionMin != "24.0" {
		t.Fatalf("%+v %v", o.Engine, err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(bad, []byte("name: v\ndriver: container\nengine:\n  version-min: \"24.x\"\nnodes:\n  - name: v1\n    role: manager\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "version-min") || !strings.Contains(err.Error(), "not a version") {
		t.Errorf("a bad minimum: %v", err)
	}
}

// TestVersion: `version: 1` is read; another version is refused with its line, not read by guess.
func TestVersion(t *testing.T) {
	body := "name: v\ndriver: container\nnodes:\n  - name: v1\n    role: manager\n  - name: v2\n"
	for _, head := range []string{"", "version: 1\n"} {
		c, err := Parse("v.yml", []byte(head+body))
		if err != nil {
			t.Fatalf("%q: %v", head, err)
		}
		if c.Nodes[1].Role != Worker || len(c.Workers()) != 1 || len(c.Managers()) != 1 {
			t.Errorf("roles read as %q, %q", c.Nodes[0].Role, c.Nodes[1].Role)
		}
	}
	_, err := Parse("v.yml", []byte("version: 2\n"+body))
	if err == nil || !strings.Contains(err.Error(), "v.yml:1: version 2: this machine reads version 1") {
		t.Errorf("version 2: %v", err)
	}
	if _, err := ParseRole("boss"); err == nil || err.Error() != `role "boss": use manager or worker` {
		t.Errorf("ParseRole: %v", err)
	}
}

func TestCertExpiry(t *testing.T) {
	base := "name: t\ndriver: container\nnodes:\n  - {name: m, role: manager}\nswarm:\n  cert-expiry: "
	for v, want := range map[string]time.Duration{"720h": 720 * time.Hour, "1h": time.Hour, "1h30m": 90 * time.Minute} {
		c, err := Parse("c.yml", []byte(base+v+"\n"))
		if err != nil || c.CertExpiry() != want {
			t.Errorf("cert-expiry %s: %v, %v", v, c, err)
		}
	}
	for _, v := range []string{"59m", "90d", "soon", "-1h", "0"} {
		_, err := Parse("c.yml", []byte(base+v+"\n"))
		if err == nil || !strings.Contains(err.Error(), "c.yml:6:") || !strings.Contains(err.Error(), "at least 1h (swarm's shortest), such as 720h") {
			t.Errorf("cert-expiry %s: %v", v, err)
		}
	}
}
