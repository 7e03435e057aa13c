package virtualbox

import (
	"bufio"
	"cmp"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/machine-tools/machine/drivers"
)

// ParseMachineReadable reads `showvminfo --machinereadable`: key="value" lines (keys quoted when
// they hold spaces or dashes, numbers unquoted). Lines of another shape, which VBoxManage prints
// too (`Encryption:     disabled`), are skipped.
func ParseMachineReadable(out string) map[string]string {
	m := map[string]string{}
	s := bufio.NewScanner(strings.NewReader(out))
	s.Buffer(make([]byte, 64*1024), 1<<20)
	for s.Scan() {
		line := s.Text()
		var key, rest string
		if strings.HasPrefix(line, `"`) {
			end := strings.Index(line[1:], `"=`)
			if end < 0 {
				continue
			}
			key, rest = line[1:1+end], line[end+3:]
		} else {
			k, r, ok := strings.Cut(line, "=")
			if !ok || k == "" || strings.ContainsAny(k, " :") {
				continue
			}
			key, rest = k, r
		}
		if len(rest) >= 2 && rest[0] == '"' && rest[len(rest)-1] == '"' {
			rest = rest[1 : len(rest)-1]
		}
		m[key] = rest
	}
	return m
}

// StateOf maps VirtualBox's VMState to the driver's states.
func StateOf(vmState string) drivers.State {
	switch vmState {
	case "running":
		return drivers.Running
	case "paused":
		return drivers.Paused
	case "poweroff", "saved", "aborted", "aborted-saved", "teleported":
		return drivers.Stopped
	case "starting", "restoring", "teleportingin":
		return drivers.Starting
	case "stopping", "saving":
		return drivers.Stopping
	}
	return drivers.Error
}

// HostOnlyIf is one host-only interface of `list hostonlyifs`.
type HostOnlyIf struct {
	Name        string
	DHCP        bool
	IP          net.IP
	Mask        net.IPMask
	Status      string
	NetworkName string // the name DHCP servers refer to
}

// colonBlocks reads the "Key: value" blocks, separated by blank lines, that `list` prints.
func colonBlocks(out string) []map[string]string {
	var blocks []map[string]string
	cur := map[string]string{}
	flush := func() {
		if len(cur) > 0 {
			blocks = append(blocks, cur)
			cur = map[string]string{}
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if strings.HasPrefix(line, " ") {
			continue // nested detail lines (dhcpservers' configuration)
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if _, dup := cur[k]; !dup {
			cur[k] = strings.TrimSpace(v)
		}
	}
	flush()
	return blocks
}

// ParseHostOnlyIfs reads `list hostonlyifs`.
func ParseHostOnlyIfs(out string) []HostOnlyIf {
	var ifs []HostOnlyIf
	for _, b := range colonBlocks(out) {
		if b["Name"] == "" {
			continue
		}
		h := HostOnlyIf{Name: b["Name"], DHCP: b["DHCP"] != "Disabled", IP: net.ParseIP(b["IPAddress"]),
			Status: b["Status"], NetworkName: b["VBoxNetworkName"]}
		if m := net.ParseIP(b["NetworkMask"]).To4(); m != nil {
			h.Mask = net.IPv4Mask(m[0], m[1], m[2], m[3])
		}
		if h.NetworkName == "" {
			h.NetworkName = "HostInterfaceNetworking-" + h.Name
		}
		ifs = append(ifs, h)
	}
	return ifs
}

// DHCPServer is one server of `list dhcpservers`.
type DHCPServer struct {
	NetworkName, IP, Mask, Lower, Upper string
	Enabled                             bool
}

// On says whether the server hands out addresses of n, from an address of n.
func (s DHCPServer) On(n *net.IPNet) bool {
	for _, a := range []string{s.IP, s.Lower, s.Upper} {
		if ip := net.ParseIP(a); ip == nil || !n.Contains(ip) {
			return false
		}
	}
	return s.Mask == net.IP(n.Mask).String()
}

// ParseDHCPServers reads `list dhcpservers`, by network name. Since VirtualBox 6.1 the server's
// own address is "Dhcpd IP" and its range "LowerIPAddress"/"UpperIPAddress"; before, "IP" and
// "lowerIPAddress"/"upperIPAddress" (as docker-machine's driver read them).
func ParseDHCPServers(out string) map[string]DHCPServer {
	m := map[string]DHCPServer{}
	for _, b := range colonBlocks(out) {
		if n := b["NetworkName"]; n != "" {
			m[n] = DHCPServer{NetworkName: n, IP: cmp.Or(b["Dhcpd IP"], b["IP"]), Mask: b["NetworkMask"],
				Lower: cmp.Or(b["LowerIPAddress"], b["lowerIPAddress"]), Upper: cmp.Or(b["UpperIPAddress"], b["upperIPAddress"]), Enabled: b["Enabled"] == "Yes"}
		}
	}
	return m
}

var reCreatedIf = regexp.MustCompile(`Interface '([^']+)' was successfully created`)

// ParseCreatedIf reads the interface name from `hostonlyif create`.
func ParseCreatedIf(out string) (string, error) {
	m := reCreatedIf.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("VBoxManage hostonlyif create did not name the interface it made: %q", strings.TrimSpace(out))
	}
	return m[1], nil
}

var reSettingsFile = regexp.MustCompile(`(?m)^Settings file: '([^']+)'`)

// ParseSettingsFile reads the VM's settings file from `createvm`.
func ParseSettingsFile(out string) (string, error) {
	m := reSettingsFile.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("VBoxManage createvm did not name the settings file: %q", strings.TrimSpace(out))
	}
	return m[1], nil
}

