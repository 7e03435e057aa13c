//go:build e2e

package e2e

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
)

func treeHash(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st, _ := d.Info()
		fmt.Fprintf(h, "%s %v %d\n", p, st.Mode(), st.Size())
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// TestImportDockerMachine: a docker-machine store in its real layout (config.json from
// testdata, certificates and keys made by this test for a real host) is imported; the machine
// appears in ls, its engine answers with its existing certificates, and the old store is unchanged.
func TestImportDockerMachine(t *testing.T) {
	t.Parallel()
	old := newEnv(t)
	name := uniq("e2e-imp")
	createHosts(t, old, name+"-net", nil, name)
	ip := strings.TrimSpace(old.must("ip", name))
	src := filepath.Join(old.store, "machines", name)

	dm := filepath.Join(t.TempDir(), "docker machine")
	mdir := filepath.Join(dm, "machines", name)
	if err := os.MkdirAll(mdir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dm, "certs"), 0o700); err != nil {
		t.Fatal(err)
	}
	cp := func(from, to string, mode os.FileMode) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"ca.pem", "cert.pem", "key.pem"} {
		cp(filepath.Join(src, f), filepath.Join(mdir, f), 0o600)
		cp(filepath.Join(src, f), filepath.Join(dm, "certs", f), 0o600)
	}
	cp(filepath.Join(old.store, "certs", "ca-key.pem"), filepath.Join(dm, "certs", "ca-key.pem"), 0o600)
	cp(filepath.Join(src, "server.pem"), filepath.Join(mdir, "server.pem"), 0o600)
	cp(filepath.Join(src, "server-key.pem"), filepath.Join(mdir, "server-key.pem"), 0o600)
	cp(filepath.Join(src, "id_ed25519"), filepath.Join(mdir, "id_rsa"), 0o600)
	cp(filepath.Join(src, "id_ed25519.pub"), filepath.Join(mdir, "id_rsa.pub"), 0o644)
	tmpl := template.Must(template.ParseFiles(filepath.Join("..", "..", "testdata", "docker-machine", "config.json.tmpl")))
	f, err := os.Create(filepath.Join(mdir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tmpl.Execute(f, map[string]string{"Name": name, "IP": ip, "Store": dm}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	before := treeHash(t, dm)

	e := newEnv(t)
	r := e.run("import-docker-machine", "--from", dm)
	if r.code != 0 || !strings.Contains(r.stdout, "host key pinned") {
		t.Fatalf("import: %s", r)
	}
	ls := e.must("ls", "--format", "{{.Name}} {{.DriverName}} {{.State}} {{.DockerVersion}} {{.Error}}")
	if !strings.HasPrefix(strings.TrimSpace(ls), name+" generic Running v") {
		t.Fatalf("ls after import: %q", ls)
	}
	if d := e.docker(name, "info", "--format", "{{.Name}} {{.Labels}}"); d.code != 0 || !strings.HasPrefix(d.stdout, name) {
		t.Fatalf("docker info with the imported certificates: %s", d)
	}
	if out := e.must("ssh", name, "hostname"); strings.TrimSpace(out) != name {
		t.Errorf("ssh: %q", out)
	}
	if after := treeHash(t, dm); after != before {
		t.Fatal("the import changed docker-machine's store")
	}
	// Importing again: the name is taken, said per machine.
	if r := e.run("import-docker-machine", "--from", dm); r.code == 0 || !strings.Contains(r.stderr, "exists already") {
		t.Errorf("a second import: %s", r)
	}
	e.must("rm", "-y", name) // the record only: the generic driver leaves the host
	if st := strings.TrimSpace(old.must("status", name)); st != "Running" {
		t.Errorf("rm of the imported generic machine touched the host: %s", st)
	}
}
