package preflight

import (
	"testing"
)

// Recorded on a container host: /proc/net/snmp's Udp lines and /proc/net/snmp6's Udp6 ones.
const snmpOut = `Ip: Forwarding DefaultTTL InReceives
Ip: 1 64 2000
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 1200 34 2 1500 0 0 0 7 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 9 9 9 9 0 0 0 0 0
Udp6InDatagrams                 	40
Udp6NoPorts                     	3
Udp6InErrors                    	0
Udp6OutDatagrams                	41
--- udp
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 1234: 00000000:12B5 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 51234 2 0000000000000000 0
--- udp6
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 5678: 00000000000000000000000000000000:1F0A 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 61234 2 0000000000000000 0
--- conntrack
ipv4     2 udp      17 29 src=172.21.0.3 dst=172.21.0.2 sport=51234 dport=4789 [UNREPLIED] src=172.21.0.2 dst=172.21.0.3 sport=4789 dport=51234 mark=0 zone=0 use=2
ipv6     10 udp      17 29 src=fd00:0077:0001:0000:0000:0000:0000:0003 dst=fd00:0077:0001:0000:0000:0000:0000:0002 sport=40000 dport=7946 [UNREPLIED] src=fd00:0077:0001:0000:0000:0000:0000:0002 dst=fd00:0077:0001:0000:0000:0000:0000:0003 sport=7946 dport=40000 mark=0 zone=0 use=2
`

func TestParseUDPCounts(t *testing.T) {
	u := parseUDPCounts(snmpOut)
	if u.V4.Delivered != 1200+2 || u.V4.NoPorts != 34 || u.V6.Delivered != 40 || u.V6.NoPorts != 3 {
		t.Errorf("got %+v", u)
	}
	// 4789 (0x12B5) is bound on IPv4 only: an IPv6 datagram to it is a NoPorts one. 7946 (0x1F0A)
	// is bound on :: and takes both.
	if got := u.received("172.21.0.2", 4789); got != u.V4.Delivered {
		t.Errorf("IPv4 to a bound port: %d", got)
	}
	if got := u.received("fd00::2", 4789); got != u.V6.NoPorts {
		t.Errorf("IPv6 to a port bound on IPv4 only: %d", got)
	}
	if !u.V4.Bound[7946] || !u.V6.Bound[7946] || u.V4.Bound[53] {
		t.Errorf("ports %v %v", u.V4.Bound, u.V6.Bound)
	}
	none := parseUDPCounts("")
	if arrived, ok := newFlow(none, u, "172.21.0.3", "172.21.0.2", 4789); !arrived || !ok {
		t.Errorf("the flow to 4789 from .3: %v %v (%v)", arrived, ok, u.V4.Flows)
	}
	if arrived, ok := newFlow(none, u, "fd00:77:1::3", "fd00:77:1::2", 7946); !arrived || !ok {
		t.Errorf("an IPv6 flow, written in full by conntrack: %v %v (%v)", arrived, ok, u.V6.Flows)
	}
	if arrived, _ := newFlow(u, u, "172.21.0.3", "172.21.0.2", 4789); arrived {
		t.Error("a flow that was there before is not the check's")
	}
	if arrived, ok := newFlow(none, u, "172.21.0.3", "172.21.0.2", 7946); arrived || !ok {
		t.Error("no flow to 7946: not arrived, but told")
	}
	v4only := parseUDPCounts("--- conntrack\nipv4     2 udp      17 29 src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 mark=0\n")
	if _, ok := newFlow(none, v4only, "fd00::3", "fd00::2", 7946); ok {
		t.Error("a host that tracks no IPv6 flows: the counters tell")
	}
}