var reCapacity = regexp.MustCompile(`(?m)^Capacity:\s+(\d+) MBytes`)

// ParseCapacityMB reads a disk's size from `showmediuminfo`.
func ParseCapacityMB(out string) (int, error) {
	m := reCapacity.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("VBoxManage showmediuminfo gave no capacity: %q", strings.TrimSpace(out))
	}
	return strconv.Atoi(m[1])
}

var (
	reProp7 = regexp.MustCompile(`^(/\S+)\s*= '(.*)' @ `)
	reProp6 = regexp.MustCompile(`^Name: (\S+), value: (.*), timestamp: `)
)

// ParseGuestProperties reads `guestproperty enumerate` in both of its formats (7.x and 6.x).
func ParseGuestProperties(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		if p := reProp7.FindStringSubmatch(line); p != nil {
			m[p[1]] = p[2]
		} else if p := reProp6.FindStringSubmatch(line); p != nil {
			m[p[1]] = p[2]
		}
	}
	return m
}

// normMAC makes 080027C0FFEE and 08:00:27:c0:ff:ee compare equal.
func normMAC(s string) string {
	return strings.ToLower(strings.NewReplacer(":", "", "-", "").Replace(strings.TrimSpace(s)))
}

// AddressFromGuestProperties finds the IPv4 address of the NIC with mac (Guest Additions report
// each NIC's MAC and address).
func AddressFromGuestProperties(props map[string]string, mac string) string {
	for k, v := range props {
		if !strings.HasPrefix(k, "/VirtualBox/GuestInfo/Net/") || !strings.HasSuffix(k, "/MAC") || normMAC(v) != normMAC(mac) {
			continue
		}
		ip := props[strings.TrimSuffix(k, "/MAC")+"/V4/IP"]
		if net.ParseIP(ip) != nil {
			return ip
		}
	}
	return ""
}

// AddressFromIP finds the IPv4 address of the NIC with mac in a guest's `ip -o link` and
// `ip -o -4 addr` outputs.
func AddressFromIP(links, addrs, mac string) string {
	ifname := ""
	for _, line := range strings.Split(links, "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "link/ether" && normMAC(f[i+1]) == normMAC(mac) && len(f) > 1 {
				ifname = strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":")
			}
		}
	}
	if ifname == "" {
		return ""
	}
	for _, line := range strings.Split(addrs, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[1] == ifname && f[2] == "inet" {
			if ip, _, err := net.ParseCIDR(f[3]); err == nil {
				return ip.String()
			}
		}
	}
	return ""
}
