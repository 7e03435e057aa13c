package swarm

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/machine-tools/machine/internal/sshclient"
	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm/preflight"
)

// CheckResult is what `machine swarm check` found between one node and the manager.
type CheckResult struct {
	Node    string   `json:"node"`
	Addr    string   `json:"addr"`
	Blocked []string `json:"blocked,omitempty"` // each: which port, which way, and the fix
}

// Check checks, between the manager and every other node of its swarm that is a machine of
// the store, the ports a swarm needs: the manager's 2377/tcp and the data ports from the node,
// and the data ports from the manager. One node at a time (UDP is counted by the receiver).
func Check(ctx context.Context, a *machine.API, manager string) (CheckReport, error) {
	names, err := members(ctx, a, manager)
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
	var out CheckReport
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
		node, mgr := preflight.End{SSH: nc, Name: name, Addr: naddr}, preflight.End{SSH: mc, Name: manager, Addr: maddr}
		_, toManager := preflight.Ports(ctx, node, mgr, append([]preflight.Port{preflight.ManagerPort}, preflight.DataPorts...), false, preflight.Probes)
		_, fromManager := preflight.Ports(ctx, mgr, node, preflight.DataPorts, false, preflight.Probes)
		for _, err := range []error{toManager, fromManager} {
			r.Blocked = append(r.Blocked, preflight.Lines(err)...)
		}
		nc.Close()
		out = append(out, r)
	}
	return out, nil
}

// CheckReport is what Check found, a result per node.
type CheckReport []CheckResult

// Err is nil when every port is open both ways, else how many are blocked.
func (r CheckReport) Err(manager string) error {
	blocked := 0
	for _, n := range r {
		blocked += len(n.Blocked)
	}
	if blocked > 0 {
		return fmt.Errorf("%d blocked port(s) between %s and its swarm's nodes", blocked, manager)
	}
	return nil
}

// WriteLines prints a line per node that is reached on every port, and one per blocked port.
func (r CheckReport) WriteLines(w io.Writer, manager string) error {
	for _, n := range r {
		if len(n.Blocked) == 0 {
			fmt.Fprintf(w, "(%s) ok: %s reaches %s on 2377/tcp, 7946/tcp+udp, 4789/udp, and back on 7946/tcp+udp, 4789/udp\n", n.Node, n.Node, manager)
		}
		for _, b := range n.Blocked {
			if _, err := fmt.Fprintf(w, "(%s) blocked: %s\n", n.Node, b); err != nil {
				return err
			}
		}
	}
	return nil
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
