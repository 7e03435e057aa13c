package swarm

import (
	"path/filepath"
	"strings"
	"testing"
)

var testDrivers = []string{"container", "generic"}

func testFlags(d string) []string {
	return map[string][]string{
		"container": {"engine-host", "network", "subnet", "ip", "extra-network", "image", "image-variant"},
		"generic":   {"ip-address", "ssh-user", "ssh-key", "ssh-port", "engine-port"},
	}[d]
}

var testEngine = []string{"install-url", "opt", "insecure-registry", "registry-mirror", "label", "storage-driver", "env"}

func load(t *testing.T, name string) (*Cluster, error) {
	t.Helper()
	c, err := LoadCluster(filepath.Join("..", "testdata", "cluster", name))
	if err != nil {
		return nil, err
	}
	return c, c.Validate(testDrivers, testFlags, testEngine)
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
	got := strings.Join(append(c.DriverOptions.Flags("container"), w2.DriverOptions.Flags("container")...), " ")
	if got != "--container-network=lab-net --container-extra-network=lab-backplane" {
		t.Errorf("flags %q", got)
	}
	g, err := load(t, "valid-generic.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Managers()) != 3 || g.Images[0].Name != "registry.example.com/app/web:1.4" || g.Images[0].Source != "" {
		t.Fatalf("parsed %+v", g)
	}
	if f := strings.Join(g.Engine.Flags("engine"), " "); f != "--engine-label=env=prod --engine-registry-mirror=https://mirror.example.com" {
		t.Errorf("engine flags %q", f)
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
