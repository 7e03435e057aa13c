package cidata

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"golang.org/x/crypto/ssh"

	"github.com/machine-tools/machine/internal/cidata/cidatatest"
)

// TestISOReadBack: the ISO holds the user-data with the key, read back by a real tool.
func TestISOReadBack(t *testing.T) {
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyForTheTest machine-vm1"
	iso, err := Seed("vm1", "debian", key, "vm1-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cidata.iso")
	if err := os.WriteFile(p, iso, 0o644); err != nil {
		t.Fatal(err)
	}
	cidatatest.Check(t, p, key)
}

// TestHostKeyInUserData: a host key made beforehand is cloud-init's only one (ssh_keys, old
// ones deleted, none generated), its private half intact through YAML, and a real key pair.
func TestHostKeyInUserData(t *testing.T) {
	hk, err := NewHostKey("root@vm1")
	if err != nil {
		t.Fatal(err)
	}
	var ud struct {
		DeleteKeys bool              `yaml:"ssh_deletekeys"`
		GenTypes   []string          `yaml:"ssh_genkeytypes"`
		Keys       map[string]string `yaml:"ssh_keys"`
	}
	if err := yaml.Unmarshal([]byte(UserData("vm1", "debian", "ssh-ed25519 AAAA k", hk)), &ud); err != nil {
		t.Fatal(err)
	}
	if !ud.DeleteKeys || ud.GenTypes == nil || len(ud.GenTypes) != 0 {
		t.Errorf("the made key must be the only one: %+v", ud)
	}
	priv, err := ssh.ParsePrivateKey([]byte(ud.Keys["ed25519_private"]))
	if err != nil {
		t.Fatalf("the private key through YAML: %v\n%s", err, ud.Keys["ed25519_private"])
	}
	if got := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(priv.PublicKey()))); got != hk.Public || ud.Keys["ed25519_public"] != hk.Public {
		t.Errorf("public %q / %q, want %q", got, ud.Keys["ed25519_public"], hk.Public)
	}
	if strings.Contains(UserData("vm1", "debian", "k", nil), "ssh_keys") {
		t.Error("without a host key, cloud-init makes its own")
	}
}
