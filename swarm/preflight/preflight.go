// Package preflight checks, before a node joins a swarm, that the ports a swarm needs are open
// between it and a manager: TCP dialled by the node's sshd, UDP sent by the node and looked for
// on the manager (its connection tracking, or its counters). Each blocked port is an error that
// says which way and how to open it.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/machine-tools/machine/internal/runner"
	"github.com/machine-tools/machine/internal/sshclient"
)

// PortsHelp says which ports a swarm needs.
const PortsHelp = "swarm needs 2377/tcp (managers), 7946/tcp+udp and 4789/udp between all nodes"

// End is one end of a check: a node's SSH connection, its name and the address it is reached at.
type End struct {
	SSH  *sshclient.Client
	Name string
	Addr string
	// readings, when set, are the receiver's UDP state read for several checks at once
	// (Manager's); without it each check reads its own over SSH.
	readings *readings
}

// counts is to's UDP state from a reading begun at or after since.
func (to End) counts(ctx context.Context, since time.Time) (udpCounts, error) {
	if to.readings != nil {
		return to.readings.since(ctx, since)
	}
	return udpReceived(ctx, to.SSH)
}

// Port is one port a swarm needs between its nodes.
type Port struct {
	Number int
	Proto  string // tcp or udp
	What   string
}

func (p Port) String() string { return fmt.Sprintf("%d/%s", p.Number, p.Proto) }

// Ports a joiner needs to reach on a manager; the data ports are needed both ways.
var (
	ManagerPort = Port{2377, "tcp", "cluster management"}
	DataPorts   = []Port{{7946, "tcp", "node gossip"}, {7946, "udp", "node gossip"}, {4789, "udp", "overlay network traffic (VXLAN)"}}
)

// BlockedError is a port that one node cannot reach on another.
type BlockedError struct {
	Port               Port
	From, FromAddr     string
	To, ToAddr, Detail string
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("%s (%s) cannot reach %s (%s) on %s, %s (%s): open it on %s and anything between them, e.g. `iptables -I INPUT -p %s --dport %d -j ACCEPT` or `ufw allow %s`",
		e.From, e.FromAddr, e.To, e.ToAddr, e.Port, e.Port.What, e.Detail, e.To, e.Port.Proto, e.Port.Number, e.Port)
}

// UnreachableError is a node that cannot reach the manager's 2377/tcp (no other port is checked then).
type UnreachableError struct{ msg string }

func (e *UnreachableError) Error() string { return e.msg }

// udpSendScript sends $2 datagrams to $1 on each port that follows (bash's /dev/udp; an ICMP
// "port unreachable" makes a few writes fail: those datagrams did arrive).
const udpSendScript = `command -v bash >/dev/null || exit 42
exec bash -c 'a=$1 n=$2; shift 2; for p in "$@"; do exec 3>/dev/udp/$a/$p || exit 43; i=0; while [ $i -lt $n ]; do printf x >&3 2>/dev/null; i=$((i+1)); done; done' bash "$@"`

// Probes is how many datagrams a UDP check sends, as fast as bash writes them; at least a
// tenth must be counted: such a burst overflows queues on the way (measured here: 28 to 45% of an
// open port's datagrams counted, 0 of a dropped one). Other traffic only adds to the count, and
// would need 100 datagrams in the check's tenth of a second to hide a blocked port.
const Probes = 1000

// udpFlowProbes is a burst's size towards a host known to track flows: one datagram that gets
// in makes the flow.
const udpFlowProbes = 20

