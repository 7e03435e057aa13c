//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	containerdrv "github.com/machine-tools/machine/drivers/container"
)

// The stand-in VBoxManage, built once for all the tests that use it.
var (
	fakeVBoxBuild sync.Once
	fakeVBoxDir   string
	fakeVBoxErr   error
)

// fakeVBox builds test/fakevbox as VBoxManage (VirtualBox cannot run here: its "VMs" are
// container hosts on the local engine, see its doc comment) and returns the environment that
// puts it on PATH for one test.
func fakeVBox(t *testing.T, prefix string) []string {
	t.Helper()
	fakeVBoxBuild.Do(func() {
		dir, err := os.MkdirTemp("", "fakevbox-")
		if err != nil {
			fakeVBoxErr = err
			return
		}
		fakeVBoxDir = dir
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "VBoxManage"), "../fakevbox").CombinedOutput(); err != nil {
			fakeVBoxErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if fakeVBoxErr != nil {
		t.Fatalf("building the stand-in VBoxManage: %v", fakeVBoxErr)
	}
	bin := fakeVBoxDir
	home := t.TempDir()
	t.Cleanup(func() {
		ids, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=io.machine.fakevbox="+prefix).Output()
		if f := strings.Fields(string(ids)); len(f) > 0 {
			_ = exec.Command("docker", append([]string{"rm", "-f", "-v"}, f...)...).Run()
		}
		nets, _ := exec.Command("docker", "network", "ls", "-q", "--filter", "label=io.machine.fakevbox="+prefix).Output()
		if f := strings.Fields(string(nets)); len(f) > 0 {
			_ = exec.Command("docker", append([]string{"network", "rm"}, f...)...).Run()
		}
	})
	return []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "FAKEVBOX_HOME=" + home,
		"FAKEVBOX_PREFIX=" + prefix, "FAKEVBOX_IMAGE=" + containerdrv.ImageTag(containerdrv.VariantDocker, containerdrv.DefaultRelease)}
}

