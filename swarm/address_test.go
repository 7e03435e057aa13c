package swarm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/machine-tools/machine/drivers/virtualbox"
)

// Outputs recorded on a container host with two NICs, and on a VirtualBox-style host with NAT
// (10.0.2.15) and host-only (192.168.99.101) NICs.
const twoNICAddrs = `1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever preferred_lft forever
2: eth0    inet 10.0.2.15/24 brd 10.0.2.255 scope global dynamic eth0\       valid_lft 86000sec preferred_lft 86000sec
3: eth1    inet 192.168.99.101/24 brd 192.168.99.255 scope global eth1\       valid_lft forever preferred_lft forever
4: docker0    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0\       valid_lft forever preferred_lft forever
`

func TestChooseAdvertiseTwoNICs(t *testing.T) {
	ifs := parseAddrs(twoNICAddrs)
	if len(ifs) != 4 || ifs[2].Name != "eth1" || ifs[2].Addr != "192.168.99.101" {
		t.Fatalf("parsed %+v", ifs)
	}
	src, err := routeSource("192.168.99.100 dev eth1 src 192.168.99.101 uid 0 \\    cache ")
	if err != nil {
		t.Fatal(err)
	}
	got, err := chooseAdvertise("", src, ifs)
	if err != nil || got != "192.168.99.101" {
		t.Fatalf("ChooseAdvertise = %q, %v: want the host-only address", got, err)
	}
	if got, _ := chooseAdvertise("eth0", src, ifs); got != "10.0.2.15" {
		t.Errorf("an interface override gave %q", got)
	}
	if got, _ := chooseAdvertise("10.0.2.15", src, ifs); got != "10.0.2.15" {
		t.Errorf("an address override gave %q", got)
	}
	if _, err := chooseAdvertise("10.9.9.9", src, ifs); err == nil || !strings.Contains(err.Error(), "eth1=192.168.99.101") {
		t.Errorf("a foreign override should be refused, listing the node's addresses: %v", err)
	}
	if _, err := chooseAdvertise("", "10.8.0.1", ifs); err == nil {
		t.Error("a route source the node does not have must be refused")
	}
	if _, err := routeSource("unreachable 10.1.1.1"); err == nil {
		t.Error("no src must be an error")
	}
}

// TestSwarmAdvertiseOnRecordedTwoNICGuest: on a VirtualBox guest with NAT (10.0.2.15, the same
// on every VM) and host-only (192.168.99.101) NICs, the swarm layer's choice is the host-only
// address, from the guest's own route to the manager.
func TestSwarmAdvertiseOnRecordedTwoNICGuest(t *testing.T) {
	ifs := parseAddrs(recorded(t, "guest-ip-addr.txt"))
	src, err := routeSource(recorded(t, "guest-ip-route-get.txt"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := chooseAdvertise("", src, ifs)
	if err != nil || got != "192.168.99.101" {
		t.Errorf("advertise %q, %v; interfaces %+v", got, err, ifs)
	}
	// And the driver's own reading of the same guest agrees.
	if ip := virtualbox.AddressFromIP(recorded(t, "guest-ip-link.txt"), recorded(t, "guest-ip-addr.txt"), "080027C0FFEE"); ip != got {
		t.Errorf("driver address %q, swarm %q", ip, got)
	}
}

func recorded(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "drivers", "virtualbox", "testdata", "vboxmanage", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Recorded on a dual-stack container host (docker network create --ipv6 --subnet fd00:77:1::/64).
const dualStackAddrs = `1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever preferred_lft forever
1: lo    inet6 ::1/128 scope host \       valid_lft forever preferred_lft forever
3350: eth0    inet 192.168.64.2/20 brd 192.168.79.255 scope global eth0\       valid_lft forever preferred_lft forever
3350: eth0    inet6 fd00:77:1::2/64 scope global nodad \       valid_lft forever preferred_lft forever
3350: eth0    inet6 fe80::42:c0ff:fea8:4002/64 scope link tentative \       valid_lft forever preferred_lft forever
`

// TestAdvertiseIPv6: a node that reaches its manager over IPv6 advertises its global IPv6
// address (not the link-local one), and listens on both families.
func TestAdvertiseIPv6(t *testing.T) {
	ifs := parseAddrs(dualStackAddrs)
	want := []iface{{"lo", "127.0.0.1", "127.0.0.1/8"}, {"eth0", "192.168.64.2", "192.168.64.2/20"}, {"eth0", "fd00:77:1::2", "fd00:77:1::2/64"}}
	if len(ifs) != len(want) || ifs[2] != want[2] || ifs[1] != want[1] {
		t.Fatalf("parsed %+v, want %+v", ifs, want)
	}
	src, err := routeSource("fd00:77:1::3 from :: dev eth0 proto kernel src fd00:77:1::2 metric 256 pref medium")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := chooseAdvertise("", src, ifs); err != nil || got != "fd00:77:1::2" {
		t.Errorf("ChooseAdvertise = %q, %v", got, err)
	}
	if got, _ := chooseAdvertise("eth0", src, ifs); got != "192.168.64.2" {
		t.Errorf("an interface override picks its IPv4 address first: %q", got)
	}
	for adv, want := range map[string]string{"fd00:77:1::2": "[::]:2377", "[fd00::1]:2377": "[::]:2377", "10.0.0.2": "0.0.0.0:2377", "eth0": "0.0.0.0:2377"} {
		if got := listenFor(adv); got != want {
			t.Errorf("listenFor(%q) = %q, want %q", adv, got, want)
		}
	}
}
