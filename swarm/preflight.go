package swarm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/machine-tools/machine/internal/runner"
	"github.com/machine-tools/machine/internal/sshclient"
	"github.com/machine-tools/machine/machine"
)

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

// udpSendScript sends datagrams to $1: $3 to port $2, then $5 to port $4 ... (bash's
// /dev/udp; an ICMP "port unreachable" makes some writes fail: those datagrams did arrive).
const udpSendScript = `command -v bash >/dev/null || exit 42
exec bash -c 'a=$1; shift; while [ $# -ge 2 ]; do exec 3>/dev/udp/$a/$1 || exit 43; i=0; while [ $i -lt $2 ]; do printf x >&3 2>/dev/null; i=$((i+1)); done; exec 3>&-; shift 2; done' bash "$@"`

// udpCounts are the datagrams sent to each UDP port in one check: counts whose sums are all
// different (and far apart), so that the receiver's one counter tells which ports let them in.
var udpCounts = []int{200, 600, 1800}

// checkPorts checks from's reach to to's address on ports. TCP is dialled by from's sshd; UDP
// datagrams are sent by from and counted by to's kernel (its UDP counters: a datagram that a
// firewall drops is never counted), every UDP port in one round (a different count to each).
// With to nil, UDP is not checked.
func checkPorts(ctx context.Context, from *sshclient.Client, fromName, fromAddr string, to *sshclient.Client, toName, toAddr string, ports []Port) error {
	var errs []error
	blocked := func(p Port, detail string) {
		errs = append(errs, &BlockedError{Port: p, From: fromName, FromAddr: fromAddr, To: toName, ToAddr: toAddr, Detail: detail})
	}
	var udp []Port
	for _, p := range ports {
		if p.Proto == "udp" {
			udp = append(udp, p)
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, 4*time.Second)
		c, err := from.Conn().DialContext(dctx, "tcp", net.JoinHostPort(toAddr, strconv.Itoa(p.Number)))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			blocked(p, shortErr(err))
			continue
		}
		c.Close()
	}
	if to == nil || len(udp) == 0 || len(udp) > len(udpCounts) {
		return errors.Join(errs...)
	}
	before, err := udpReceived(ctx, to)
	if err != nil {
		return fmt.Errorf("%s: reading its UDP counters: %w", toName, err)
	}
	argv := []string{"sh", "-c", udpSendScript, "sh", toAddr}
	for i, p := range udp {
		argv = append(argv, strconv.Itoa(p.Number), strconv.Itoa(udpCounts[i]))
	}
	if _, err := from.Run(ctx, nil, argv...); err != nil {
		var ce *runner.CommandError
		if errors.As(err, &ce) && ce.ExitCode == 42 {
			return errors.Join(errs...) // no bash on the node: UDP is not checked
		}
		return fmt.Errorf("%s: sending UDP to %s: %w", fromName, toAddr, err)
	}
	after, err := udpReceived(ctx, to)
	if err != nil {
		return fmt.Errorf("%s: reading its UDP counters: %w", toName, err)
	}
	for i, ok := range ArrivedUDP(after-before, udpCounts[:len(udp)]) {
		if !ok {
			blocked(udp[i], fmt.Sprintf("none of %d datagrams arrived", udpCounts[i]))
		}
	}
	return errors.Join(errs...)
}

// ArrivedUDP tells, from how many datagrams arrived in all, which of the sends of counts did:
// the subset whose sum is nearest. The counts' subset sums are far apart (udpCounts), so that a
// few datagrams of background traffic, or a few writes cancelled by ICMP errors, do not matter.
func ArrivedUDP(got int, counts []int) []bool {
	best, bestDiff := 0, -1
	for mask := 0; mask < 1<<len(counts); mask++ {
		sum := 0
		for i, c := range counts {
			if mask&(1<<i) != 0 {
				sum += c
			}
		}
		diff := got - sum
		if diff < 0 {
			diff = -diff
		}
		if bestDiff < 0 || diff < bestDiff {
			best, bestDiff = mask, diff
		}
	}
	out := make([]bool, len(counts))
	for i := range counts {
		out[i] = best&(1<<i) != 0
	}
	return out
}

