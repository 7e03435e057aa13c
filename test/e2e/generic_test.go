//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/machine-tools/machine/internal/certs"
)

// TestGenericOnBareHost: a host with sshd and no Docker becomes a TLS Docker host through the
// generic driver (Docker from Debian's packages); a client without the store's certificate is
// refused; a changed host key is refused until re-trusted; rm leaves nothing.
func TestGenericOnBareHost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keys := t.TempDir()
	key, pub := sshKey(t, keys, "id_user")
	net := uniq("e2e-gen-net")
	tb := uniq("e2e-gen-host")
	tbd := testbedHost(t, tb, net, "", "", pub)
	ip := tbd.IP
	name := uniq("e2e-gen")
	t.Cleanup(func() { e.run("rm", "-f", "-y", name) })

	r := e.run("create", "-d", "generic", "--generic-ip-address", ip, "--generic-ssh-key", key,
		"--engine-label", "team=e2e", "--tls-san", "gen.example.test", name)
	if r.code != 0 {
		t.Fatalf("create: %s", r)
	}
	if !strings.Contains(r.stderr, "installing Docker") {
		t.Errorf("the bare host should have had Docker installed: %s", r.stderr)
	}
	d := e.docker(name, "info", "--format", "{{.Name}}|{{.Labels}}")
	if d.code != 0 || !strings.HasPrefix(d.stdout, tb+"|") || !strings.Contains(d.stdout, "team=e2e") || !strings.Contains(d.stdout, "provider=generic") {
		t.Fatalf("docker info through machine env: %s", d)
	}
	if r := e.run("provision", name); r.code != 0 || !strings.Contains(r.stdout, "nothing changed") {
		t.Errorf("provisioning again should change nothing: %s", r)
	}
	// Engine files on the host: the server key is 0600.
	if out := e.must("ssh", name, "stat", "-c", "%a", "/etc/docker/server-key.pem"); strings.TrimSpace(out) != "600" {
		t.Errorf("server key mode on the host: %q", out)
	}
	// The CA key never left the client.
	if r := e.run("ssh", name, "grep -rl 'EC PRIVATE KEY' /etc/docker | wc -l"); strings.TrimSpace(r.stdout) != "1" {
		t.Errorf("the host should hold exactly one private key (its own server key): %s", r)
	}
	u := e.must("url", name)
	if strings.TrimSpace(u) != "tcp://"+ip+":2376" {
		t.Errorf("url %q", u)
	}
	cfg := e.must("config", name)
	if !strings.Contains(cfg, "--tlsverify") || !strings.Contains(cfg, "-H=tcp://"+ip+":2376") {
		t.Errorf("config: %q", cfg)
	}

	// restart on a generic machine: a reboot over SSH, then SSH and the engine answer again.
	if out := e.must("restart", name); !strings.Contains(out, "restarted") {
		t.Errorf("restart: %q", out)
	}
	if d := e.docker(name, "info", "--format", "{{.Name}}"); d.code != 0 {
		t.Fatalf("docker after the reboot: %s", d)
	}

	// A client with a certificate from another CA is refused.
	other := filepath.Join(t.TempDir(), "other")
	if _, err := certs.LoadOrCreateAuthority(other, "intruder", time.Now()); err != nil {
		t.Fatal(err)
	}
	refused := runDocker(t, []string{"DOCKER_HOST=tcp://" + ip + ":2376", "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + other}, "info")
	if refused.code == 0 {
		t.Fatalf("a client with a foreign certificate got in: %s", refused)
	}
	// And one with no client certificate at all (server verified with the right CA).
	noCert := t.TempDir()
	b, _ := os.ReadFile(filepath.Join(e.store, "certs", "ca.pem"))
	_ = os.WriteFile(filepath.Join(noCert, "ca.pem"), b, 0o644)
	if r := runDocker(t, []string{"DOCKER_HOST=tcp://" + ip + ":2376", "DOCKER_TLS=1", "DOCKER_CERT_PATH=" + noCert}, "info"); r.code == 0 {
		t.Fatalf("a client without a certificate got in: %s", r)
	}

	// The host is rebuilt at the same address: new host key, refused until re-trusted.
	subnet := subnetOf(t, net)
	if err := tbd.Remove(context.Background()); err != nil {
		t.Fatal(err)
	}
	testbedHost(t, tb, net, subnet, ip, pub)
	r = e.run("ssh", name, "true")
	expectOneLineError(t, r, "host key", name, "changed", "machine trust-host-key "+name)
	out := e.must("trust-host-key", name)
	if !strings.Contains(out, "SHA256:") {
		t.Errorf("trust-host-key should print the new fingerprint: %q", out)
	}
	if r := e.run("ssh", name, "true"); r.code != 0 {
		t.Fatalf("ssh after trust-host-key: %s", r)
	}

	e.must("rm", "-y", name)
	if _, err := os.Stat(filepath.Join(e.store, "machines", name)); !os.IsNotExist(err) {
		t.Fatalf("rm left the machine's folder: %v", err)
	}
}

// TestGenericBadInput: wrong key, user without sudo, unreachable address: one line each, with
// the cause and the fix, a non-zero exit, and no machine left.
func TestGenericBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keys := t.TempDir()
	key, pub := sshKey(t, keys, "id_good")
	wrong, _ := sshKey(t, keys, "id_wrong")
	tb := uniq("e2e-genbad-host")
	tbd := testbedHost(t, tb, uniq("e2e-genbad-net"), "", "", pub)
	execIn(t, tb, "sh", "-c", "useradd -m -s /bin/sh plain && mkdir -p ~plain/.ssh && cp /root/.ssh/authorized_keys ~plain/.ssh/ && chown -R plain: ~plain/.ssh")

	expectOneLineError(t, e.run("create", "-d", "generic", "--generic-ip-address", tbd.IP, "--generic-ssh-key", wrong, "x1"),
		"refused the key", "authorized_keys")
	expectOneLineError(t, e.run("create", "-d", "generic", "--generic-ip-address", tbd.IP, "--generic-ssh-key", key, "--generic-ssh-user", "plain", "x2"),
		"cannot use sudo", "NOPASSWD")
	expectOneLineError(t, e.run("create", "-d", "generic", "--generic-ip-address", "127.0.0.1", "--generic-ssh-port", "1", "--generic-ssh-key", key, "--ssh-wait", "3s", "x3"),
		"did not answer", "127.0.0.1:1")
	expectOneLineError(t, e.run("create", "-d", "generic", "--generic-ssh-key", key, "x4"), "--generic-ip-address")
	expectOneLineError(t, e.run("create", "-d", "generic", "--generic-ip-address", tbd.IP, "--generic-ssh-key", filepath.Join(keys, "missing"), "x5"), "cannot be read")
	if out := e.must("ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("bad input left machines: %q", out)
	}
	expectOneLineError(t, e.run("ssh", "nosuch", "true"), `Docker machine "nosuch" does not exist`)
	expectOneLineError(t, e.run("rm", "-y", "nosuch"), `Error removing host "nosuch": Docker machine "nosuch" does not exist`)
}

