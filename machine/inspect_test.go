package machine

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/machine-tools/machine/drivers/generic"
	"github.com/machine-tools/machine/internal/format"
	"github.com/machine-tools/machine/internal/store"
)

// TestInspectHasDockerMachineFields: inspect has the fields of docker-machine 0.16's host JSON
// that programs read, at their paths (GitLab Runner: HostOptions.AuthOptions.StorePath), and
// docker-machine's template functions work on them; secrets stay masked.
func TestInspectHasDockerMachineFields(t *testing.T) {
	root := t.TempDir()
	a, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	m := &store.Machine{Name: "web1", DriverName: generic.Name, State: store.StateReady, TLSSANs: []string{"web1.example"},
		SSH:    store.SSH{Host: "203.0.113.5", Port: 2222, User: "ops", KeyPath: filepath.Join(root, "machines", "web1", "id_ed25519")},
		Engine: store.EngineOptions{Port: 2376, Labels: []string{"zone=a"}, Env: []string{"HTTPS_PROXY=http://u:pw@proxy:3128"}, Opts: []string{"log-level=debug"}}}
	d, _ := json.Marshal(&generic.Driver{IPAddress: "203.0.113.5", SSHUser: "ops", SSHPort: 2222})
	m.Driver = d
	if err := a.Store.Reserve(m); err != nil {
		t.Fatal(err)
	}
	h, err := a.Load("web1")
	if err != nil {
		t.Fatal(err)
	}
	rec := h.Inspect(t.Context())
	dir := filepath.Join(root, "machines", "web1")
	for tmpl, want := range map[string]string{
		"{{.HostOptions.AuthOptions.StorePath}}":                        dir,
		"{{.HostOptions.AuthOptions.CaCertPath}}":                       filepath.Join(root, "certs", "ca.pem"),
		"{{.HostOptions.AuthOptions.ServerCertPath}}":                   filepath.Join(dir, "server.pem"),
		"{{.HostOptions.AuthOptions.ServerCertSANs}}":                   "[web1.example]",
		"{{.Driver.IPAddress}} {{.Driver.SSHPort}} {{.Driver.SSHUser}}": "203.0.113.5 2222 ops",
		"{{.Driver.SSHKeyPath}}":                                        filepath.Join(dir, "id_ed25519"),
		"{{.Driver.MachineName}} {{.Driver.StorePath}}":                 "web1 " + root,
		"{{.HostOptions.Driver}} {{.DriverName}} {{.ConfigVersion}}":    "generic generic 3",
		"{{.HostOptions.EngineOptions.Labels}}":                         "[zone=a]",
		"{{.HostOptions.EngineOptions.ArbitraryFlags}}":                 "[log-level=debug]",
		"{{.HostOptions.EngineOptions.TLSVerify}}":                      "true",
		"{{json .HostOptions.EngineOptions.Env}}":                       `["HTTPS_PROXY=http://u:****@proxy:3128"]`,
	} {
		var b bytes.Buffer
		if err := format.Template(t.Context(), &b, tmpl, rec); err != nil {
			t.Errorf("%s: %v", tmpl, err)
			continue
		}
		if got := b.String(); got != want+"\n" {
			t.Errorf("%s = %q, want %q", tmpl, got, want)
		}
	}
}

// TestRecordHasHostOptions: config.json has docker-machine's ConfigVersion and HostOptions (for
// programs that read the file), written at every save; a record without them still loads.
func TestRecordHasHostOptions(t *testing.T) {
	a, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d, _ := json.Marshal(&generic.Driver{IPAddress: "203.0.113.5", SSHUser: "root", SSHPort: 22})
	m := &store.Machine{Name: "old", DriverName: generic.Name, State: store.StateReady, Driver: d, SSH: store.SSH{Host: "203.0.113.5", Port: 22, User: "root"}}
	if err := a.Store.Reserve(m); err != nil { // as an older version wrote it: no HostOptions
		t.Fatal(err)
	}
	h, err := a.Load("old")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Save(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(a.Store.Root, "machines", "old", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		ConfigVersion int
		HostOptions   struct {
			Driver      string
			AuthOptions struct{ StorePath string }
		}
		Driver generic.Driver
	}
	if err := json.Unmarshal(b, &rec); err != nil || rec.ConfigVersion != 3 || rec.HostOptions.Driver != "generic" ||
		!strings.HasSuffix(rec.HostOptions.AuthOptions.StorePath, filepath.Join("machines", "old")) || rec.Driver.IPAddress != "203.0.113.5" {
		t.Errorf("config.json: %v %s", err, b)
	}
}

// TestInspectEveryDriver: a machine of every built-in driver has docker-machine's Driver fields
// in inspect, at their paths, from its record (a none machine has no SSH: its SSH fields are
// empty, as docker-machine's none driver had them).
func TestInspectEveryDriver(t *testing.T) {
	root := t.TempDir()
	a, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, reg := range a.Drivers {
		name := "m-" + reg.Name
		m := &store.Machine{Name: name, DriverName: reg.Name, State: store.StateReady, Driver: json.RawMessage(`{}`),
			SSH: store.SSH{Host: "192.0.2.7", Port: 22, User: "docker", KeyPath: filepath.Join(root, "machines", name, "id_ed25519")}, Engine: store.EngineOptions{Port: 2376}}
		if reg.Name == "none" {
			m.SSH = store.SSH{}
			m.Address = "192.0.2.7"
		}
		if err := a.Store.Reserve(m); err != nil {
			t.Fatal(err)
		}
		h, err := a.Load(name)
		if err != nil {
			t.Fatalf("%s: %v", reg.Name, err)
		}
		want := "192.0.2.7 " + name + " 22 " + filepath.Join(root, "machines", name, "id_ed25519") + " " + root + " " + reg.Name
		if reg.Name == "none" {
			want = "192.0.2.7 " + name + " 0  " + root + " none"
		}
		rec := h.Inspect(t.Context())
		if u, ok := rec["Driver"].(map[string]any)["SSHUser"]; !ok || (u == "" && reg.Name != "none") {
			t.Errorf("%s: Driver.SSHUser %q", reg.Name, u)
		}
		var b bytes.Buffer
		if err := format.Template(t.Context(), &b, "{{.Driver.IPAddress}} {{.Driver.MachineName}} {{.Driver.SSHPort}} {{.Driver.SSHKeyPath}} {{.Driver.StorePath}} {{.HostOptions.Driver}}", rec); err != nil {
			t.Errorf("%s: %v", reg.Name, err)
			continue
		}
		if got := strings.TrimSuffix(b.String(), "\n"); got != want {
			t.Errorf("%s:\n got %q\nwant %q", reg.Name, got, want)
		}
	}
	if len(a.Drivers) < 5 {
		t.Errorf("%d built-in drivers", len(a.Drivers))
	}
}
