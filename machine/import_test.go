package machine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/machine-tools/machine/drivers/plugin"
)

// TestImportSSHPort: a docker-machine VirtualBox machine is reached on 22 at its host-only
// address (its SSHPort is the NAT forward on 127.0.0.1); others keep their port.
func TestImportSSHPort(t *testing.T) {
	var c dmConfig
	c.DriverName, c.Driver.IPAddress, c.Driver.SSHPort = "virtualbox", "192.168.99.100", 53211
	if p := importSSHPort(c); p != 22 {
		t.Errorf("virtualbox: %d", p)
	}
	c.DriverName, c.Driver.SSHPort = "generic", 2222
	if p := importSSHPort(c); p != 2222 {
		t.Errorf("generic: %d", p)
	}
	c.Driver.SSHPort = 0
	if p := importSSHPort(c); p != 22 {
		t.Errorf("no port: %d", p)
	}
}

// TestImportPluginMachine: a machine of a docker-machine driver plug-in that is on PATH here is
// imported as that plug-in's machine: its configuration kept, its store path and SSH key moved
// to this store; the old store is not written.
func TestImportPluginMachine(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "docker-machine-driver-hetzner"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	old := t.TempDir()
	dir := filepath.Join(old, "machines", "web1")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := `{"Name":"web1","DriverName":"hetzner","Driver":{"IPAddress":"127.0.0.1","SSHUser":"root","SSHPort":1,"SSHKeyPath":"` + dir + `/id_rsa","StorePath":"` + old + `","ServerID":4242,"AccessToken":"tok"},"HostOptions":{"EngineOptions":{"Labels":["a=b"]}}}`
	files := map[string]string{"config.json": cfg, "ca.pem": "ca", "cert.pem": "cert", "key.pem": "key", "server.pem": "srv", "server-key.pem": "srvkey", "id_rsa": "the key"}
	for f, data := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.ImportDockerMachine(t.Context(), old)
	if err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("%v %+v", err, res)
	}
	h, err := a.Load("web1")
	if err != nil {
		t.Fatal(err)
	}
	d, ok := h.Driver.(*plugin.Driver)
	if !ok || h.DriverName != "hetzner" || d.Name != "hetzner" {
		t.Fatalf("imported as %s %T", h.DriverName, h.Driver)
	}
	var conf map[string]any
	if err := json.Unmarshal(d.Config, &conf); err != nil {
		t.Fatal(err)
	}
	root, _ := filepath.Abs(a.Store.Root)
	if conf["StorePath"] != root || conf["SSHKeyPath"] != filepath.Join(root, "machines", "web1", "id_rsa") || conf["ServerID"] != float64(4242) {
		t.Errorf("the plug-in's configuration: %v", conf)
	}
	if b, err := os.ReadFile(h.SSH.KeyPath); err != nil || string(b) != "the key" || h.SSH.KeyPath != conf["SSHKeyPath"] {
		t.Errorf("the SSH key: %s %q %v", h.SSH.KeyPath, b, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "config.json")); string(b) != cfg {
		t.Error("the old store was written")
	}
}