// Ports checks from's reach to to's address on ports. TCP is dialled by from's sshd; UDP
// datagrams are sent by from and looked for on to: a new flow from from in its connection
// tracking (which confirms only what its firewall let in), or, when it tracks nothing, its UDP
// counters (which a dropped datagram never reaches). With to.SSH nil, UDP is not checked. together:
// the UDP ports in one burst, which only a host known to track flows can tell apart (its
// counters are the host's, one port at a time). tracked: every UDP port was judged by a flow
// (then other senders' checks against to may run at the same time: a flow names its sender).
// probes is each burst's size (Probes, or udpFlowProbes for a host known to track flows).
func Ports(ctx context.Context, from, to End, ports []Port, together bool, probes int) (tracked bool, err error) {
	fromName, fromAddr, toName, toAddr := from.Name, from.Addr, to.Name, to.Addr
	var errs []error
	blocked := func(p Port, detail string) {
		errs = append(errs, &BlockedError{Port: p, From: fromName, FromAddr: fromAddr, To: toName, ToAddr: toAddr, Detail: detail})
	}
	var groups [][]Port
	for i, p := range ports {
		if p.Proto != "tcp" {
			if to.SSH == nil {
				continue
			}
			if together && len(groups) > 0 {
				groups[0] = append(groups[0], p)
			} else {
				groups = append(groups, []Port{p})
			}
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, 4*time.Second)
		c, err := from.SSH.Conn().DialContext(dctx, "tcp", net.JoinHostPort(toAddr, strconv.Itoa(p.Number)))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			if i == 0 && p == ManagerPort { // nothing gets through: say so once
				return false, &UnreachableError{fmt.Sprintf("%s (%s) cannot reach manager %s at %s (%s): %s", fromName, fromAddr, toName, net.JoinHostPort(toAddr, "2377"), shortErr(err), PortsHelp)}
			}
			blocked(p, shortErr(err))
			continue
		}
		c.Close()
	}
	tracked = len(groups) > 0
	for _, pending := range groups {
		// A burst can be lost on the way (queues overflow); a blocked port stays blocked: three
		// tries before it is called so.
		var details map[Port]string
		for try := 0; try < 3 && len(pending) > 0; try++ {
			var flows bool
			details, flows, err = udpTry(ctx, from, to, pending, probes)
			if errors.Is(err, errNoBash) {
				return false, oneLine(errs) // no bash on the node: UDP is not checked
			} else if err != nil {
				return false, err
			}
			tracked = tracked && flows
			var still []Port
			for _, p := range pending {
				if details[p] != "" {
					still = append(still, p)
				}
			}
			pending = still
		}
		for _, p := range pending {
			blocked(p, details[p])
		}
	}
	return tracked, oneLine(errs)
}

var errNoBash = errors.New("no bash on the node")

// udpTry sends one burst from from to each of to's ports and says, for those where too little
// of it arrived, how much did; tracked: the receiver's connection tracking judged them all
// (not its counters).
func udpTry(ctx context.Context, from, to End, ports []Port, probes int) (details map[Port]string, tracked bool, err error) {
	fromName, fromAddr, toName, toAddr := from.Name, from.Addr, to.Name, to.Addr
	// A flow names its sender: any reading of a moment ago will do as the one before. The
	// counters are the host's: they need one read just now.
	before, err := to.counts(ctx, time.Now().Add(-recentEnough))
	if err == nil && !before.family(toAddr).Tracks {
		before, err = to.counts(ctx, time.Now())
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s: reading its UDP counters: %w", toName, err)
	}
	argv := []string{"sh", "-c", udpSendScript, "sh", toAddr, strconv.Itoa(probes)}
	for _, p := range ports {
		argv = append(argv, strconv.Itoa(p.Number))
	}
	if _, err := from.SSH.Run(ctx, nil, argv...); err != nil {
		var ce *runner.CommandError
		if errors.As(err, &ce) && ce.ExitCode == 42 {
			return nil, false, errNoBash
		}
		return nil, false, fmt.Errorf("%s: sending UDP to %s: %w", fromName, toAddr, err)
	}
	after, err := to.counts(ctx, time.Now())
	if err != nil {
		return nil, false, fmt.Errorf("%s: reading its UDP counters: %w", toName, err)
	}
	details, tracked = map[Port]string{}, true
	for _, p := range ports {
		if arrived, ok := newFlow(before, after, fromAddr, toAddr, p.Number); ok {
			if !arrived {
				details[p] = fmt.Sprintf("none of %d datagrams got past its firewall", probes)
			}
			continue
		}
		tracked = false
		if got := after.received(toAddr, p.Number) - before.received(toAddr, p.Number); got < probes/10 {
			details[p] = fmt.Sprintf("%d of %d datagrams arrived", max(0, got), probes)
		}
	}
	return details, tracked, nil
}

