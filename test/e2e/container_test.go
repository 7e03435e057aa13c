//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/machine-tools/machine/machine"
)

// TestContainerHosts: two container hosts made at once, each a real TLS Docker host for the
// docker CLI; they reach each other; stop/start keeps the address and the engine's data; kill
// and rm leave nothing behind.
func TestContainerHosts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	net := uniq("e2e-ct-net")
	net2 := uniq("e2e-ct-back")
	a, b := uniq("e2e-ct-a"), uniq("e2e-ct-b")
	t.Cleanup(func() { e.run("rm", "-f", "-y", a, b) })

	var ra, rb result
	parallel(
		func() { ra = e.run("create", "-d", "container", "--container-network", net, a) },
		func() {
			rb = e.run("create", "-d", "container", "--container-network", net, "--container-extra-network", net2, b)
		},
	)
	if ra.code != 0 || rb.code != 0 {
		t.Fatalf("parallel create:\n%s\n%s", ra, rb)
	}

	for _, n := range []string{a, b} {
		r := e.docker(n, "info", "--format", "{{.Name}} {{.Driver}} {{.Labels}}")
		if r.code != 0 {
			t.Fatalf("docker info on %s over TLS: %s", n, r)
		}
		if got := strings.Fields(r.stdout); len(got) < 2 || got[0] != n || got[1] != "overlay2" {
			t.Errorf("docker info on %s: %q (want its own name and overlay2)", n, r.stdout)
		}
		if !strings.Contains(r.stdout, "provider=container") {
			t.Errorf("engine labels on %s: %q", n, r.stdout)
		}
	}

	// b has two NICs; both of its addresses are in its engine's certificate.
	addrs := strings.Fields(e.must("ssh", b, "ip -o -4 addr show scope global | awk '$2 !~ /^docker/ {print $4}'"))
	if len(addrs) != 2 {
		t.Fatalf("%s should have two addresses, has %v", b, addrs)
	}
	for _, cidr := range addrs {
		ip := strings.Split(cidr, "/")[0]
		if !certCovers(t, e.store, b, ip) {
			t.Errorf("the certificate of %s does not cover %s", b, ip)
		}
	}

	ipA := strings.TrimSpace(e.must("ip", a))
	ipB := strings.TrimSpace(e.must("ip", b))
	if ipA == ipB || ipA == "" {
		t.Fatalf("addresses %q and %q", ipA, ipB)
	}
	if r := e.run("ssh", a, "ping", "-c", "1", "-W", "5", ipB); r.code != 0 {
		t.Fatalf("%s cannot reach %s at %s: %s", a, b, ipB, r)
	}
	// ssh passes the remote exit status through.
	if r := e.run("ssh", a, "exit 7"); r.code != 7 {
		t.Errorf("ssh exit status: got %d, want 7", r.code)
	}

	// ls: both Running, JSON form for scripts.
	var rows []machine.Status
	if err := json.Unmarshal([]byte(e.must("ls", "--format", "json")), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].State != "Running" || rows[1].State != "Running" || !strings.HasPrefix(rows[0].DockerVersion, "v") {
		t.Fatalf("ls: %+v", rows)
	}
	table := e.must("ls", "--filter", "name="+a, "--format", "table {{.Name}}\t{{.State}}")
	if lines := strings.Split(strings.TrimSpace(table), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[1], a) {
		t.Errorf("ls --filter --format table: %q", table)
	}
	if q := strings.Fields(e.must("ls", "-q", "--filter", "driver=container")); len(q) != 2 {
		t.Errorf("ls -q --filter driver=container: %v", q)
	}
	var insp map[string]any
	if err := json.Unmarshal([]byte(e.must("inspect", a)), &insp); err != nil {
		t.Fatal(err)
	}
	if hostInfo, _ := insp["Host"].(map[string]any); hostInfo == nil || hostInfo["Privileges"] == "" || hostInfo["Privileges"] == nil {
		t.Errorf("inspect should say which privileges the host runs with: %v", insp["Host"])
	}

	// Data survives stop/start: an image imported into the host's engine.
	tarPath := tinyTar(t)
	if r := e.docker(a, "import", tarPath, "e2e-keep:1"); r.code != 0 {
		t.Fatalf("docker import: %s", r)
	}
	if r := e.docker(a, "image", "inspect", "e2e-keep:1"); r.code != 0 {
		t.Fatalf("the imported image is missing before the stop: %s", r)
	}
	e.must("stop", a)
	if got := strings.TrimSpace(e.must("status", a)); got != "Stopped" {
		t.Fatalf("status after stop: %q", got)
	}
	e.must("start", a)
	if got := strings.TrimSpace(e.must("ip", a)); got != ipA {
		t.Fatalf("address after start: %q, want %q", got, ipA)
	}
	if r := e.docker(a, "image", "inspect", "e2e-keep:1"); r.code != 0 {
		t.Fatalf("the image did not survive stop/start: %s", r)
	}
	if r := e.run("provision", a); r.code != 0 || !strings.Contains(r.stdout, "nothing changed") {
		t.Errorf("provisioning a good host again should change nothing: %s", r)
	}

	e.must("kill", b)
	if got := strings.TrimSpace(e.must("status", b)); got != "Stopped" {
		t.Fatalf("status after kill: %q", got)
	}
	// env of a host that is down fails as docker-machine's does (its scripts test for that).
	if r := e.run("env", b); r.code != 1 || !strings.Contains(r.stderr, "Error checking TLS connection: Host is not running") {
		t.Errorf("env of a stopped host: %s", r)
	}
	e.must("rm", "-y", a, b)
	if left := leftovers(t, []string{a, b}, []string{net, net2}); len(left) > 0 {
		t.Fatalf("rm left %v", left)
	}
	if out := e.must("ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("ls after rm: %q", out)
	}
}