// TestGenericSudoUser: a user other than root, with passwordless sudo, is enough: Docker is
// installed and configured through sudo, files placed through sudo's standard input.
func TestGenericSudoUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keys := t.TempDir()
	key, pub := sshKey(t, keys, "id_deploy")
	tb := uniq("e2e-sudo-host")
	tbd := testbedHost(t, tb, uniq("e2e-sudo-net"), "", "", pub)
	execIn(t, tb, "sh", "-c", "useradd -m -s /bin/sh deploy && mkdir -p ~deploy/.ssh && cp /root/.ssh/authorized_keys ~deploy/.ssh/ && chown -R deploy: ~deploy/.ssh && echo 'deploy ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/deploy")
	name := uniq("e2e-sudo")
	t.Cleanup(func() { e.run("rm", "-f", "-y", name) })
	if r := e.run("create", "-d", "generic", "--generic-ip-address", tbd.IP, "--generic-ssh-user", "deploy", "--generic-ssh-key", key, name); r.code != 0 {
		t.Fatalf("create as deploy: %s", r)
	}
	if d := e.docker(name, "info", "--format", "{{.Name}}"); d.code != 0 || strings.TrimSpace(d.stdout) != tb {
		t.Fatalf("docker info: %s", d)
	}
	if out := e.must("ssh", name, "id -un; sudo -n stat -c %a /etc/docker/server-key.pem"); !strings.Contains(out, "deploy") || !strings.Contains(out, "600") {
		t.Errorf("ssh as deploy / key mode: %q", out)
	}
	if r := e.run("provision", name); r.code != 0 || !strings.Contains(r.stdout, "nothing changed") {
		t.Errorf("provision again through sudo: %s", r)
	}
}
