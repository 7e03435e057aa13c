//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/client"
)

// TestDrivenAsGitLabRunner drives machine as GitLab Runner's docker+machine executor drives
// docker-machine (its command lines and what it reads, from the list in issue 27): the global
// --bugsnag-api-token on every call, creates side by side, a machine known to exist by its
// config.json and inspect, the list by reading the machines folder (DriverName, Driver), config,
// url, inspect -f '{{.HostOptions.AuthOptions.StorePath}}' and a TLS Docker client built from
// the files there, provision, stop, update-labels' refusal in the words it looks for, rm -y, rm -f.
func TestDrivenAsGitLabRunner(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	run := func(args ...string) result {
		return e.run(append([]string{"--bugsnag-api-token=runner-token"}, args...)...)
	}
	p := uniq("e2e-runner")
	names := []string{p + "-1", p + "-2", p + "-3"}
	t.Cleanup(func() { e.run(append([]string{"rm", "-f", "-y"}, names...)...) })
	res := make([]result, len(names))
	var fns []func()
	for i, n := range names {
		fns = append(fns, func() { res[i] = run("create", "--driver", "container", "--engine-label", "runner=yes", n) })
	}
	parallel(fns...)
	for i, r := range res {
		if r.code != 0 {
			t.Fatalf("create %s: %s", names[i], r)
		}
	}
	// The list, as the Runner makes it: the folder's config.json files.
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(e.store, "machines", n, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			DriverName string
			Driver     map[string]any
		}
		if err := json.Unmarshal(b, &rec); err != nil || rec.DriverName != "container" || rec.Driver == nil {
			t.Errorf("%s's config.json as the Runner reads it: %v %+v", n, err, rec)
		}
	}
	n := names[0]
	if r := run("inspect", n); r.code != 0 {
		t.Fatalf("inspect: %s", r)
	}
	if r := run("config", n); r.code != 0 || !strings.Contains(r.stdout, "--tlsverify") {
		t.Errorf("config: %s", r)
	}
	url := strings.TrimSpace(run("url", n).stdout)
	if !strings.HasPrefix(url, "tcp://") {
		t.Fatalf("url: %q", url)
	}
	dir := strings.TrimSpace(run("inspect", n, "-f", "{{.HostOptions.AuthOptions.StorePath}}").stdout)
	for _, q := range []string{"{{.Driver.IPAddress}}", "{{.Driver.SSHPort}}", "{{.Driver.SSHUser}}", "{{.Driver.SSHKeyPath}}", "{{.HostOptions.EngineOptions.Labels}}"} {
		if r := run("inspect", "-f", q, n); r.code != 0 || strings.TrimSpace(r.stdout) == "" || strings.Contains(r.stdout, "no value") {
			t.Errorf("inspect -f %s: %s", q, r)
		}
	}
	if r := run("inspect", "-f", "{{.HostOptions.EngineOptions.Labels}}", n); !strings.Contains(r.stdout, "runner=yes") {
		t.Errorf("engine labels: %s", r)
	}
	// A Docker client from the files in that folder, as the Runner builds it.
	cli, err := client.NewClientWithOpts(client.WithHost(url), client.WithTLSClientConfig(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Info(context.Background()); err != nil {
		t.Errorf("a TLS client from %s: %v", dir, err)
	}
	if r := run("provision", n); r.code != 0 {
		t.Errorf("provision: %s", r)
	}
	expectOneLineError(t, run("update-labels", "--label", "runner=2", n), "driver does not support labels")
	if r := run("stop", names[1]); r.code != 0 {
		t.Errorf("stop: %s", r)
	}
	if r := run("rm", "-y", names[1]); r.code != 0 {
		t.Errorf("rm -y: %s", r)
	}
	if r := run("rm", "-f", names[2]); r.code != 0 {
		t.Errorf("rm -f: %s", r)
	}
	if left := leftovers(t, names[1:], nil); len(left) > 0 {
		t.Errorf("left %v", left)
	}
}

// TestUpgradeStartsAStoppedMachine: as docker-machine's upgrade, machine's starts a stopped
// machine first and then upgrades it.
func TestUpgradeStartsAStoppedMachine(t *testing.T) {
	e, name := oneContainerMachine(t, "e2e-upstop")
	e.must("stop", name)
	r := e.run("upgrade", name)
	if r.code != 0 || !strings.Contains(r.stderr+r.stdout, "starting it first") {
		t.Fatalf("upgrade of a stopped machine: %s", r)
	}
	if st := strings.TrimSpace(e.must("status", name)); st != "Running" {
		t.Errorf("status after: %q", st)
	}
}

// TestNoneDriver: docker-machine's none driver: an engine machine did not make, recorded by its
// URL (here a machine's engine of the same store, whose TLS trusts the store's CA): env and docker
// over TLS, url, ls, inspect; ssh says in one line that there is none; rm leaves the engine alone.
func TestNoneDriver(t *testing.T) {
	e, host := oneContainerMachine(t, "e2e-none-host")
	url := strings.TrimSpace(e.must("url", host))
	name := uniq("e2e-none")
	t.Cleanup(func() { e.run("rm", "-f", "-y", name) })
	if r := e.run("create", "-d", "none", "--url", url, name); r.code != 0 {
		t.Fatalf("create -d none: %s", r)
	}
	if got := strings.TrimSpace(e.must("url", name)); got != url {
		t.Errorf("url %q, want %q", got, url)
	}
	if d := e.docker(name, "info", "--format", "{{.Name}}"); d.code != 0 || strings.TrimSpace(d.stdout) != host {
		t.Errorf("docker over TLS through env: %s", d)
	}
	if ls := e.run("ls", "--format", "{{.Name}} {{.DriverName}} {{.State}}"); !strings.Contains(ls.stdout, name+" none Running") {
		t.Errorf("ls: %s", ls)
	}
	if r := e.run("inspect", "-f", "{{.Driver.URL}} {{.DriverName}}", name); strings.TrimSpace(r.stdout) != url+" none" {
		t.Errorf("inspect: %s", r)
	}
	expectOneLineError(t, e.run("ssh", name, "true"), "it has no SSH")
	if r := e.run("rm", "-y", name); r.code != 0 {
		t.Errorf("rm: %s", r)
	}
	if d := e.docker(host, "info", "--format", "{{.Name}}"); d.code != 0 {
		t.Errorf("the engine after rm of its none record: %s", d)
	}
}

// TestExportImportBetweenStores: a machine exported from one store and imported into another (as
// a next CI job on another computer would): the file is 0600 and holds no CA key; from the second
// store docker over TLS, ssh and swarm status work; an encrypted export needs its passphrase.
func TestExportImportBetweenStores(t *testing.T) {
	e, name := oneContainerMachine(t, "e2e-export")
	e.must("swarm", "init", name)
	out := filepath.Join(t.TempDir(), "machines.export")
	e.must("export", "-o", out, name)
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the export file: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(out); strings.Contains(string(b), "ca-key") {
		t.Error("the export names a CA key")
	}
	other := newEnv(t)
	if r := other.run("import", out); r.code != 0 {
		t.Fatalf("import: %s", r)
	}
	if d := other.docker(name, "info", "--format", "{{.Swarm.LocalNodeState}}"); d.code != 0 || strings.TrimSpace(d.stdout) != "active" {
		t.Errorf("docker over TLS from the second store: %s", d)
	}
	if r := other.run("ssh", name, "hostname"); strings.TrimSpace(r.stdout) != name {
		t.Errorf("ssh from the second store: %s", r)
	}
	if r := other.run("swarm", "status", name); r.code != 0 || !strings.Contains(r.stdout, name) {
		t.Errorf("swarm status from the second store: %s", r)
	}
	// Encrypted, with the passphrase on standard input.
	enc := filepath.Join(t.TempDir(), "machines.age")
	if r := e.runIn([]byte("correct horse\n"), "export", "--passphrase-stdin", "-o", enc, name); r.code != 0 {
		t.Fatalf("export --passphrase-stdin: %s", r)
	}
	third := newEnv(t)
	expectOneLineError(t, third.run("import", enc), "the export is encrypted")
	if r := third.runIn([]byte("correct horse\n"), "import", "--passphrase-stdin", enc); r.code != 0 {
		t.Errorf("import of the encrypted export: %s", r)
	}
}