// TestContainerBadInput: each mistake is one clear line, a non-zero exit, and nothing made.
func TestContainerBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	net := uniq("e2e-bad-net")
	name := uniq("e2e-bad")
	t.Cleanup(func() { e.run("rm", "-f", "-y", name) })

	expectOneLineError(t, e.run("create", "-d", "container", "--container-engine-host", "unix:///nonexistent/docker.sock", name),
		"cannot reach the Docker engine", "--container-engine-host")
	expectOneLineError(t, e.run("create", "-d", "container", "--container-network", net, "--container-subnet", "172.17.42.0/24", name),
		"overlaps", "bridge")
	expectOneLineError(t, e.run("create", "-d", "container", "--container-network", net, "--container-subnet", "10.231.0.0/24", "--container-ip", "10.232.0.5", name),
		"outside", "10.231.0.0/24")
	expectOneLineError(t, e.run("create", "-d", "nosuch", name), `Driver "nosuch" not found`, "container, generic")
	// A host whose init exits at once (as systemd does when the engine host is out of inotify
	// instances): the create says so as soon as the container has exited, not after the SSH wait.
	dead := "machine-e2e/" + name + "-dead:1"
	if out, err := exec.Command("docker", "-H", "unix:///var/run/docker.sock", "import", "-c", `CMD ["sh", "-c", "echo no init in this image >&2; exit 3"]`, busyboxTar(t), dead).CombinedOutput(); err != nil {
		t.Fatalf("docker import: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "-H", "unix:///var/run/docker.sock", "rmi", dead).Run() })
	expectOneLineError(t, e.run("create", "-d", "container", "--container-network", net, "--container-image", dead, name),
		"exited while booting (", "its last output: no init in this image)", "inotify", "nothing was left behind")
	expectOneLineError(t, e.run("create", "-d", "container", "bad_name!"), "Invalid hostname specified. Allowed hostname chars are: 0-9a-zA-Z . -")
	if out := e.must("ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("bad input left machines: %q", out)
	}
	if left := leftovers(t, []string{name}, []string{net}); len(left) > 0 {
		t.Fatalf("bad input left %v", left)
	}

	e.must("create", "-d", "container", "--container-network", net, "--container-subnet", "10.231.0.0/24", "--container-ip", "10.231.0.77", name)
	if got := strings.TrimSpace(e.must("ip", name)); got != "10.231.0.77" {
		t.Fatalf("ip %q", got)
	}
	expectOneLineError(t, e.run("create", "-d", "container", "--container-network", net, name), "already exists")
	// Another store, same engine: the container name is taken.
	other := newEnv(t)
	expectOneLineError(t, other.run("create", "-d", "container", "--container-network", net, name), "already exists", "docker rm -f")
	if out := other.must("ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("the failed create left a record: %q", out)
	}
	e.must("rm", "-y", name)
	if left := leftovers(t, []string{name}, []string{net}); len(left) > 0 {
		t.Fatalf("rm left %v", left)
	}
}

// TestManyCommandsOnOneConnection: more commands at once on one SSH connection than the host's
// sshd takes sessions (OpenSSH's MaxSessions, 10) all run: they wait their turn on the client.
func TestManyCommandsOnOneConnection(t *testing.T) {
	e, name := oneContainerMachine(t, "e2e-sessions")
	h := loadHost(t, e, name)
	ctx := context.Background()
	c, err := h.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 3 * 10
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out, err := c.Run(ctx, nil, "sh", "-c", "sleep 0.3; echo $0", strconv.Itoa(i))
			if err == nil && strings.TrimSpace(string(out)) != strconv.Itoa(i) {
				err = fmt.Errorf("printed %q", out)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("%d commands at once on one connection: %v", n, err)
	}
}

// TestStaleSubnetProbeRemoved: a probe network left by a create killed between making it and
// removing it (its name and label as the driver gives them) is removed by the next create that
// makes a network, once it is a minute old; a fresh one (another create's, under way) is not.
func TestStaleSubnetProbeRemoved(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	stale := uniq("e2e-probe-net") + "-subnet-probe-1-1"
	if out, err := exec.Command("docker", "-H", "unix:///var/run/docker.sock", "network", "create", "--label", "io.machine.created=true", stale).CombinedOutput(); err != nil {
		t.Fatalf("network create: %v %s", err, out)
	}
	made := time.Now()
	t.Cleanup(func() { _ = exec.Command("docker", "-H", "unix:///var/run/docker.sock", "network", "rm", stale).Run() })
	exists := func(name string) bool {
		return exec.Command("docker", "-H", "unix:///var/run/docker.sock", "network", "inspect", name).Run() == nil
	}
	h1, h2 := uniq("e2e-probe-a"), uniq("e2e-probe-b")
	t.Cleanup(func() { e.run("rm", "-f", "-y", h1, h2) })
	e.must("create", "-d", "container", "--container-network", uniq("e2e-probe-n1"), h1)
	if !exists(stale) {
		t.Fatal("a probe network less than a minute old was removed")
	}
	time.Sleep(time.Until(made.Add(61 * time.Second)))
	e.must("create", "-d", "container", "--container-network", uniq("e2e-probe-n2"), h2)
	if exists(stale) {
		t.Error("a probe network over a minute old is still there after a create")
	}
}
