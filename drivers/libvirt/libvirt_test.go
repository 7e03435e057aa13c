package libvirt

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		_ = os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update once)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n got:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestDomainXMLGolden(t *testing.T) {
	x, err := DomainXML(DomainSpec{Name: "vm1", Type: "qemu", CPUs: 2, MemoryMiB: 2048,
		Overlay: "/var/lib/libvirt/images/vm1.qcow2", CidataISO: "/var/lib/libvirt/images/vm1-cidata.iso",
		Networks: []string{"default", "backplane"}, MACs: []string{"52:54:00:00:00:01", "52:54:00:00:00:02"}})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "domain-bootloader.xml", x)
	x, err = DomainXML(DomainSpec{Name: "vm2", Type: "kvm", CPUs: 1, MemoryMiB: 1024, Overlay: "/p/vm2.qcow2",
		Networks: []string{"default"}, MACs: []string{"52:54:00:00:00:03"},
		Kernel: "/boot/vmlinuz", Initrd: "/boot/initrd.img", Cmdline: "root=/dev/vda ro console=ttyS0"})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "domain-kernel.xml", x)
	if _, err := DomainXML(DomainSpec{Networks: []string{"a"}}); err == nil {
		t.Error("a network without a MAC must be refused")
	}
}

func TestVolumeXMLGolden(t *testing.T) {
	x, err := OverlayXML("vm1.qcow2", 20<<30, "/var/lib/libvirt/images/machine-base-1.qcow2", "qcow2")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "overlay.xml", x)
	x, _ = RawVolumeXML("vm1-cidata.iso", 374784)
	golden(t, "raw.xml", x)
	x, _ = DirPoolXML("default", "/var/lib/libvirt/images")
	golden(t, "pool.xml", x)
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{"20G": 20 << 30, "512M": 512 << 20, "1024": 1024 << 20, "1t": 1 << 40} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "x", "0", "-1G"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

// TestDriverCallsAgainstTestDriver runs the libvirt calls the driver makes against libvirtd's
// test:///default driver: define, start, state, destroy, undefine, and the error paths.
// testDriver connects to libvirtd's test driver (test:///default, shared by every connection to
// libvirtd), closed when the test ends; it returns libvirtd's socket too.
func testDriver(t *testing.T) (string, *golibvirt.Libvirt) {
	t.Helper()
	sock := "/var/run/libvirt/libvirt-sock"
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("libvirtd is not running (%v): scripts/setup-libvirt.sh starts it", err)
	}
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(sock)))
	if err := l.ConnectToURI(golibvirt.TestDefault); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Disconnect() })
	return sock, l
}