// lineErrors are several errors printed on one line.
type lineErrors []error

func (l lineErrors) Error() string {
	var s []string
	for _, e := range l {
		s = append(s, e.Error())
	}
	return strings.Join(s, "; ")
}

func (l lineErrors) Unwrap() []error { return l }

func oneLine(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return lineErrors(errs)
}

// udpFamily is one address family's UDP state on a host: datagrams delivered to sockets (or
// dropped by a full one), datagrams to ports no socket has, the ports its sockets have, whether
// its connection tracking holds any entry of the family (then it tracks what arrives), and the
// UDP flows it confirmed (a datagram its firewall dropped is never confirmed), as
// "src>dst:dport/sport".
type udpFamily struct {
	Delivered, NoPorts int
	Bound              map[int]bool
	Tracks             bool
	Flows              map[string]bool
}

// udpCounts are a host's UDP state, IPv4 and IPv6.
type udpCounts struct{ V4, V6 udpFamily }

func (u udpCounts) family(addr string) udpFamily {
	if ip := net.ParseIP(addr); ip != nil && ip.To4() == nil {
		return u.V6
	}
	return u.V4
}

// newFlow tells whether after has a flow from src to dst:port that before had not: a datagram
// of the check got in. ok is false when the host tracks no connections of that family (the
// counters tell then).
func newFlow(before, after udpCounts, src, dst string, port int) (arrived, ok bool) {
	a, b := after.family(dst), before.family(dst)
	if !a.Tracks {
		return false, false
	}
	prefix := fmt.Sprintf("%s>%s:%d/", normIP(src), normIP(dst), port)
	for f := range a.Flows {
		if strings.HasPrefix(f, prefix) && !b.Flows[f] {
			return true, true
		}
	}
	return false, true
}

// received is what counts datagrams to dst:port: a bound port's are delivered, an unbound one's
// are counted as NoPorts (which little else adds to).
func (u udpCounts) received(dst string, port int) int {
	f := u.family(dst)
	if f.Bound[port] {
		return f.Delivered
	}
	return f.NoPorts
}

// udpReceived reads a host's UDP state: one process on it (the login shell runs cat itself; a
// host without connection tracking has no nf_conntrack, which cat says on stderr).
func udpReceived(ctx context.Context, c *sshclient.Client) (udpCounts, error) {
	out, err := c.Run(ctx, nil, "cat", "/proc/net/snmp", "/proc/net/snmp6", "/proc/net/udp", "/proc/net/udp6", "/proc/net/nf_conntrack")
	if err != nil && len(out) == 0 {
		return udpCounts{}, err
	}
	return parseUDPCounts(string(out)), nil
}