// TestVirtualBoxThroughVBoxManage runs the VirtualBox driver through the CLI against the
// stand-in VBoxManage: the SSH port forward on 127.0.0.1, the host-only address read over SSH by
// the NIC's MAC, the docker CLI over TLS at that address, a start that brings a new DHCP lease
// (the certificate is re-issued: docker-machine's "x509: certificate is valid for A, not B"),
// a two-node swarm advertising the host-only addresses, and an rm that leaves no VM behind.
func TestVirtualBoxThroughVBoxManage(t *testing.T) {
	t.Parallel()
	prefix := uniq("fvb")
	vb := fakeVBox(t, prefix)
	e := newEnv(t)
	cidr := fmt.Sprintf("10.211.%d.1/24", os.Getpid()%250)
	_, hostOnly, _ := net.ParseCIDR(cidr)
	img := filepath.Join(t.TempDir(), "cloud.vmdk")
	if err := os.WriteFile(img, []byte("# Disk DescriptorFile\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m1, m2 := prefix+"-m1", prefix+"-w1"
	t.Cleanup(func() { e.runWith(vb, "", "rm", "-f", "-y", m1, m2) })
	for _, n := range []string{m1, m2} {
		r := e.runWith(vb, "", "create", "-d", "virtualbox", "--virtualbox-image", img, "--virtualbox-hostonly-cidr", cidr, n)
		if r.code != 0 {
			t.Fatalf("create %s: %s", n, r)
		}
		if !strings.Contains(r.stderr, "reading the host's address") {
			t.Errorf("create %s did not read the address: %s", n, r.stderr)
		}
	}
	ip := strings.TrimSpace(e.runWith(vb, "", "ip", m1).stdout)
	if !hostOnly.Contains(net.ParseIP(ip)) {
		t.Fatalf("machine ip %q is not on the host-only network %s", ip, hostOnly)
	}
	if out := e.runWith(vb, "", "inspect", "--format", "{{.SSH.Host}} {{.Address}} {{.Driver.HostOnlyIf}}", m1).stdout; !strings.HasPrefix(out, "127.0.0.1 "+ip+" vboxnet") {
		t.Errorf("inspect: SSH through the forward, engine at the host-only address: %q", out)
	}
	d := e.dockerWith(vb, "", m1, "info", "--format", "{{.Name}} {{.Labels}}")
	if d.code != 0 || !strings.HasPrefix(d.stdout, m1+" ") || !strings.Contains(d.stdout, "provider=virtualbox") {
		t.Fatalf("docker info over TLS: %s", d)
	}
	if out := e.runWith(vb, "", "ssh", m1, "id -un; hostname").stdout; out != "docker\n"+m1+"\n" {
		t.Errorf("ssh as cloud-init's user: %q", out)
	}

	// Swarm on two VirtualBox hosts: each advertises its host-only address.
	if r := e.runWith(vb, "", "swarm", "init", m1); r.code != 0 || !strings.Contains(r.stderr+r.stdout, "advertising "+ip) {
		t.Fatalf("swarm init: %s", r)
	}
	ip2 := strings.TrimSpace(e.runWith(vb, "", "ip", m2).stdout)
	if r := e.runWith(vb, "", "swarm", "join", "--manager", m1, m2); r.code != 0 || !strings.Contains(r.stderr+r.stdout, "advertising "+ip2) {
		t.Fatalf("swarm join: %s", r)
	}
	if d := e.dockerWith(vb, "", m1, "node", "inspect", m2, "--format", "{{.Status.State}} {{.Status.Addr}}"); strings.TrimSpace(d.stdout) != "ready "+ip2 {
		t.Errorf("the worker as the manager sees it: %s", d)
	}

	// Stop, then a start that brings a new lease: the certificate follows the address.
	if r := e.runWith(vb, "", "stop", m2); r.code != 0 {
		t.Fatalf("stop: %s", r)
	}
	if st := strings.TrimSpace(e.runWith(vb, "", "status", m2).stdout); st != "Stopped" {
		t.Fatalf("status after stop: %q", st)
	}
	r := e.runWith(append(vb, "FAKEVBOX_NEW_LEASE=1"), "", "start", m2)
	newIP := strings.TrimSpace(e.runWith(vb, "", "ip", m2).stdout)
	if r.code != 0 || newIP == ip2 || !hostOnly.Contains(net.ParseIP(newIP)) || !strings.Contains(r.stderr+r.stdout, "certificate was re-issued") {
		t.Fatalf("start with a new lease (%s → %s): %s", ip2, newIP, r)
	}
	if d := e.dockerWith(vb, "", m2, "info", "--format", "{{.Name}}"); d.code != 0 || strings.TrimSpace(d.stdout) != m2 {
		t.Fatalf("docker at the new address %s: %s", newIP, d)
	}
	if r := e.runWith(vb, "", "kill", m2); r.code != 0 {
		t.Fatalf("kill: %s", r)
	}
	if st := strings.TrimSpace(e.runWith(vb, "", "status", m2).stdout); st != "Stopped" {
		t.Errorf("status after kill: %q", st)
	}

	// rm: no VM, no disk, no seed ISO is left.
	folder := strings.TrimSpace(e.runWith(vb, "", "inspect", "--format", "{{.Driver.Folder}}", m1).stdout)
	if r := e.runWith(vb, "", "rm", "-y", m1, m2); r.code != 0 {
		t.Fatalf("rm: %s", r)
	}
	var home string
	for _, kv := range vb {
		if v, ok := strings.CutPrefix(kv, "FAKEVBOX_HOME="); ok {
			home = v
		}
	}
	cmd := exec.Command("sh", "-c", "VBoxManage list vms")
	cmd.Env = append(os.Environ(), vb...)
	if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("VirtualBox still lists VMs after rm: %q %v", out, err)
	}
	if _, err := os.Stat(filepath.Join(folder, "cidata.iso")); !os.IsNotExist(err) || !strings.HasPrefix(folder, home) {
		t.Errorf("the seed ISO in %q is left: %v", folder, err)
	}
	if ids, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=io.machine.fakevbox="+prefix).Output(); len(strings.TrimSpace(string(ids))) > 0 {
		t.Errorf("rm left VM containers: %s", ids)
	}
}