func TestDriverCallsAgainstTestDriver(t *testing.T) {
	sock, l := testDriver(t)
	x, err := DomainXML(DomainSpec{Name: "machine-unit", Type: "test", CPUs: 1, MemoryMiB: 128, Overlay: "/dev/null",
		Networks: []string{"default"}, MACs: []string{"52:54:00:00:00:09"}})
	if err != nil {
		t.Fatal(err)
	}
	dom, err := l.DomainDefineXML(x)
	if err != nil {
		t.Fatalf("define: %v", err)
	}
	d := &Driver{URI: string(golibvirt.TestDefault), Socket: sock, DomainName: "machine-unit", Pool: "default-pool"}
	if st, err := d.State(t.Context()); err != nil || st != "Stopped" {
		t.Fatalf("state after define: %s %v", st, err)
	}
	if err := l.DomainCreate(dom); err != nil {
		t.Fatal(err)
	}
	if st, _ := d.State(t.Context()); st != "Running" {
		t.Fatalf("state after start: %s", st)
	}
	if err := d.Kill(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st, _ := d.State(t.Context()); st != "Stopped" {
		t.Fatalf("state after kill: %s", st)
	}
	if err := d.Remove(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st, _ := d.State(t.Context()); st != "NotFound" {
		t.Fatalf("state after remove: %s", st)
	}
	// Error paths: a missing network and a missing libvirtd, each named with the fix.
	bad := &Driver{URI: string(golibvirt.TestDefault), Socket: sock, Image: "/dev/null", DiskSize: "1G", DomainType: "qemu", Networks: []string{"no-such-net"}}
	if err := bad.Validate(t.Context(), "x"); err == nil || !strings.Contains(err.Error(), "no-such-net") || !strings.Contains(err.Error(), "--libvirt-network") {
		t.Errorf("missing network: %v", err)
	}
	gone := &Driver{URI: "qemu:///system", Socket: filepath.Join(t.TempDir(), "none.sock")}
	if _, err := gone.State(t.Context()); err == nil || !strings.Contains(err.Error(), "start libvirtd") {
		t.Errorf("no libvirtd: %v", err)
	}
	if err := (&Driver{Image: "/nonexistent.qcow2", DiskSize: "1G", DomainType: "auto"}).Validate(t.Context(), "x"); err == nil || !strings.Contains(err.Error(), "--libvirt-image") {
		t.Errorf("missing image: %v", err)
	}
}

// TestAddressesByMAC: each NIC's IPv4 address from libvirt's interface list, whatever the case of
// the MAC and the order of the interfaces; IPv6 and unknown NICs are ignored.
func TestAddressesByMAC(t *testing.T) {
	ifs := []golibvirt.DomainInterface{
		{Name: "vnet7", Hwaddr: golibvirt.OptString{"52:54:00:AA:00:02"}, Addrs: []golibvirt.DomainIPAddr{
			{Type: int32(golibvirt.IPAddrTypeIpv6), Addr: "fd00::5", Prefix: 64},
			{Type: int32(golibvirt.IPAddrTypeIpv4), Addr: "10.77.0.50", Prefix: 24}}},
		{Name: "vnet6", Hwaddr: golibvirt.OptString{"52:54:00:aa:00:01"}, Addrs: []golibvirt.DomainIPAddr{
			{Type: int32(golibvirt.IPAddrTypeIpv4), Addr: "192.168.122.40", Prefix: 24}}},
		{Name: "lo", Addrs: []golibvirt.DomainIPAddr{{Type: int32(golibvirt.IPAddrTypeIpv4), Addr: "127.0.0.1", Prefix: 8}}},
	}
	got := AddressesByMAC(ifs, []string{"52:54:00:aa:00:01", "52:54:00:aa:00:02", "52:54:00:aa:00:03"})
	if strings.Join(got, ",") != "192.168.122.40,10.77.0.50," {
		t.Errorf("got %q", got)
	}
	dst := []string{"", "10.0.0.9", ""}
	fill(dst, got)
	if strings.Join(dst, ",") != "192.168.122.40,10.0.0.9," {
		t.Errorf("fill kept what was known? %q", dst)
	}
}

func TestCgroupSetupFailed(t *testing.T) {
	for msg, want := range map[string]bool{
		// libvirtd 9.0.0's words (Debian 12), recorded from a start that failed on cgroup v1
		"Failed to create v1 controller cpu for group: No such file or directory":    true,
		"Unable to create cgroup for e2e-vm: No such file or directory":              true,
		"Requested operation is not valid: domain is already running":                false,
		"internal error: process exited while connecting to monitor: qemu: no image": false,
	} {
		if got := cgroupSetupFailed(errors.New(msg)); got != want {
			t.Errorf("cgroupSetupFailed(%q) = %v, want %v", msg, got, want)
		}
	}
}

// TestEndpointFollowsANewLease: a VM whose DHCP lease changed (its network's range moved, as a
// network redefined or a lease expired while the VM was off would give it another address) is
// reported at its new address by Endpoint, which is what machine compares with its record to
// follow the host. The addresses are libvirt's own answers (its test driver's lease source, through
// libvirtd), not made up here.
func TestEndpointFollowsANewLease(t *testing.T) {
	sock, l := testDriver(t)
	const name, mac = "machine-lease-unit", "52:54:00:00:00:33"
	network := func(start, end string) {
		t.Helper()
		if n, err := l.NetworkLookupByName(name); err == nil {
			_ = l.NetworkDestroy(n)
			_ = l.NetworkUndefine(n)
		}
		n, err := l.NetworkDefineXML(`<network><name>` + name + `</name><bridge name="virbr-mlu"/><ip address="10.55.0.1" netmask="255.255.255.0"><dhcp><range start="` + start + `" end="` + end + `"/></dhcp></ip></network>`)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.NetworkCreate(n); err != nil {
			t.Fatal(err)
		}
	}
	network("10.55.0.50", "10.55.0.100")
	t.Cleanup(func() {
		if n, err := l.NetworkLookupByName(name); err == nil {
			_ = l.NetworkDestroy(n)
			_ = l.NetworkUndefine(n)
		}
	})
	x, err := DomainXML(DomainSpec{Name: name, Type: "test", CPUs: 1, MemoryMiB: 128, Overlay: "/dev/null", Networks: []string{name}, MACs: []string{mac}})
	if err != nil {
		t.Fatal(err)
	}
	dom, err := l.DomainDefineXML(x)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.DomainDestroy(dom); _ = l.DomainUndefine(dom) })
	if err := l.DomainCreate(dom); err != nil {
		t.Fatal(err)
	}
	d := &Driver{URI: string(golibvirt.TestDefault), Socket: sock, DomainName: name, Networks: []string{name}, MACs: []string{mac}, SSHUser: "root"}
	ep, err := d.Endpoint(t.Context())
	if err != nil || !strings.HasPrefix(ep.IP, "10.55.0.") {
		t.Fatalf("first lease: %+v %v", ep, err)
	}
	d.IP = ep.IP // what the record holds
	network("10.55.0.150", "10.55.0.200")
	moved, err := d.Endpoint(t.Context())
	if err != nil || moved.IP == d.IP || !strings.HasPrefix(moved.IP, "10.55.0.") {
		t.Fatalf("after the lease changed: %+v %v (recorded %s)", moved, err, d.IP)
	}
	t.Logf("lease %s -> %s", d.IP, moved.IP)
}
