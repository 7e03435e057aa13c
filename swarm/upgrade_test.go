package swarm

import (
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"
)

func node(id, addr string, manager, leader bool, reach swarm.Reachability) swarm.Node {
	n := swarm.Node{ID: id}
	n.Status.Addr, n.Description.Hostname = addr, id
	if manager {
		n.ManagerStatus = &swarm.ManagerStatus{Leader: leader, Reachability: reach}
	}
	return n
}

func TestPlanUpgrade(t *testing.T) {
	byAddr := func(addr, host string) string { return host }
	nodes := []swarm.Node{
		node("m1", "10.0.0.1", true, true, swarm.ReachabilityReachable),
		node("w1", "10.0.0.4", false, false, ""),
		node("m2", "10.0.0.2", true, false, swarm.ReachabilityReachable),
		node("m3", "10.0.0.3", true, false, swarm.ReachabilityReachable),
		node("w2", "10.0.0.5", false, false, ""),
	}
	steps, err := planUpgrade(nodes, byAddr)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, s := range steps {
		order = append(order, s.Machine)
	}
	if got := strings.Join(order, " "); got != "w1 w2 m2 m3 m1" {
		t.Errorf("order %s: workers first, the leader last", got)
	}
	// One of three managers down: taking another would leave 1 of 3.
	nodes[2].ManagerStatus.Reachability = swarm.ReachabilityUnreachable
	if _, err := planUpgrade(nodes, byAddr); err == nil || !strings.Contains(err.Error(), "3 managers, 2 reachable: upgrading one would leave 1 of 3") {
		t.Errorf("quorum: %v", err)
	}
	// A node that is not a machine of the store.
	if _, err := planUpgrade(nodes, func(string, string) string { return "" }); err == nil || !strings.Contains(err.Error(), "not a machine of this store") {
		t.Errorf("unknown node: %v", err)
	}
}