// parseUDPCounts reads, each line known by its form, /proc/net/snmp's Udp lines and
// /proc/net/snmp6's Udp6 ones, the local ports of /proc/net/udp and udp6 (a socket on :: takes
// IPv4 too), and /proc/net/nf_conntrack's entries (its UDP flows kept). "--- NAME" lines
// between them are passed over.
func parseUDPCounts(out string) udpCounts {
	fam := func() udpFamily { return udpFamily{Bound: map[int]bool{}, Flows: map[string]bool{}} }
	u := udpCounts{V4: fam(), V6: fam()}
	var header []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 1 && f[0] == "Udp:" && header == nil:
			header = f
		case len(f) > 1 && f[0] == "Udp:":
			for i := 1; i < len(f) && i < len(header); i++ {
				n, _ := strconv.Atoi(f[i])
				switch header[i] {
				case "InDatagrams", "InErrors":
					u.V4.Delivered += n
				case "NoPorts":
					u.V4.NoPorts += n
				}
			}
			header = nil
		case len(f) == 2 && (f[0] == "Udp6InDatagrams" || f[0] == "Udp6InErrors"):
			n, _ := strconv.Atoi(f[1])
			u.V6.Delivered += n
		case len(f) == 2 && f[0] == "Udp6NoPorts":
			n, _ := strconv.Atoi(f[1])
			u.V6.NoPorts += n
		case len(f) > 2 && strings.HasSuffix(f[0], ":") && strings.Contains(f[1], ":"):
			// "  12: 00000000:1EE2 00000000:0000 07 ...": a socket's local address:port in hex,
			// 8 digits for IPv4, 32 for IPv6
			i := strings.LastIndex(f[1], ":")
			p, err := strconv.ParseInt(f[1][i+1:], 16, 32)
			if err != nil {
				continue
			}
			switch i {
			case 8:
				u.V4.Bound[int(p)] = true
			case 32:
				u.V6.Bound[int(p)] = true
				if strings.Trim(f[1][:i], "0") == "" { // :: (dual-stack unless v6only)
					u.V4.Bound[int(p)] = true
				}
			}
		case len(f) > 3 && (f[0] == "ipv4" || f[0] == "ipv6"):
			// "ipv4 2 udp 17 29 src=A dst=B sport=S dport=P ...": an entry, its first direction
			target := &u.V4
			if f[0] == "ipv6" {
				target = &u.V6
			}
			target.Tracks = true
			if f[2] != "udp" {
				continue
			}
			kv := map[string]string{}
			for _, x := range f[3:] {
				if k, v, ok := strings.Cut(x, "="); ok {
					if _, seen := kv[k]; !seen {
						kv[k] = v
					}
				}
			}
			target.Flows[normIP(kv["src"])+">"+normIP(kv["dst"])+":"+kv["dport"]+"/"+kv["sport"]] = true
		}
	}
	return u
}

// recentEnough is how old a reading may be to stand as the one before a check's burst, when
// flows tell: a flow names its sender and its source port, which each burst picks anew.
const recentEnough = 5 * time.Second

// readings reads a host's UDP state for many checks at once: each asks for a reading begun
// after a moment of its own (after its burst), and all who wait at one time share one.
type readings struct {
	read func(context.Context) (udpCounts, error)
	mu   sync.Mutex
	cur  *reading // under way
	last *reading // the last one read whole
}

type reading struct {
	began time.Time
	done  chan struct{}
	u     udpCounts
	err   error
}

// since returns a reading begun at or after t.
func (r *readings) since(ctx context.Context, t time.Time) (udpCounts, error) {
	for {
		r.mu.Lock()
		if r.last != nil && !r.last.began.Before(t) {
			u := r.last.u
			r.mu.Unlock()
			return u, nil
		}
		g, mine := r.cur, false
		if g == nil {
			g, mine = &reading{began: time.Now(), done: make(chan struct{})}, true
			r.cur = g
		}
		r.mu.Unlock()
		if mine {
			g.u, g.err = r.read(ctx)
			r.mu.Lock()
			r.cur = nil
			if g.err == nil {
				r.last = g
			}
			r.mu.Unlock()
			close(g.done)
		} else {
			select {
			case <-g.done:
			case <-ctx.Done():
				return udpCounts{}, ctx.Err()
			}
		}
		switch {
		case g.began.Before(t): // begun before this caller's moment: the next one
		case g.err != nil && !mine && ctx.Err() == nil && (errors.Is(g.err, context.Canceled) || errors.Is(g.err, context.DeadlineExceeded)):
			// the reader's own wait ended, not this one's: read again
		case g.err != nil:
			return udpCounts{}, g.err
		default:
			return g.u, nil
		}
	}
}

