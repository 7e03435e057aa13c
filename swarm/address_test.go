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
	ifs := ParseAddrs(twoNICAddrs)
	if len(ifs) != 4 || ifs[2].Name != "eth1" || ifs[2].Addr != "192.168.99.101" {
		t.Fatalf("parsed %+v", ifs)
	}
	src, err := RouteSource("192.168.99.100 dev eth1 src 192.168.99.101 uid 0 \\    cache ")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ChooseAdvertise("", src, ifs)
	if err != nil || got != "192.168.99.101" {
		t.Fatalf("ChooseAdvertise = %q, %v: want the host-only address", got, err)
	}
	if got, _ := ChooseAdvertise("eth0", src, ifs); got != "10.0.2.15" {
		t.Errorf("an interface override gave %q", got)
	}
	if got, _ := ChooseAdvertise("10.0.2.15", src, ifs); got != "10.0.2.15" {
		t.Errorf("an address override gave %q", got)
	}
	if _, err := ChooseAdvertise("10.9.9.9", src, ifs); err == nil || !strings.Contains(err.Error(), "eth1=192.168.99.101") {
		t.Errorf("a foreign override should be refused, listing the node's addresses: %v", err)
	}
	if _, err := ChooseAdvertise("", "10.8.0.1", ifs); err == nil {
		t.Error("a route source the node does not have must be refused")
	}
	if _, err := RouteSource("unreachable 10.1.1.1"); err == nil {
		t.Error("no src must be an error")
	}
}

// TestSwarmAdvertiseOnRecordedTwoNICGuest: on a VirtualBox guest with NAT (10.0.2.15, the same
// on every VM) and host-only (192.168.99.101) NICs, the swarm layer's choice is the host-only
// address, from the guest's own route to the manager.
func TestSwarmAdvertiseOnRecordedTwoNICGuest(t *testing.T) {
	ifs := ParseAddrs(recorded(t, "guest-ip-addr.txt"))
	src, err := RouteSource(recorded(t, "guest-ip-route-get.txt"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ChooseAdvertise("", src, ifs)
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
