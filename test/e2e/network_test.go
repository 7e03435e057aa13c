//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	containerdrv "github.com/machine-tools/machine/drivers/container"
)

// bastionNet makes a Docker network that only the bastion reaches: made --internal, and this
// computer's own traffic to it rejected (an internal network is still reachable from the
// engine's host otherwise). It returns the network's name and subnet.
func bastionNet(t *testing.T, prefix string, third int) (string, string) {
	t.Helper()
	name := uniq(prefix)
	subnet := fmt.Sprintf("10.%d.%d.0/24", 200+third, os.Getpid()%250)
	if out, err := exec.Command("docker", "network", "create", "--internal", "--subnet", subnet, name).CombinedOutput(); err != nil {
		t.Fatalf("docker network create: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "network", "rm", name).Run() })
	return name, subnet
}

// rejectFromHere makes this computer's own connections to subnet fail at once.
func rejectFromHere(t *testing.T, subnet string) {
	t.Helper()
	rule := []string{"OUTPUT", "-d", subnet, "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"}
	if out, err := exec.Command("iptables", append([]string{"-I"}, rule...)...).CombinedOutput(); err != nil {
		t.Fatalf("iptables: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("iptables", append([]string{"-D"}, rule...)...).Run() })
}

// TestBastion: hosts on a network that only a bastion reaches are made machines through it (a
// flag, an ssh_config alias with Include, a chain of two), and every use goes through the
// chain: provision, ssh, scp machine to machine, ls, the engine API, swarm init/join, the docker
// CLI through `machine tunnel`, OpenSSH through `machine ssh-config`; a changed bastion key is
// refused, naming the bastion.
func TestBastion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keys := t.TempDir()
	key, pub := sshKey(t, keys, "id_user")
	inner, subnet := bastionNet(t, "e2e-bas-in", 0)
	var bastion, t1, t2, t3 *containerdrv.Driver
	parallel(
		func() { bastion = testbedHost(t, uniq("e2e-bas-b"), uniq("e2e-bas-out"), "", "", pub) },
		func() { t1 = testbedHostOf(t, containerdrv.VariantDocker, uniq("e2e-bas-t1"), inner, subnet, "", pub) },
		func() { t2 = testbedHostOf(t, containerdrv.VariantDocker, uniq("e2e-bas-t2"), inner, subnet, "", pub) },
		func() { t3 = testbedHostOf(t, containerdrv.VariantDocker, uniq("e2e-bas-t3"), inner, subnet, "", pub) },
	)
	if t.Failed() {
		t.FailNow()
	}
	if out, err := exec.Command("docker", "network", "connect", inner, bastion.ContainerName).CombinedOutput(); err != nil {
		t.Fatalf("docker network connect: %v\n%s", err, out)
	}
	rejectFromHere(t, subnet)
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(t1.IP, "22"), 3*time.Second); err == nil {
		c.Close()
		t.Fatalf("the target %s should not be reachable from here", t1.IP)
	}
	m1, m2, m3 := uniq("e2e-bas-m1"), uniq("e2e-bas-m2"), uniq("e2e-bas-m3")
	t.Cleanup(func() { e.run("rm", "-f", "-y", m1, m2, m3) })
	jump := "root@" + bastion.IP

	// 1. By flag.
	r := e.run("create", "-d", "generic", "--generic-ip-address", t1.IP, "--generic-ssh-key", key, "--generic-ssh-proxy-jump", jump, m1)
	if r.code != 0 || !strings.Contains(r.stderr, "via "+jump+":22") {
		t.Fatalf("create through the bastion: %s", r)
	}
	if out := strings.TrimSpace(e.must("ssh", m1, "hostname")); out != t1.ContainerName && !strings.HasPrefix(t1.ContainerName, out) {
		t.Errorf("ssh through the bastion: %q (want %s)", out, t1.ContainerName)
	}
	if out := e.must("inspect", "-f", "{{range .SSH.Jumps}}{{.User}}@{{.Host}}:{{.Port}}{{end}}", m1); strings.TrimSpace(out) != jump+":22" {
		t.Errorf("inspect shows the jump host: %q", out)
	}

	// 2. By an ssh_config alias; the bastion's block comes from an included file.
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "conf.d"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config")
	writeFile(t, filepath.Join(dir, "conf.d", "bastion.conf"), fmt.Sprintf("Host jump\n    HostName %s\n    User root\n    IdentityFile %s\n", bastion.IP, key))
	writeFile(t, cfg, fmt.Sprintf("Include %s/conf.d/*.conf\n\nHost web2\n    HostName %s\n    User root\n    ProxyJump jump\n    IdentityFile %s\n\nHost *\n    ServerAliveInterval 30\n", dir, t2.IP, key))
	if r := e.run("create", "-d", "generic", "--generic-ssh-config", cfg, "--generic-ip-address", "web2", m2); r.code != 0 {
		t.Fatalf("create by an ssh_config alias: %s", r)
	}
	if out := e.must("inspect", "-f", "{{.SSH.Alias}} {{.SSH.Host}} {{.SSH.ServerAliveInterval}} {{range .SSH.Jumps}}{{.Alias}}={{.Host}}{{end}}", m2); strings.TrimSpace(out) != "web2 "+t2.IP+" 30 jump="+bastion.IP {
		t.Errorf("inspect shows what the file resolved: %q", out)
	}

	// 3. A chain of two: the bastion, then t1 on to t3.
	if r := e.run("create", "-d", "generic", "--generic-ip-address", t3.IP, "--generic-ssh-key", key, "--generic-ssh-proxy-jump", jump+",root@"+t1.IP, m3); r.code != 0 {
		t.Fatalf("create through two jump hosts: %s", r)
	}
	if out := e.must("ls", "--format", "{{.Name}} {{.State}} {{.DockerVersion}}", "--filter", "name="+m3); !strings.HasPrefix(out, m3+" Running v2") {
		t.Errorf("ls of a machine two hops away: %q", out)
	}

	// scp machine to machine; the engine API (ls asked it above) and a swarm through the chain.
	e.must("scp", m1+":/etc/hostname", m2+":/tmp/from-m1")
	if a, b := e.must("ssh", m1, "cat /etc/hostname"), e.must("ssh", m2, "cat /tmp/from-m1"); a != b {
		t.Errorf("scp machine to machine through the bastion: %q vs %q", a, b)
	}
	// The docker CLI through `machine tunnel`, at the address `env` gives.
	ctx, cancel := context.WithCancel(context.Background())
	tun := exec.CommandContext(ctx, machineBin, "-s", e.store, "tunnel", m1)
	tun.Env = cleanEnv()
	var tunErr strings.Builder
	tun.Stderr = &tunErr
	if err := tun.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = tun.Wait() })
	waitFor(t, "the tunnel", 20*time.Second, func() (bool, string) {
		d := e.docker(m1, "info", "--format", "{{.Swarm.LocalNodeState}}")
		return d.code == 0 && strings.TrimSpace(d.stdout) == "inactive", d.String() + tunErr.String()
	})

	// The swarm from a cluster file: the three machines behind the bastion, as they were made.
	cl := filepath.Join(dir, "cluster.yml")
	writeFile(t, cl, fmt.Sprintf(`name: behind
driver: generic
driver-options: {ssh-key: %s, ssh-proxy-jump: %s}
nodes:
  - {name: %s, role: manager, driver-options: {ip-address: %s}}
  - {name: %s, driver-options: {ip-address: web2, ssh-config: %s, ssh-proxy-jump: ""}}
  - {name: %s, driver-options: {ip-address: %s, ssh-proxy-jump: "%s,root@%s"}}
`, key, jump, m1, t1.IP, m2, cfg, m3, t3.IP, jump, t1.IP))
	if r := e.run("swarm", "up", "-f", cl); r.code != 0 {
		t.Fatalf("swarm up through the bastion: %s", r)
	}
	if r := e.run("swarm", "plan", "-f", cl); r.code != 0 {
		t.Errorf("swarm plan after up should have nothing to change: %s", r)
	}
	if rows := nodeTable(t, e, m1); len(rows) != 3 {
		t.Errorf("a swarm of three hosts behind the bastion: %v", rows)
	}
	if out := e.must("swarm", "status", m1); !strings.Contains(out, "managers: 1 (1 answering") {
		t.Errorf("swarm status through the bastion: %s", out)
	}

	// OpenSSH through `machine ssh-config`, strictly checked, both hops.
	sc := filepath.Join(dir, "machine.conf")
	writeFile(t, sc, e.must("ssh-config", m1, m3))
	for _, m := range []string{m1, m3} {
		out, err := exec.Command("ssh", "-F", sc, "-o", "BatchMode=yes", m, "echo", "ok").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "ok" {
			t.Errorf("ssh -F ssh-config %s: %v\n%s", m, err, out)
		}
	}
	// rsync over the same file: through both hops to m3, strictly checked.
	got := filepath.Join(dir, "hostname-m3")
	if out, err := exec.Command("rsync", "-e", "ssh -F "+sc+" -o BatchMode=yes", m3+":/etc/hostname", got).CombinedOutput(); err != nil {
		t.Errorf("rsync -e 'ssh -F ssh-config' from %s: %v\n%s", m3, err, out)
	} else if b, _ := os.ReadFile(got); strings.TrimSpace(string(b)) != strings.TrimSpace(e.must("ssh", m3, "cat /etc/hostname")) {
		t.Errorf("rsync copied %q", b)
	}

	// The bastion is rebuilt: its new key is refused on every use, naming it; trust-host-key
	// pins it again.
	execIn(t, bastion.ContainerName, "sh", "-c", "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh")
	for _, args := range [][]string{{"ssh", m1, "true"}, {"provision", m1}, {"scp", m1 + ":/etc/hostname", dir}} {
		r = e.run(args...)
		expectOneLineError(t, r, "jump host "+jump+":22", "changed", "machine trust-host-key "+m1)
		t.Logf("%v: %s", args, strings.TrimSpace(r.stderr))
	}
	if r := e.run("trust-host-key", m1); r.code != 0 || !strings.Contains(r.stdout, bastion.IP) {
		t.Errorf("trust-host-key through the bastion: %s", r)
	}
	e.must("ssh", m1, "true")
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestIPv6: generic machines made by their IPv6 addresses on a dual-stack network: the URL and
// certificate as docker expects them (tcp://[addr]:2376, an IP SAN), the docker CLI over TLS,
// ssh and scp, and a two-node swarm that advertises and joins over IPv6.
func TestIPv6(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key, pub := sshKey(t, t.TempDir(), "id_user")
	nw := uniq("e2e-v6")
	subnet6 := fmt.Sprintf("fd00:%x:%x::/64", 0x77, os.Getpid()%0xffff)
	subnet4 := fmt.Sprintf("10.210.%d.0/24", os.Getpid()%250)
	if out, err := exec.Command("docker", "network", "create", "--subnet", subnet4, "--ipv6", "--subnet", subnet6, nw).CombinedOutput(); err != nil {
		t.Fatalf("docker network create --ipv6: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "network", "rm", nw).Run() })
	var h1, h2 *containerdrv.Driver
	parallel(
		func() { h1 = testbedHostOf(t, containerdrv.VariantDocker, uniq("e2e-v6-h1"), nw, "", "", pub) },
		func() { h2 = testbedHostOf(t, containerdrv.VariantDocker, uniq("e2e-v6-h2"), nw, "", "", pub) },
	)
	if t.Failed() {
		t.FailNow()
	}
	v6 := func(d *containerdrv.Driver) string {
		out, err := exec.Command("docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}", d.ContainerName).Output()
		if err != nil || !strings.Contains(string(out), ":") {
			t.Fatalf("the IPv6 address of %s: %q %v", d.ContainerName, out, err)
		}
		return strings.TrimSpace(string(out))
	}
	a1, a2 := v6(h1), v6(h2)
	m1, m2 := uniq("e2e-v6-m1"), uniq("e2e-v6-m2")
	t.Cleanup(func() { e.run("rm", "-f", "-y", m1, m2) })
	parallel(
		func() { e.must("create", "-d", "generic", "--generic-ip-address", a1, "--generic-ssh-key", key, m1) },
		func() { e.must("create", "-d", "generic", "--generic-ip-address", a2, "--generic-ssh-key", key, m2) },
	)
	if t.Failed() {
		t.FailNow()
	}
	if u := strings.TrimSpace(e.must("url", m1)); u != "tcp://["+a1+"]:2376" {
		t.Errorf("url %q", u)
	}
	for _, ip := range []string{a1, h1.IP} { // dual-stack: both families
		if !certCovers(t, e.store, m1, ip) {
			t.Errorf("the certificate of %s does not name %s", m1, ip)
		}
	}
	if d := e.docker(m1, "version", "--format", "{{.Server.Version}}"); d.code != 0 {
		t.Errorf("the docker CLI over TLS to [%s]:2376: %s", a1, d)
	}
	e.must("scp", m1+":/etc/hostname", m2+":/tmp/from-m1")
	if a, b := e.must("ssh", m1, "cat /etc/hostname"), e.must("ssh", m2, "cat /tmp/from-m1"); a != b {
		t.Errorf("scp over IPv6: %q vs %q", a, b)
	}
	e.must("swarm", "init", m1)
	if r := e.run("swarm", "join", "--manager", m1, m2); r.code != 0 || !strings.Contains(r.stderr+r.stdout, a2) {
		t.Errorf("the joiner should advertise its IPv6 address %s: %s", a2, r)
	}
	if rows := nodeTable(t, e, m1); len(rows) != 2 {
		t.Errorf("a two-node swarm over IPv6: %v", rows)
	}
	// The same two in a cluster file, by their IPv6 addresses: nothing to change.
	cl := filepath.Join(t.TempDir(), "cluster.yml")
	writeFile(t, cl, fmt.Sprintf("name: v6\ndriver: generic\ndriver-options: {ssh-key: %s}\nnodes:\n  - {name: %s, role: manager, driver-options: {ip-address: \"%s\"}}\n  - {name: %s, driver-options: {ip-address: \"%s\"}}\n", key, m1, a1, m2, a2))
	if r := e.run("swarm", "plan", "-f", cl); r.code != 0 {
		t.Errorf("swarm plan of the IPv6 cluster: %s", r)
	}
}

// TestContainerHostKeysKnownInAdvance: a container host's keys are read through the engine and
// pinned before the first SSH connection (the debug log says so before the first command runs
// over SSH); they are the host's own; a host that then offers another key is refused.
func TestContainerHostKeysKnownInAdvance(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	name := uniq("e2e-hk")
	t.Cleanup(func() { e.run("rm", "-f", "-y", name) })
	r := e.run("--debug", "create", "--container-network", uniq("e2e-hk-net"), name)
	if r.code != 0 {
		t.Fatalf("create: %s", r)
	}
	pinned := strings.Index(r.stderr, "pinned before the first SSH connection")
	first := strings.Index(r.stderr, "detecting the operating system")
	if pinned < 0 || first < 0 || pinned > first {
		t.Fatalf("the keys should be pinned before the first SSH command: %s", r.stderr)
	}
	known, err := os.ReadFile(filepath.Join(e.store, "machines", name, "known_hosts"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("docker", "exec", name, "sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || !strings.Contains(string(known), f[0]+" "+f[1]) {
			t.Errorf("the host's key %s is not pinned:\n%s", l, known)
		}
	}
	execIn(t, name, "sh", "-c", "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh")
	expectOneLineError(t, e.run("ssh", name, "true"), "changed", "machine trust-host-key "+name)
}
