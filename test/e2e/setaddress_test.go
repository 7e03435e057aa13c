//go:build e2e

package e2e

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	containerdrv "github.com/machine-tools/machine/drivers/container"
)

// TestGenericSetAddress: a generic machine whose host got another address (its container
// reconnected to its network with another --ip). `ssh` names `machine set-address`; set-address
// to another host's address is refused (that host offers another SSH key) and changes nothing;
// set-address to the host's new address moves the record and the pinned key, and gives the engine
// a certificate for the new address: ssh, `machine ip` and docker over TLS work there.
func TestGenericSetAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key, pub := sshKey(t, t.TempDir(), "id_move")
	netName := uniq("e2e-mv-net")
	tb, other := uniq("e2e-mv-host"), uniq("e2e-mv-other")
	tbd := testbedHostOf(t, containerdrv.VariantDocker, tb, netName, "", "", pub)
	od := testbedHost(t, other, netName, "", "", pub)
	name := uniq("e2e-mv")
	t.Cleanup(func() { e.run("rm", "-f", "-y", name) })
	if r := e.run("create", "-d", "generic", "--generic-ip-address", tbd.IP, "--generic-ssh-key", key, name); r.code != 0 {
		t.Fatalf("create: %s", r)
	}
	newIP := addressIn(t, netName, 200)
	reconnect(t, netName, tbd.ContainerName, newIP)
	if r := e.run("ssh", name, "true"); r.code == 0 || !strings.Contains(r.stderr, "machine set-address "+name+" ADDRESS") {
		t.Errorf("ssh to the old address should fail naming set-address: %s", r)
	}
	record := filepath.Join(e.store, "machines", name, "config.json")
	before, _ := os.ReadFile(record)
	r := e.run("set-address", name, od.IP)
	if r.code == 0 || !strings.Contains(r.stderr, "is not this machine's") || !strings.Contains(r.stderr, "the record still has "+tbd.IP) {
		t.Errorf("set-address to another host: %s", r)
	}
	t.Logf("set-address to another host: %s", r)
	if after, _ := os.ReadFile(record); string(after) != string(before) {
		t.Errorf("a refused set-address changed the record:\n%s\n->\n%s", before, after)
	}
	if r := e.run("set-address", name, "bad address"); r.code == 0 || !strings.Contains(r.stderr, "is not a host's address") {
		t.Errorf("set-address with a space: %s", r)
	}
	r = e.run("set-address", name, newIP)
	if r.code != 0 || !strings.Contains(r.stdout, "moved from "+tbd.IP+" to "+newIP) {
		t.Fatalf("set-address: %s", r)
	}
	t.Logf("set-address: %s", r)
	if got := strings.TrimSpace(e.must("ip", name)); got != newIP {
		t.Errorf("machine ip: %s", got)
	}
	if got := strings.TrimSpace(e.must("ssh", name, "hostname")); got != tb {
		t.Errorf("ssh hostname: %q", got)
	}
	if d := e.docker(name, "info", "--format", "{{.Name}}"); d.code != 0 || strings.TrimSpace(d.stdout) != tb {
		t.Errorf("docker over TLS at the new address: %s", d)
	}
	b, _ := pem.Decode([]byte(e.must("ssh", name, "cat /etc/docker/server.pem")))
	if b == nil {
		t.Fatal("no server certificate on the host")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil || cert.VerifyHostname(newIP) != nil {
		t.Errorf("the engine's certificate is not for %s: %v", newIP, err)
	}
}
