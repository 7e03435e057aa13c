package machine

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/machine-tools/machine/drivers/generic"
	"github.com/machine-tools/machine/internal/store"
)

func exportStore(t *testing.T) (*API, string) {
	t.Helper()
	a, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Store.Authority(t.Context()); err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs(filepath.Join(a.Store.Root, "machines", "web1"))
	d, _ := json.Marshal(&generic.Driver{IPAddress: "203.0.113.5", SSHUser: "root", SSHPort: 22})
	m := &store.Machine{Name: "web1", DriverName: generic.Name, State: store.StateReady, Driver: d,
		SSH: store.SSH{Host: "203.0.113.5", Port: 22, User: "root", KeyPath: filepath.Join(dir, "id_ed25519"),
			Jumps: []store.Hop{{Host: "bastion", Port: 22, User: "ops", KeyPath: filepath.Join(dir, "jump-0")}}}}
	if err := a.Store.Reserve(m); err != nil {
		t.Fatal(err)
	}
	for f, data := range map[string]string{"id_ed25519": "ssh key", "jump-0": "jump key", "ca.pem": "ca", "cert.pem": "cert", "key.pem": "key", "known_hosts": "pins"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return a, dir
}

// TestExportImport: machines exported from one store are usable in another (paths in the record
// rewritten, keys 0600); the CA key goes only when asked; a name that exists is refused unless
// renamed; an encrypted export needs its passphrase.
func TestExportImport(t *testing.T) {
	a, _ := exportStore(t)
	var plain bytes.Buffer
	if err := a.Export(&plain, []string{"web1"}, ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(bytes.NewReader(plain.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(h.Name, "ca-key") || strings.HasSuffix(h.Name, ".create.lock") {
			t.Errorf("the export holds %s", h.Name)
		}
	}

	b, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.Import(bytes.NewReader(plain.Bytes()), ImportOptions{})
	if err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("%v %+v", err, res)
	}
	h, err := b.Load("web1")
	if err != nil {
		t.Fatal(err)
	}
	newDir, _ := filepath.Abs(filepath.Join(b.Store.Root, "machines", "web1"))
	if h.SSH.KeyPath != filepath.Join(newDir, "id_ed25519") || h.SSH.Jumps[0].KeyPath != filepath.Join(newDir, "jump-0") {
		t.Errorf("paths not rewritten: %s %s", h.SSH.KeyPath, h.SSH.Jumps[0].KeyPath)
	}
	if data, err := os.ReadFile(h.SSH.KeyPath); err != nil || string(data) != "ssh key" {
		t.Errorf("the key: %q %v", data, err)
	}
	if fi, err := os.Stat(h.SSH.KeyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the key's mode: %v %v", fi.Mode(), err)
	}
	// Again: the name exists.
	res, _ = b.Import(bytes.NewReader(plain.Bytes()), ImportOptions{})
	if len(res) != 1 || res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "--rename web1=NEWNAME") {
		t.Errorf("a second import: %+v", res)
	}
	res, _ = b.Import(bytes.NewReader(plain.Bytes()), ImportOptions{Rename: map[string]string{"web1": "web2"}})
	if len(res) != 1 || res[0].Err != nil {
		t.Fatalf("renamed: %+v", res)
	}
	if h2, err := b.Load("web2"); err != nil || h2.Name != "web2" || !strings.HasSuffix(h2.SSH.KeyPath, filepath.Join("machines", "web2", "id_ed25519")) {
		t.Errorf("renamed machine: %+v %v", h2, err)
	}

	// Encrypted.
	var secret bytes.Buffer
	if err := a.Export(&secret, []string{"web1"}, ExportOptions{Passphrase: "correct horse", WithCAKey: true}); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(secret.Bytes(), []byte("ssh key")) {
		t.Fatal("the encrypted export holds the key in the clear")
	}
	c, _ := Open(t.TempDir())
	if _, err := c.Import(bytes.NewReader(secret.Bytes()), ImportOptions{}); err == nil || !strings.Contains(err.Error(), "--passphrase-stdin") {
		t.Errorf("no passphrase: %v", err)
	}
	if _, err := c.Import(bytes.NewReader(secret.Bytes()), ImportOptions{Passphrase: "wrong"}); err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Errorf("a wrong passphrase: %v", err)
	}
	if res, err := c.Import(bytes.NewReader(secret.Bytes()), ImportOptions{Passphrase: "correct horse"}); err != nil || res[0].Err != nil {
		t.Errorf("the right passphrase: %v %+v", err, res)
	}
	if _, err := c.Import(strings.NewReader("not an export"), ImportOptions{}); err == nil || !strings.Contains(err.Error(), "not a machine export") {
		t.Errorf("garbage: %v", err)
	}
}