// udpReceived is every UDP datagram the host's kernel took in (delivered, to no socket, or in
// error), IPv4 and IPv6.
func udpReceived(ctx context.Context, c *sshclient.Client) (int, error) {
	out, err := c.Run(ctx, nil, "cat", "/proc/net/snmp", "/proc/net/snmp6")
	if err != nil && len(out) == 0 {
		return 0, err
	}
	return ParseUDPReceived(string(out)), nil
}

// ParseUDPReceived sums InDatagrams, NoPorts and InErrors of /proc/net/snmp's Udp lines and
// /proc/net/snmp6's Udp6 ones.
func ParseUDPReceived(out string) int {
	total := 0
	var header []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 1 && f[0] == "Udp:" && header == nil:
			header = f
		case len(f) > 1 && f[0] == "Udp:":
			for i := 1; i < len(f) && i < len(header); i++ {
				if header[i] == "InDatagrams" || header[i] == "NoPorts" || header[i] == "InErrors" {
					n, _ := strconv.Atoi(f[i])
					total += n
				}
			}
			header = nil
		case len(f) == 2 && (f[0] == "Udp6InDatagrams" || f[0] == "Udp6NoPorts" || f[0] == "Udp6InErrors"):
			n, _ := strconv.Atoi(f[1])
			total += n
		}
	}
	return total
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

// preflight checks joiners' reach to one manager: one SSH connection to it, and one UDP check
// at a time (its counters are the host's).
type preflight struct {
	m    *Node
	once sync.Once
	mc   *sshclient.Client
	mu   sync.Mutex
}

func (pf *preflight) check(ctx context.Context, from *sshclient.Client, fromName, fromAddr, mhost string) error {
	pf.once.Do(func() {
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		pf.mc, _ = pf.m.Dial(dctx) // without it, UDP is not checked
	})
	if fromAddr == "" {
		fromAddr = "its route source unknown"
	}
	ports := []Port{ManagerPort, DataPorts[0]}
	if pf.mc != nil {
		ports = append(ports, DataPorts[1:]...)
	}
	pf.mu.Lock()
	defer pf.mu.Unlock()
	return checkPorts(ctx, from, fromName, fromAddr, pf.mc, pf.m.Name, mhost, ports)
}

func (pf *preflight) close() {
	if pf.mc != nil {
		pf.mc.Close()
	}
}

// CheckResult is what `machine swarm check` found between one node and the manager.
type CheckResult struct {
	Node    string   `json:"node"`
	Addr    string   `json:"addr"`
	Blocked []string `json:"blocked,omitempty"` // each: which port, which way, and the fix
}

// Check checks, between the manager and every other node of its swarm that is a machine of
// the store, the ports a swarm needs: the manager's 2377/tcp and the data ports from the node,
// and the data ports from the manager. One node at a time (UDP is counted by the receiver).
func Check(ctx context.Context, a *machine.API, manager string) ([]CheckResult, error) {
	names, err := Members(ctx, a, manager)
	if err != nil {
		return nil, err
	}
	m, err := OpenNode(a, manager)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	mc, maddr, err := checkEnd(ctx, m)
	if err != nil {
		return nil, err
	}
	defer mc.Close()
	var out []CheckResult
	for _, name := range names {
		if name == manager {
			continue
		}
		if err := ctx.Err(); err != nil {
			return out, err
		}
		n, err := OpenNode(a, name)
		if err != nil {
			return out, err
		}
		nc, naddr, err := checkEnd(ctx, n)
		n.Close()
		if err != nil {
			out = append(out, CheckResult{Node: name, Blocked: []string{err.Error()}})
			continue
		}
		r := CheckResult{Node: name, Addr: naddr}
		for _, err := range []error{
			checkPorts(ctx, nc, name, naddr, mc, manager, maddr, append([]Port{ManagerPort}, DataPorts...)),
			checkPorts(ctx, mc, manager, maddr, nc, name, naddr, DataPorts),
		} {
			r.Blocked = append(r.Blocked, unjoin(err)...)
		}
		nc.Close()
		out = append(out, r)
	}
	return out, nil
}

// checkEnd is a node's SSH connection and swarm address.
func checkEnd(ctx context.Context, n *Node) (*sshclient.Client, string, error) {
	st, err := n.Inspect(ctx)
	if err != nil {
		return nil, "", err
	}
	addr := st.Addr
	if addr == "" {
		addr = n.IP()
	}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c, err := n.Dial(dctx)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", n.Name, err)
	}
	return c, addr, nil
}

func unjoin(err error) []string {
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
