package swarm

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/machine-tools/machine/swarm/cluster"
)

// QuorumLostError is a swarm whose managers cannot elect a leader: fewer than a majority
// answer. Nothing in the swarm can change until a majority is back or a new cluster is forced.
type QuorumLostError struct {
	Total     int      // the managers the swarm has
	Reachable []string // those that answer
	Gone      []string // the file's managers that do not (when known)
	File      string   // the cluster file (for the fix)
}

func (e *QuorumLostError) Error() string {
	gone := ""
	if len(e.Gone) > 0 {
		gone = " (" + strings.Join(e.Gone, ", ") + ")"
	}
	fix := "start enough of them again (`machine start NAME`)"
	if e.File != "" && len(e.Reachable) > 0 {
		fix += fmt.Sprintf(", or force a new cluster on %s and bring the others back with `machine swarm recover -f %s`", e.Reachable[0], e.File)
	}
	return fmt.Sprintf("quorum lost: %d of %d managers unreachable%s: the swarm cannot change until a majority is back: %s",
		e.Total-len(e.Reachable), e.Total, gone, fix)
}

// noLeader says whether a manager's error is the swarm's "no leader" (quorum lost, or an
// election under way).
func noLeader(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "does not have a leader") || strings.Contains(err.Error(), "too few managers are online"))
}

// quorumLost tells, from the states already read, whether the swarm that via manages has lost
// its quorum: the managers via knows, against those of the file that answered as managers of
// the same swarm. When every manager the swarm has is a machine of the file, that count is the
// answer (the swarm itself may go on answering for the seconds its election takes); when some
// are not, a short list call through via confirms it. nil: the swarm has its quorum.
func quorumLost(ctx context.Context, c *cluster.Cluster, states map[string]State, nodes map[string]*Node, via *Node) *QuorumLostError {
	vst := states[via.Name]
	total := len(vst.Managers)
	var reachable, gone []string
	for _, name := range order(c) {
		st, ok := states[name]
		if ok && st.Active && st.Manager && st.ClusterID == vst.ClusterID {
			reachable = append(reachable, name)
		} else if n, _ := c.Node(name); n.Role == cluster.Manager {
			gone = append(gone, name)
		}
	}
	if total == 0 || len(reachable) >= total/2+1 {
		return nil
	}
	lost := &QuorumLostError{Total: total, Reachable: reachable, Gone: gone, File: c.File()}
	ips := map[string]bool{}
	for _, n := range nodes {
		ips[n.IP()] = true
	}
	known := true
	for _, a := range vst.Managers {
		if host, _, err := net.SplitHostPort(a); err != nil || !ips[host] {
			known = false
		}
	}
	if known {
		return lost
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := via.Docker.NodeList(lctx, swarm.NodeListOptions{}); err == nil {
		return nil // managers outside the file make up the majority
	}
	return lost
}