func shortErr(err error) string {
	if errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err) {
		return "no answer within 4s: dropped on the way"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && i+2 < len(s) {
		return s[i+2:]
	}
	return s
}

// Manager checks joiners' reach to one manager over one SSH connection to it (opened by Warm
// or the first check; without it, UDP is not checked). The manager's UDP state is read for
// several checks at once. When its connection tracking holds entries of the address's family,
// each check is judged by the flows its burst made (a flow names its sender), and checks run at
// the same time; when it does not, by the manager's counters, which are the host's: one check
// at a time, and once its tracking has judged one, the rest at once.
type Manager struct {
	name     string
	dial     func(context.Context) (*sshclient.Client, error)
	once     sync.Once
	mc       *sshclient.Client
	readings *readings
	first    udpCounts // the manager's state when its connection was opened
	firstOK  bool
	mu       sync.Mutex
	tracked  atomic.Bool
}

// NewManager checks joiners against the manager of that name, reached over SSH with dial.
func NewManager(name string, dial func(context.Context) (*sshclient.Client, error)) *Manager {
	return &Manager{name: name, dial: dial}
}

// Warm opens the connection to the manager and reads its UDP state, once: a caller may start it
// while the manager is still being made ready, so that the first check need not wait for it.
func (pf *Manager) Warm(ctx context.Context) {
	pf.once.Do(func() {
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if pf.mc, _ = pf.dial(dctx); pf.mc == nil { // without it, UDP is not checked
			return
		}
		mc := pf.mc
		pf.readings = &readings{read: func(ctx context.Context) (udpCounts, error) { return udpReceived(ctx, mc) }}
		u, err := pf.readings.since(ctx, time.Time{})
		pf.first, pf.firstOK = u, err == nil
	})
}

// Check checks from's reach to the manager at maddr: 2377/tcp and the data ports.
func (pf *Manager) Check(ctx context.Context, from End, maddr string) error {
	pf.Warm(ctx)
	if from.Addr == "" {
		from.Addr = "its route source unknown"
	}
	to := End{SSH: pf.mc, Name: pf.name, Addr: maddr, readings: pf.readings}
	ports := []Port{ManagerPort, DataPorts[0]}
	if pf.mc != nil {
		ports = append(ports, DataPorts[1:]...)
	}
	if pf.tracked.Load() || (pf.firstOK && pf.first.family(maddr).Tracks) {
		_, err := Ports(ctx, from, to, ports, true, udpFlowProbes)
		return err
	}
	pf.mu.Lock()
	if pf.tracked.Load() { // judged by another check while this one waited
		pf.mu.Unlock()
		_, err := Ports(ctx, from, to, ports, true, udpFlowProbes)
		return err
	}
	defer pf.mu.Unlock()
	// The first check of a manager: all UDP ports in one burst; when its connection tracking
	// did not judge them, again one port at a time, by its counters.
	tracked, err := Ports(ctx, from, to, ports, true, Probes)
	var unreachable *UnreachableError
	if !tracked && pf.mc != nil && ctx.Err() == nil && !errors.As(err, &unreachable) {
		_, err = Ports(ctx, from, to, ports, false, Probes)
	}
	pf.tracked.Store(tracked)
	return err
}

// Close closes the connection to the manager (after a Warm under way has ended).
func (pf *Manager) Close() {
	pf.once.Do(func() {})
	if pf.mc != nil {
		pf.mc.Close()
	}
}

// Lines are an error of Ports as lines, one a blocked port.
func Lines(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{err.Error()}
}

// normIP writes an address one way (conntrack prints IPv6 addresses in full).
func normIP(s string) string {
	if ip := net.ParseIP(s); ip != nil {
		return ip.String()
	}
	return s
}
