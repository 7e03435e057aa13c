package preflight

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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

// Recorded on a container host (a manager just out of its swarm), trimmed: what udpReceived's
// one `cat` prints, the files one after another with no marks between them.
const catOut = `Ip: Forwarding DefaultTTL InReceives InHdrErrors
Ip: 1 64 66338 0
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 10394 9576 0 336 0 0 0 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 0 0 0 0 0 0 0 0
Ip6InReceives                   	0
Udp6InDatagrams                 	0
Udp6NoPorts                     	0
Udp6InErrors                    	0
UdpLite6InDatagrams             	0
   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops  
  655: 0B00007F:E80E 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 19701536 2 00000000570cb2f5 0  
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
ipv4     2 tcp      6 44 TIME_WAIT src=172.18.0.3 dst=172.18.0.6 sport=38130 dport=7946 src=172.18.0.6 dst=172.18.0.3 sport=7946 dport=38130 [ASSURED] mark=0 zone=0 use=2
ipv4     2 udp      17 51 src=172.18.0.6 dst=172.18.0.3 sport=7946 dport=7946 src=172.18.0.3 dst=172.18.0.6 sport=7946 dport=7946 [ASSURED] mark=0 zone=0 use=2
ipv4     2 udp      17 52 src=172.18.0.2 dst=172.18.0.6 sport=7946 dport=7946 src=172.18.0.6 dst=172.18.0.2 sport=7946 dport=7946 [ASSURED] mark=0 zone=0 use=2
`

func TestParseUDPCountsOneCat(t *testing.T) {
	u := parseUDPCounts(catOut)
	if u.V4.Delivered != 10394 || u.V4.NoPorts != 9576 || u.V6.Delivered != 0 {
		t.Errorf("counters: %+v", u)
	}
	if !u.V4.Bound[0xE80E] || len(u.V4.Bound) != 1 || len(u.V6.Bound) != 0 {
		t.Errorf("bound ports: %v %v", u.V4.Bound, u.V6.Bound)
	}
	if !u.V4.Tracks || u.V6.Tracks || len(u.V4.Flows) != 2 {
		t.Errorf("tracking: v4 %v v6 %v, flows %v", u.V4.Tracks, u.V6.Tracks, u.V4.Flows)
	}
	// A host that tracks connections (a TCP entry is enough) but holds no UDP flow yet: a
	// burst that made none was stopped by its firewall.
	tcpOnly := parseUDPCounts("ipv4     2 tcp      6 44 TIME_WAIT src=1.1.1.1 dst=2.2.2.2 sport=1 dport=22 mark=0\n")
	if arrived, ok := newFlow(tcpOnly, tcpOnly, "1.1.1.1", "2.2.2.2", 4789); arrived || !ok {
		t.Errorf("tracked, no flow: %v %v", arrived, ok)
	}
	if _, ok := newFlow(parseUDPCounts(""), parseUDPCounts(""), "1.1.1.1", "2.2.2.2", 4789); ok {
		t.Error("no connection tracking: the counters tell")
	}
}

// Checks at once share readings: a reading begun before a caller's moment is never its answer,
// and callers waiting together are answered by one reading.
func TestReadingsShared(t *testing.T) {
	var n atomic.Int32
	gate := make(chan struct{})
	r := &readings{read: func(ctx context.Context) (udpCounts, error) {
		k := n.Add(1)
		if k == 1 {
			<-gate // the first reading is slow
		}
		return udpCounts{V4: udpFamily{Delivered: int(k)}}, nil
	}}
	ctx := context.Background()
	first := make(chan udpCounts)
	go func() { u, _ := r.since(ctx, time.Time{}); first <- u }()
	for n.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// Three callers whose moment is after the first reading began: they wait for it to end,
	// then share the next one.
	moment := time.Now()
	var wg sync.WaitGroup
	got := make([]int, 3)
	for i := range got {
		wg.Go(func() {
			u, err := r.since(ctx, moment)
			if err != nil {
				t.Error(err)
			}
			got[i] = u.V4.Delivered
		})
	}
	time.Sleep(20 * time.Millisecond)
	close(gate)
	if u := <-first; u.V4.Delivered != 1 {
		t.Errorf("the first caller got reading %d", u.V4.Delivered)
	}
	wg.Wait()
	for i, g := range got {
		if g == 1 {
			t.Errorf("caller %d got the reading begun before its moment", i)
		}
	}
	if k := n.Load(); k > 3 {
		t.Errorf("%d readings for 4 callers (1 + the 3 sharing at most 2)", k)
	}
	// A caller content with a reading of a moment ago gets the last one without a read.
	before := n.Load()
	if _, err := r.since(ctx, time.Now().Add(-recentEnough)); err != nil || n.Load() != before {
		t.Errorf("a recent reading was read again (%d → %d): %v", before, n.Load(), err)
	}
	// A cancelled wait ends at once.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	r2 := &readings{read: func(ctx context.Context) (udpCounts, error) { <-ctx.Done(); return udpCounts{}, ctx.Err() }}
	if _, err := r2.since(cctx, time.Now()); err == nil {
		t.Error("a cancelled reading returned no error")
	}
}
