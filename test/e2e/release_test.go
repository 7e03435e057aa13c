//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	containerdrv "github.com/machine-tools/machine/drivers/container"
)

// TestReleasesMixedSwarm: hosts of three Debian releases (the manager on 12, workers on 11 and
// 13: docker.io 20.10 and 26.1) form one swarm from a cluster file, run a global service on an
// overlay network across them (the tasks on 13 and 11 ping each other), `swarm status` shows
// each engine's version and flags the skew, and a second `provision` changes nothing on any
// release.
func TestReleasesMixedSwarm(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := uniq("e2e-rel")
	img := "machine-e2e/" + p + ":1"
	localImage(t, img)
	m, w11, w13 := p+"-m12", p+"-w11", p+"-w13"
	t.Cleanup(func() { e.run("rm", "-f", "-y", m, w11, w13) })
	file := filepath.Join(t.TempDir(), "cluster.yml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(`name: %s
driver: container
driver-options: {network: %s-net}
nodes:
  - {name: %s, role: manager}
  - {name: %s, driver-options: {image-release: debian-11}}
  - {name: %s, driver-options: {image-release: debian-13}}
networks:
  - {name: appnet, attachable: true}
images:
  - {name: %s, source: local}
`, p, p, m, w11, w13, img)), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.run("swarm", "up", "-f", file); r.code != 0 {
		t.Fatalf("swarm up: %s", r)
	}
	for n, want := range map[string]string{m: "12", w11: "11", w13: "13"} {
		if out := strings.TrimSpace(e.must("ssh", n, ". /etc/os-release; echo $VERSION_ID")); out != want {
			t.Errorf("%s runs Debian %q, want %s", n, out, want)
		}
	}
	if r := e.docker(m, "service", "create", "-q", "--detach", "--mode", "global", "--name", "g", "--network", "appnet", "--endpoint-mode", "dnsrr", img, "sleep", "600"); r.code != 0 {
		t.Fatal(r)
	}
	waitFor(t, "a task on every release", 120*time.Second, func() (bool, string) {
		r := e.docker(m, "service", "ps", "g", "--format", "{{.Node}} {{.CurrentState}} {{.Error}}")
		return strings.Count(r.stdout, "Running") == 3, r.stdout
	})
	// The tasks on the 13 host (docker.io 26.1) and on the 11 host (20.10) ping each other over
	// the overlay network.
	task := func(n string) (id, ip string) {
		id = strings.TrimSpace(e.docker(n, "ps", "-q", "--filter", "name=g.").stdout)
		ip = strings.TrimSpace(e.docker(n, "inspect", "-f", `{{(index .NetworkSettings.Networks "appnet").IPAddress}}`, id).stdout)
		return id, ip
	}
	id11, ip11 := task(w11)
	id13, ip13 := task(w13)
	if d := e.docker(w13, "exec", id13, "ping", "-c", "2", "-W", "3", ip11); d.code != 0 || !strings.Contains(d.stdout, "2 packets received") {
		t.Errorf("the task on 13 pinging the one on 11 (%s): %s", ip11, d)
	}
	if d := e.docker(w11, "exec", id11, "ping", "-c", "2", "-W", "3", ip13); d.code != 0 || !strings.Contains(d.stdout, "2 packets received") {
		t.Errorf("the task on 11 pinging the one on 13 (%s): %s", ip13, d)
	}
	var rep struct {
		Versions []string `json:"engineVersions"`
		Skew     bool     `json:"versionSkew"`
	}
	if err := json.Unmarshal([]byte(e.must("swarm", "status", "--format", "json", m)), &rep); err != nil || !rep.Skew || len(rep.Versions) < 2 {
		t.Errorf("swarm status should flag the engine skew: %+v %v", rep, err)
	}
	if out := e.must("swarm", "status", m); !strings.Contains(out, "engine versions differ") || !strings.Contains(out, "26.1") {
		t.Errorf("swarm status table: %s", out)
	}
	for _, n := range []string{m, w11, w13} {
		if r := e.run("provision", n); r.code != 0 || !strings.Contains(r.stdout, "nothing changed") {
			t.Errorf("a second provision of %s: %s", n, r)
		}
	}
}

// TestGenericOnReleases: Debian 11 and 13 hosts become machines with the generic driver, bare
// (systemd and sshd, no Docker: the provisioner installs each release's docker.io) and with the
// release's engine already there (configured, not reinstalled); the engine answers over TLS
// with that release's version, and a second provision changes nothing.
func TestGenericOnReleases(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key, pub := sshKey(t, t.TempDir(), "id_user")
	nw := uniq("e2e-genrel-net")
	want := map[string]string{"debian-11": "20.10", "debian-13": "26.1", "debian-11+engine": "20.10", "debian-13+engine": "26.1"}
	hosts := map[string]*containerdrv.Driver{}
	var mu sync.Mutex
	var fns []func()
	for rel := range want {
		fns = append(fns, func() {
			// Bare (the engine installed from the release's packages), and with the engine there.
			variant, release := containerdrv.VariantBase, rel
			if r, ok := strings.CutSuffix(rel, "+engine"); ok {
				variant, release = containerdrv.VariantDocker, r
			}
			d := testbedHostRelease(t, variant, release, uniq("e2e-genrel-"+strings.TrimSuffix(rel, "+engine")+map[bool]string{true: "e", false: ""}[variant == containerdrv.VariantDocker]), nw, "", "", pub)
			mu.Lock()
			hosts[rel] = d
			mu.Unlock()
		})
	}
	parallel(fns...)
	if t.Failed() {
		t.FailNow()
	}
	names := map[string]string{}
	fns = nil
	for rel, d := range hosts {
		name := uniq("e2e-gen" + strings.ReplaceAll(strings.TrimPrefix(rel, "debian-"), "+engine", "e"))
		names[rel] = name
		t.Cleanup(func() { e.run("rm", "-f", "-y", name) })
		fns = append(fns, func() {
			r := e.run("create", "-d", "generic", "--generic-ip-address", d.IP, "--generic-ssh-key", key, name)
			if installs := !strings.HasSuffix(rel, "+engine"); r.code != 0 || strings.Contains(r.stderr, "installing Docker") != installs {
				t.Errorf("create on %s (installs the engine: %v): %s", rel, installs, r)
			}
		})
	}
	parallel(fns...)
	if t.Failed() {
		t.FailNow()
	}
	for rel, name := range names {
		if v := e.docker(name, "version", "--format", "{{.Server.Version}}"); v.code != 0 || !strings.HasPrefix(strings.TrimSpace(v.stdout), want[rel]) {
			t.Errorf("%s: the engine over TLS: %s (want %s.x)", rel, v, want[rel])
		}
		if r := e.run("provision", name); r.code != 0 || !strings.Contains(r.stdout, "nothing changed") {
			t.Errorf("%s: a second provision: %s", rel, r)
		}
	}
}

// TestGenericHostsAsAdminsLeftThem: hosts whose engine an admin set up by hand are made machines
// from their real state: dockerd moved to /usr/local/bin (found on PATH), or off PATH to
// /opt/moby with docker.service pointed there (found where the service runs it), neither
// reinstalled; docker.socket masked and no longer required (the engine listens on the unix
// socket, not fd://); a daemon.json with "hosts" and a TCP listener without TLS (that listener
// goes, and is named). A minimum engine version above the host's is refused before anything on
// it changes.
func TestGenericHostsAsAdminsLeftThem(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key, pub := sshKey(t, t.TempDir(), "id_user")
	nw := uniq("e2e-admin-net")
	setups := map[string]string{
		"moved": `mkdir -p /opt/moby && mv /usr/sbin/dockerd /opt/moby/dockerd &&
sed 's#^ExecStart=/usr/sbin/dockerd#ExecStart=/opt/moby/dockerd#' /lib/systemd/system/docker.service > /etc/systemd/system/docker.service`,
		"local": `mv /usr/sbin/dockerd /usr/local/bin/dockerd &&
sed 's#^ExecStart=/usr/sbin/dockerd#ExecStart=/usr/local/bin/dockerd#' /lib/systemd/system/docker.service > /etc/systemd/system/docker.service`,
		"socket": `sed '/^Requires=docker.socket/d; s#-H fd:// ##' /lib/systemd/system/docker.service > /etc/systemd/system/docker.service &&
systemctl mask docker.socket && systemctl stop docker.socket`,
		"plaintcp": `mkdir -p /etc/systemd/system/docker.service.d && printf '[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd\n' > /etc/systemd/system/docker.service.d/override.conf &&
printf '{"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"], "log-level": "warn"}\n' > /etc/docker/daemon.json`,
	}
	hosts := map[string]*containerdrv.Driver{}
	var mu sync.Mutex
	var fns []func()
	for k, script := range setups {
		fns = append(fns, func() {
			d := testbedHostOf(t, containerdrv.VariantDocker, uniq("e2e-admin-"+k), nw, "", "", pub)
			// The image's own drop-ins (its engine waits for the provisioner) go first: the host is
			// as the package and the admin left it.
			out, err := exec.Command("docker", "-H", containerdrv.DefaultEngineHost, "exec", d.ContainerName, "sh", "-c",
				"rm -rf /etc/systemd/system/docker.service.d && "+script+" && systemctl daemon-reload && systemctl restart docker.service && docker -H unix:///var/run/docker.sock version --format '{{.Server.Version}}'").CombinedOutput()
			if err != nil {
				t.Errorf("%s: the admin's set-up: %v\n%s", k, err, out)
			}
			mu.Lock()
			hosts[k] = d
			mu.Unlock()
		})
	}
	parallel(fns...)
	if t.Failed() {
		t.FailNow()
	}
	if out, err := exec.Command("docker", "-H", "tcp://"+hosts["plaintcp"].IP+":2375", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		t.Fatalf("the plain TCP listener before: %v %s", err, out)
	}
	inHost := func(k, cmd string) string {
		out, _ := exec.Command("docker", "-H", containerdrv.DefaultEngineHost, "exec", hosts[k].ContainerName, "sh", "-c", cmd).CombinedOutput()
		return string(out)
	}

	// A minimum above the host's engine (20.10): refused, nothing changed, no machine.
	before := inHost("moved", "sha256sum /etc/docker/daemon.json /etc/systemd/system/docker.service 2>&1")
	name := uniq("e2e-admin-min")
	r := e.run("create", "-d", "generic", "--generic-ip-address", hosts["moved"].IP, "--generic-ssh-key", key, "--engine-version-min", "99.0", name)
	if r.code == 0 || !strings.Contains(r.stderr, "older than the minimum 99.0") || !strings.Contains(r.stderr, "20.10") {
		t.Errorf("create with a minimum above the engine: %s", r)
	}
	if after := inHost("moved", "sha256sum /etc/docker/daemon.json /etc/systemd/system/docker.service 2>&1"); after != before || strings.Contains(e.must("ls", "-q"), name) {
		t.Errorf("a refused create changed the host or kept a record:\n%s\n%s", before, after)
	}

	names := map[string]string{}
	fns = nil
	for k, d := range hosts {
		name := uniq("e2e-adm-" + k)
		names[k] = name
		t.Cleanup(func() { e.run("rm", "-f", "-y", name) })
		fns = append(fns, func() {
			r := e.run("create", "-d", "generic", "--generic-ip-address", d.IP, "--generic-ssh-key", key, "--engine-version-min", "20.10", name)
			if r.code != 0 || strings.Contains(r.stderr, "installing Docker") {
				t.Errorf("create on the %q host: %s", k, r)
			}
			if k == "plaintcp" && !strings.Contains(r.stderr, "the engine listened on tcp://0.0.0.0:2375") {
				t.Errorf("the plain TCP listener was not named: %s", r.stderr)
			}
		})
	}
	parallel(fns...)
	if t.Failed() {
		t.FailNow()
	}
	for k, name := range names {
		if v := e.docker(name, "version", "--format", "{{.Server.Version}}"); v.code != 0 {
			t.Errorf("%s: the engine over TLS: %s", k, v)
		}
		if r := e.run("provision", name); r.code != 0 || !strings.Contains(r.stdout, "nothing changed") {
			t.Errorf("%s: a second provision: %s", k, r)
		}
	}
	for k, dir := range map[string]string{"moved": "/opt/moby", "local": "/usr/local/bin"} {
		if out := inHost(k, "systemctl show -p ExecStart --value docker.service; ls /usr/sbin/dockerd 2>&1"); !strings.Contains(out, "path="+dir+"/dockerd") || !strings.Contains(out, "No such file") {
			t.Errorf("the engine moved to %s: %s", dir, out)
		}
	}
	if out := inHost("socket", "docker -H unix:///var/run/docker.sock info --format '{{.ServerVersion}}' && cat /etc/docker/daemon.json"); !strings.Contains(out, "unix:///var/run/docker.sock") || strings.Contains(out, "fd://") {
		t.Errorf("the engine with docker.socket masked: %s", out)
	}
	if out, err := exec.Command("docker", "-H", "tcp://"+hosts["plaintcp"].IP+":2375", "version").CombinedOutput(); err == nil {
		t.Errorf("the engine still answers without TLS on 2375: %s", out)
	}
	if out := inHost("plaintcp", "cat /etc/docker/daemon.json"); !strings.Contains(out, `"log-level": "warn"`) {
		t.Errorf("the admin's other settings were lost: %s", out)
	}
}

// TestUpgradeToANewerEngine: `machine upgrade` against a real newer package: a Debian 12 host
// whose package source also offers trixie's docker.io (pinned to that one package) goes from
// 20.10 to 26.1 with its TLS configuration kept, the docker CLI then talks to the new engine,
// and a second upgrade and a provision change nothing.
func TestUpgradeToANewerEngine(t *testing.T) {
	e, name := oneContainerMachine(t, "e2e-upgr")
	e.must("ssh", name, `echo "deb http://deb.debian.org/debian trixie main" > /etc/apt/sources.list.d/trixie.list &&
printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n\nPackage: docker.io\nPin: release n=trixie\nPin-Priority: 500\n' > /etc/apt/preferences.d/docker-from-trixie &&
apt-get update -qq`)
	r := e.run("upgrade", name)
	if r.code != 0 || !strings.Contains(r.stdout, "upgraded docker.io: Docker version 20.10") || !strings.Contains(r.stdout, "-> Docker version 26.1") {
		t.Fatalf("upgrade: %s", r)
	}
	if v := e.docker(name, "version", "--format", "{{.Server.Version}}"); v.code != 0 || !strings.HasPrefix(strings.TrimSpace(v.stdout), "26.1") {
		t.Errorf("the engine over TLS after the upgrade: %s", v)
	}
	if r := e.run("upgrade", name); r.code != 0 || !strings.Contains(r.stdout, "nothing to upgrade") {
		t.Errorf("a second upgrade: %s", r)
	}
	if r := e.run("provision", name); r.code != 0 || !strings.Contains(r.stdout, "nothing changed") {
		t.Errorf("a provision after the upgrade: %s", r)
	}
}