// TestVirtualBoxWithoutVBoxManage: a machine without VirtualBox gets one clear line, and nothing
// is made.
func TestVirtualBoxWithoutVBoxManage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.runWith([]string{"PATH=/nonexistent", "VBOX_INSTALL_PATH=" + t.TempDir()}, "", "create", "-d", "virtualbox", "vbx")
	expectOneLineError(t, r, "VBoxManage was not found", "install VirtualBox")
	// docker-machine flags with no equivalent are refused with the reason, before anything else.
	r = e.runWith(nil, "", "create", "-d", "virtualbox", "--virtualbox-share-folder", "/Users:/Users", "vbx")
	expectOneLineError(t, r, "--virtualbox-share-folder is not supported", "machine scp")
	if out := e.must("ls", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("a machine is left: %q", out)
	}
}

// TestVirtualBoxSeedCluster: testdata/cluster/virtualbox.yml (the seed's five VirtualBox VMs and
// their swarm) through `swarm up`, against the stand-in VBoxManage, with the names, range and
// image made this test's own: every node Ready, advertising its host-only address; then down.
func TestVirtualBoxSeedCluster(t *testing.T) {
	t.Parallel()
	prefix := uniq("fvs")
	vb := fakeVBox(t, prefix)
	e := newEnv(t)
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "cluster", "virtualbox.yml"))
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "cloud.vmdk")
	if err := os.WriteFile(img, []byte("# Disk DescriptorFile\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cidr := fmt.Sprintf("10.212.%d.1/24", os.Getpid()%250)
	_, hostOnly, _ := net.ParseCIDR(cidr)
	text := strings.ReplaceAll(string(b), "192.168.99.1/24", cidr)
	text = strings.ReplaceAll(text, "  memory: 2048", "  memory: 2048\n  image: "+img)
	var names []string
	for _, n := range []string{"manager1", "worker1", "worker2", "worker3", "worker4"} {
		text = strings.ReplaceAll(text, "name: "+n+"\n", "name: "+prefix+"-"+n+"\n")
		names = append(names, prefix+"-"+n)
	}
	file := filepath.Join(t.TempDir(), "virtualbox.yml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.runWith(vb, "", append([]string{"rm", "-f", "-y"}, names...)...) })
	if r := e.runWith(vb, "", "swarm", "up", "-f", file); r.code != 0 {
		t.Fatalf("swarm up: %s", r)
	}
	d := e.dockerWith(vb, "", names[0], "node", "ls", "--format", "{{.Hostname}} {{.Status}}")
	if d.code != 0 || strings.Count(d.stdout, " Ready") != 5 {
		t.Fatalf("node ls: %s", d)
	}
	for _, n := range names {
		ip := strings.TrimSpace(e.runWith(vb, "", "ip", n).stdout)
		addr := e.dockerWith(vb, "", names[0], "node", "inspect", n, "--format", "{{.Status.Addr}}")
		if !hostOnly.Contains(net.ParseIP(ip)) || strings.TrimSpace(addr.stdout) != ip {
			t.Errorf("%s: machine ip %q, swarm address %q: want the same host-only address", n, ip, addr.stdout)
		}
	}
	if r := e.runWith(vb, "", "swarm", "up", "-f", file); r.code != 0 || !strings.Contains(r.stderr+r.stdout, "nothing to change") {
		t.Errorf("swarm up again: %s", r)
	}
	if r := e.runWith(vb, "", "swarm", "down", "-f", file); r.code != 0 {
		t.Fatalf("swarm down: %s", r)
	}
	if out := e.must("ls", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("swarm down left machines: %q", out)
	}
}
