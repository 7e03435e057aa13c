package swarm

import (
	"testing"

	"github.com/docker/docker/api/types/swarm"
)

// TestSkewOf: a replicated service is skewed when one node it may run on has two or more tasks
// more than another; global services, single replicas and pinned services are left alone, and
// drained or down nodes do not count.
func TestSkewOf(t *testing.T) {
	node := func(id string, state swarm.NodeState, avail swarm.NodeAvailability) swarm.Node {
		return swarm.Node{ID: id, Description: swarm.NodeDescription{Hostname: "h" + id}, Status: swarm.NodeStatus{State: state}, Spec: swarm.NodeSpec{Availability: avail}}
	}
	nodes := []swarm.Node{node("1", "ready", "active"), node("2", "ready", "active"), node("3", "ready", "active"), node("4", "down", "active"), node("5", "ready", "drain")}
	replicated := func(n uint64) swarm.Service {
		sv := swarm.Service{ID: "s"}
		sv.Spec.Name = "web"
		sv.Spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &n}
		return sv
	}
	tasks := func(on ...string) []swarm.Task {
		var out []swarm.Task
		for _, id := range on {
			out = append(out, swarm.Task{ServiceID: "s", NodeID: id, Status: swarm.TaskStatus{State: swarm.TaskStateRunning}})
		}
		return out
	}
	if s := skewOf(replicated(6), tasks("1", "1", "1", "2", "2", "2"), nodes); s == nil || s.Spread() != "3-3-0" || s.String() != "service web: 6 replicas on 3 nodes as 3-3-0 (`machine swarm rebalance` spreads it)" {
		t.Errorf("3-3-0: %v", s)
	}
	if s := skewOf(replicated(6), tasks("1", "1", "2", "2", "3", "3"), nodes); s != nil {
		t.Errorf("2-2-2 is spread: %v", s)
	}
	if s := skewOf(replicated(4), tasks("1", "1", "2", "3"), nodes); s != nil {
		t.Errorf("2-1-1 is as even as 4 on 3 can be: %v", s)
	}
	pinned := replicated(6)
	pinned.Spec.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.labels.zone==a"}}
	if s := skewOf(pinned, tasks("1", "1", "1", "2", "2", "2"), nodes); s != nil {
		t.Errorf("a pinned service: %v", s)
	}
	global := swarm.Service{ID: "s"}
	global.Spec.Mode.Global = &swarm.GlobalService{}
	if s := skewOf(global, tasks("1", "2"), nodes); s != nil {
		t.Errorf("a global service: %v", s)
	}
}
