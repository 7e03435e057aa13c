package swarm

import (
	"reflect"
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
`

func TestParseUDPReceived(t *testing.T) {
	if got := ParseUDPReceived(snmpOut); got != 1200+34+2+40+3 {
		t.Errorf("got %d", got)
	}
}

func TestArrivedUDP(t *testing.T) {
	counts := []int{200, 600}
	for got, want := range map[int][]bool{
		0: {false, false}, 30: {false, false}, // background traffic only
		195: {true, false}, 240: {true, false}, // a few cancelled, a few added
		590: {false, true}, 640: {false, true},
		795: {true, true}, 850: {true, true},
	} {
		if res := ArrivedUDP(got, counts); !reflect.DeepEqual(res, want) {
			t.Errorf("%d arrived: %v, want %v", got, res, want)
		}
	}
}
