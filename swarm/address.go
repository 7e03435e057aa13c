package swarm

import (
	"fmt"
	"net/netip"
	"strings"
)

// routeSource parses `ip -o route get ADDR` and returns the source address the kernel would use.
func routeSource(out string) (string, error) {
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "src" {
			if _, err := netip.ParseAddr(f[i+1]); err != nil {
				return "", fmt.Errorf("route lookup gave a bad source %q", f[i+1])
			}
			return f[i+1], nil
		}
	}
	return "", fmt.Errorf("route lookup gave no source address: %q", strings.TrimSpace(out))
}

// iface is one address of a host's interface (IPv4, or IPv6 of global scope).
type iface struct {
	Name string
	Addr string
	CIDR string // the address with its network's length, as listed ("172.19.0.2/16")
}

// parseAddrs parses `ip -o addr show`: IPv4 addresses, and IPv6 ones of global scope (not
// link-local ones, which need a zone, nor ::1).
func parseAddrs(out string) []iface {
	var ifs []iface
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		// 2: eth0    inet 172.19.0.2/16 brd ... scope global eth0
		// 2: eth0    inet6 fd00::2/64 scope global nodad \       valid_lft forever ...
		if strings.Contains(line, " inet6 ") && !strings.Contains(line, "scope global") {
			continue
		}
		for i := 0; i+1 < len(f); i++ {
			if (f[i] == "inet" || f[i] == "inet6") && len(f) > 1 {
				name := strings.TrimSuffix(f[1], ":")
				addr := strings.Split(f[i+1], "/")[0]
				ifs = append(ifs, iface{Name: name, Addr: addr, CIDR: f[i+1]})
				break
			}
		}
	}
	return ifs
}

// chooseAdvertise picks a node's advertise address: an explicit override (an address of the node
// or one of its interfaces' names) wins; otherwise the source address the node's kernel uses to
// reach the manager, which must be one of the node's own addresses.
func chooseAdvertise(override, routeSrc string, ifs []iface) (string, error) {
	if override != "" {
		if _, err := netip.ParseAddr(override); err == nil {
			for _, i := range ifs {
				if i.Addr == override {
					return override, nil
				}
			}
			return "", fmt.Errorf("--advertise-addr %s is not an address of the node (it has %s)", override, describe(ifs))
		}
		for _, i := range ifs {
			if i.Name == override {
				return i.Addr, nil
			}
		}
		return "", fmt.Errorf("--advertise-addr %s: the node has no interface or address of that name (it has %s)", override, describe(ifs))
	}
	for _, i := range ifs {
		if i.Addr == routeSrc {
			return routeSrc, nil
		}
	}
	return "", fmt.Errorf("the node reaches the manager from %s, which is not one of its interfaces (%s): pass --advertise-addr", routeSrc, describe(ifs))
}

func describe(ifs []iface) string {
	var s []string
	for _, i := range ifs {
		s = append(s, i.Name+"="+i.Addr)
	}
	return strings.Join(s, ", ")
}
