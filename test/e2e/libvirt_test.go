//go:build e2e

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"libvirt.org/go/libvirtxml"
)

// libvirtImage returns the folder of the test guest (built once per recipe by the script).
func libvirtImage(t *testing.T) string {
	return cachedBuild(t, "MACHINE_LIBVIRT_TEST_IMAGE", "libvirt-test-image.sh")
}

// secondNetwork makes an isolated libvirt network with DHCP for one test and returns its name and
// the prefix of its addresses.
func secondNetwork(t *testing.T) (string, string) {
	t.Helper()
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket("/var/run/libvirt/libvirt-sock")))
	if err := l.ConnectToURI(golibvirt.QEMUSystem); err != nil {
		t.Fatal(err)
	}
	k := os.Getpid()%200 + 20
	name := fmt.Sprintf("mt-backplane-%d", k)
	prefix := fmt.Sprintf("10.77.%d.", k)
	x, err := (&libvirtxml.Network{Name: name,
		IPs: []libvirtxml.NetworkIP{{Address: prefix + "1", Netmask: "255.255.255.0",
			DHCP: &libvirtxml.NetworkDHCP{Ranges: []libvirtxml.NetworkDHCPRange{{Start: prefix + "100", End: prefix + "200"}}}}},
	}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if old, err := l.NetworkLookupByName(name); err == nil { // left by a killed run
		_ = l.NetworkDestroy(old)
		_ = l.NetworkUndefine(old)
	}
	n, err := l.NetworkDefineXML(x)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.NetworkCreate(n); err != nil {
		_ = l.NetworkUndefine(n)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = l.NetworkDestroy(n)
		_ = l.NetworkUndefine(n)
		_ = l.Disconnect()
	})
	return name, prefix
}

// TestLibvirtVM boots one real VM through libvirtd from the test guest (cloud-init puts the
// machine's key in), provisions Docker over SSH, and checks the docker CLI over TLS, a stop/start
// that keeps the disk, and an rm that leaves no domain, overlay or ISO behind.
func TestLibvirtVM(t *testing.T) {
	t.Parallel()
	img := libvirtImage(t)
	e := newEnv(t)
	name := uniq("e2e-vm")
	t.Cleanup(func() { e.run("rm", "-f", "-y", name) })
	// A second network (isolated, with its own DHCP): the VM gets two NICs; the first network's
	// address is the machine's, and inspect reports both.
	backplane, subnet := secondNetwork(t)
	// The image boots as users' images do, through its bootloader (EXTLINUX).
	r := e.run("create", "-d", "libvirt", "--libvirt-image", filepath.Join(img, "base.qcow2"), "--libvirt-memory", "1024",
		"--libvirt-network", "default", "--libvirt-network", backplane, name)
	if r.code != 0 {
		t.Fatalf("create: %s", r)
	}
	ip := strings.TrimSpace(e.must("ip", name))
	if !strings.HasPrefix(ip, "192.168.122.") {
		t.Errorf("the machine's address %q is not on the first network (default)", ip)
	}
	nets := e.must("inspect", "--format", "{{json .Host.Networks}}", name)
	if !strings.Contains(nets, `"default":"`+ip+`"`) || !strings.Contains(nets, `"`+backplane+`":"`+subnet) {
		t.Errorf("inspect's networks: %s (want default=%s and %s on %s*)", nets, ip, backplane, subnet)
	}
	if d := e.docker(name, "info", "--format", "{{.Name}} {{.Labels}}"); d.code != 0 || !strings.HasPrefix(d.stdout, name) || !strings.Contains(d.stdout, "provider=libvirt") {
		t.Fatalf("docker info over TLS: %s", d)
	}
	if out := e.must("ssh", name, "cloud-init status --wait; id -un; cat /proc/cmdline"); !strings.Contains(out, "done") || !strings.Contains(out, "debian") || !strings.Contains(out, "BOOT_IMAGE=") {
		t.Errorf("cloud-init, its user, and a boot through the bootloader (BOOT_IMAGE= on the command line): %q", out)
	}
	// The host key was made by the driver and pinned before the VM booted: the VM's ed25519 key,
	// the machine's only pinned one (its first connection was checked against it, strictly).
	made := strings.TrimSpace(e.must("inspect", "--format", "{{.Driver.HostKey}}", name))
	known, err := os.ReadFile(filepath.Join(e.store, "machines", name, "known_hosts"))
	if err != nil {
		t.Fatal(err)
	}
	onHost := e.must("ssh", name, "sudo cat /etc/ssh/ssh_host_ed25519_key.pub") // cloud-init writes it 0600
	if f := strings.Fields(made); len(f) < 2 || strings.Count(string(known), "\n") != 1 || !strings.Contains(string(known), f[0]+" "+f[1]) || !strings.Contains(onHost, f[1]) {
		t.Errorf("the seeded host key %q: pinned %q, on the VM %q", made, known, onHost)
	}
	e.must("ssh", name, "echo kept | sudo tee /var/tmp/kept")
	e.must("stop", name)
	if st := strings.TrimSpace(e.must("status", name)); st != "Stopped" {
		t.Fatalf("status after stop: %s", st)
	}
	e.must("start", name)
	if out := e.must("ssh", name, "cat /var/tmp/kept"); strings.TrimSpace(out) != "kept" {
		t.Fatalf("the disk did not survive stop/start: %q", out)
	}
	if d := e.docker(name, "info", "--format", "{{.Name}}"); d.code != 0 {
		t.Fatalf("docker after start: %s", d)
	}
	e.must("rm", "-y", name)
	noDomain(t, name)
}

// noDomain fails the test if libvirtd still has the machine's domain, overlay or seed ISO.
func noDomain(t *testing.T, name string) {
	t.Helper()
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket("/var/run/libvirt/libvirt-sock")))
	if err := l.ConnectToURI(golibvirt.QEMUSystem); err != nil {
		t.Fatal(err)
	}
	defer l.Disconnect()
	if _, err := l.DomainLookupByName(name); err == nil {
		t.Errorf("domain %s was left", name)
	}
	p, err := l.StoragePoolLookupByName("default")
	if err != nil {
		t.Fatal(err)
	}
	_ = l.StoragePoolRefresh(p, 0)
	for _, v := range []string{name + ".qcow2", name + "-cidata.iso"} {
		if _, err := l.StorageVolLookupByName(p, v); err == nil {
			t.Errorf("volume %s was left", v)
		}
	}
}

// TestLibvirtKernelBoot: an image given by URL is downloaded once (with a progress line and its
// checksum checked; a wrong checksum stops the create with nothing made), and with
// --libvirt-kernel the guest's kernel is booted directly, with the command line given; a kernel
// that panics (no initrd) stops the create at once, quoting its console.
func TestLibvirtKernelBoot(t *testing.T) {
	t.Parallel()
	img := libvirtImage(t)
	e := newEnv(t)
	name := uniq("e2e-vmk")
	srv := httptest.NewServer(http.FileServer(http.Dir(img)))
	defer srv.Close()
	f, err := os.Open(filepath.Join(img, "base.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	_, _ = io.Copy(h, f)
	f.Close()
	sum := "sha256:" + hex.EncodeToString(h.Sum(nil))
	cache := []string{"XDG_CACHE_HOME=" + t.TempDir()} // the download lands here, removed with the test
	args := func(checksum string) []string {
		return []string{"create", "-d", "libvirt", "--libvirt-image", srv.URL + "/base.qcow2", "--libvirt-image-checksum", checksum,
			"--libvirt-kernel", filepath.Join(img, "vmlinuz"), "--libvirt-initrd", filepath.Join(img, "initrd.img"),
			"--libvirt-cmdline", "root=/dev/vda rw console=ttyS0 machine.test=direct", "--libvirt-memory", "768", name}
	}
	t.Cleanup(func() { e.run("rm", "-f", "-y", name) })

	bad := "sha256:" + strings.Repeat("0", 64)
	expectOneLineError(t, e.runWith(cache, "", args(bad)...), "sha256", "damaged")
	if out := e.must("ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("a wrong checksum left a machine: %q", out)
	}

	// Without its initrd the kernel cannot mount its root (virtio_blk is a module) and panics:
	// the create stops at the panic, which it quotes from the console, not at the lease deadline
	// (15 minutes under TCG), and leaves nothing.
	panicked := uniq("e2e-vmp")
	t.Cleanup(func() { e.run("rm", "-f", "-y", panicked) })
	expectOneLineError(t, e.run("create", "-d", "libvirt", "--libvirt-image", filepath.Join(img, "base.qcow2"),
		"--libvirt-kernel", filepath.Join(img, "vmlinuz"), "--libvirt-cmdline", "root=/dev/vda rw console=ttyS0",
		"--libvirt-memory", "768", panicked),
		"kernel panicked", "Kernel panic - not syncing: VFS: Unable to mount root fs", "--libvirt-initrd", "nothing was left behind")
	if out := e.must("ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("a panicked guest left a machine: %q", out)
	}
	noDomain(t, panicked)

	r := e.runWith(cache, "", args(sum)...)
	if r.code != 0 {
		t.Fatalf("create: %s", r)
	}
	if !strings.Contains(r.stderr, "downloading "+srv.URL+"/base.qcow2") {
		t.Errorf("no download line: %s", r.stderr)
	}
	out := e.must("ssh", name, "cat /proc/cmdline")
	if !strings.Contains(out, "machine.test=direct") || strings.Contains(out, "BOOT_IMAGE=") {
		t.Errorf("the kernel was not booted directly with the given command line: %q", out)
	}
	if d := e.docker(name, "info", "--format", "{{.Name}}"); d.code != 0 || strings.TrimSpace(d.stdout) != name {
		t.Fatalf("docker info over TLS: %s", d)
	}
	base := strings.TrimSpace(e.must("inspect", "--format", "{{.Driver.Base}}", name))
	e.must("rm", "-y", name)
	// The base copied from this test's download is this test's to remove (rm keeps bases).
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket("/var/run/libvirt/libvirt-sock")))
	if err := l.ConnectToURI(golibvirt.QEMUSystem); err == nil {
		if v, err := l.StorageVolLookupByPath(base); err == nil {
			_ = l.StorageVolDelete(v, 0)
		}
		_ = l.Disconnect()
	}
}
