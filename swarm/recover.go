package swarm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/machine-tools/machine/internal/fsutil"
	"github.com/machine-tools/machine/internal/wait"
	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm/cluster"
)

// Recover brings back a swarm that lost its quorum: a new cluster is forced on the surviving
// manager with the most recent state (its raft index), advertising its address of today; the
// other survivors leave the old cluster, the managers that are gone are taken out of the node
// list and their machines made again from the file; then the file is brought up as `swarm up`
// does (managers joined one at a time, each Ready before the next). Services keep their specs
// and their tasks on the nodes that survived. Without a lost quorum it changes nothing and says
// why. After a failure, the same recover again finishes.
func Recover(ctx context.Context, api *machine.API, c *cluster.Cluster, o UpOptions) error {
	r := newRun(api, c)
	r.up = o
	r.up.defaults() // before any step: the machines being made read r.up beside the steps
	return recoverWith(ctx, r)
}

func recoverWith(ctx context.Context, r *run) error {
	rc := &recovery{run: r}
	if err := r.do(ctx, recoverSteps(rc)); err != nil {
		return err
	}
	_ = os.Remove(rc.markPath()) // done: recovering it again needs a quorum lost again
	return nil
}

// markPath is where a recover notes that it began: run again after an interrupt, once its new
// cluster has its quorum, it goes on with what is left instead of refusing.
func (rc *recovery) markPath() string {
	return filepath.Join(rc.api.Store.Root, "clusters", "recovering-"+rc.c.Name)
}

func recoverSteps(rc *recovery) []step {
	steps := []step{
		{"observe", rc.observe},
		{"choosing the survivor", rc.choose},
		{"forcing a new cluster", rc.force},
		{"the other survivors leave", rc.othersLeave},
		{"removing the managers that are gone", rc.removeGone},
		{"making the lost managers again", rc.remake},
	}
	steps = append(steps, thenUp...)
	return append(steps, step{"the nodes that stayed report to the new cluster", rc.reported})
}

type recovery struct {
	*run
	resumed  bool // a recover run again after its new cluster was forced
	lost     *QuorumLostError
	survivor *Node
	others   []string // other managers that answered: they leave the old cluster and join again
	gone     []string // the file's managers whose engines do not answer
}

func (rc *recovery) observe(r *run, ctx context.Context) error {
	ob, err := observe(ctx, r.api, r.c, r.open, true)
	if _, begun := os.Stat(rc.markPath()); begun == nil && err == nil && ob.via == nil {
		// A recover stopped while the survivor's engine forced its new cluster: no manager
		// answers as one until that is done (the engine goes on with it). Read again.
		ob.close()
		var last error
		werr := wait.Until(ctx, 2*time.Minute, time.Second, func(ctx context.Context) (bool, string, error) {
			ob, last = observe(ctx, r.api, r.c, r.open, true)
			if last == nil && ob.via == nil {
				ob.close()
				return false, "no manager answers as one yet", nil
			}
			return true, "", nil
		})
		if werr != nil {
			return fmt.Errorf("a recover of %s began (%s) and no manager of it answers as one: start the survivor's engine, and run `machine swarm recover -f %s` again: %w", r.c.Name, rc.markPath(), r.c.File(), werr)
		}
		err = last
	}
	if err == nil {
		if _, begun := os.Stat(rc.markPath()); begun == nil {
			// A recover that was interrupted after its new cluster was forced: the rest is
			// bringing the file up.
			r.ob, r.nodes, r.alive = ob, ob.nodes, ob.states
			rc.resumed = true
			return nil
		}
		ob.close()
		return fmt.Errorf("the swarm of %s has its quorum: nothing to recover (`machine swarm plan -f %s` says what is missing, `swarm up` brings it back)", r.c.Name, r.c.File())
	}
	var lost *QuorumLostError
	if !errors.As(err, &lost) {
		// A recover run again after its new cluster was forced: the survivor leads a cluster
		// of its own, which has its quorum; the rest is `swarm up`'s.
		return fmt.Errorf("reading the live cluster: %w", err)
	}
	rc.lost = lost
	return r.openAll(ctx)
}

// choose picks the surviving manager with the most recent raft state (the highest index of its
// raft log, read over SSH; the file's order between equals).
func (rc *recovery) choose(r *run, ctx context.Context) error {
	best, bestIndex := "", int64(-1)
	for _, name := range order(r.c) {
		st, ok := r.alive[name]
		if n, _ := r.c.Node(name); n.Role == cluster.Manager && (!ok || !st.Active || !st.Manager) {
			rc.gone = append(rc.gone, name)
			continue
		}
		if rc.resumed { // the new cluster's manager
			if rc.survivor == nil {
				rc.survivor = liveManager(r.c, r.alive, r.nodes)
			}
			continue
		}
		if !ok || !st.Active || !st.Manager {
			continue
		}
		idx := raftIndex(ctx, r.nodes[name])
		if best == "" || idx > bestIndex {
			best, bestIndex = name, idx
		}
	}
	if rc.resumed {
		if rc.survivor == nil {
			return fmt.Errorf("no manager of %s answers: run `machine swarm recover -f %s` when one does", r.c.Name, r.c.File())
		}
		return nil
	}
	if best == "" {
		return fmt.Errorf("no manager of %s answers: nothing to recover from; `machine swarm restore -f %s BACKUP` brings the swarm back from a backup", r.c.Name, r.c.File())
	}
	rc.survivor = r.nodes[best]
	for _, name := range order(r.c) {
		if st, ok := r.alive[name]; ok && st.Active && st.Manager && name != best {
			rc.others = append(rc.others, name)
		}
	}
	r.up.say(best, fmt.Sprintf("the surviving manager with the most recent state (raft index %d)", max(bestIndex, 0)))
	return nil
}

// holdsRaftLog says whether a node's engine keeps a raft log (it is, or was until it left its
// swarm, a manager); false when that cannot be read (no SSH).
func holdsRaftLog(ctx context.Context, n *Node) bool {
	if n.Host == nil {
		return false
	}
	c, err := n.Dial(ctx)
	if err != nil {
		return false
	}
	defer c.Close()
	out, _ := machine.Runner(c).Run(ctx, nil, "sh", "-c", "ls /var/lib/docker/swarm/raft/wal-v3-encrypted /var/lib/docker/swarm/raft/wal-v3 2>/dev/null")
	return strings.Contains(string(out), ".wal")
}

// raftIndex is the highest raft index a manager's log names: the start index of its newest WAL
// segment or its newest snapshot's index (file names hold them in hex); -1 when unread.
func raftIndex(ctx context.Context, n *Node) int64 {
	c, err := n.Dial(ctx)
	if err != nil {
		return -1
	}
	defer c.Close()
	out, err := machine.Runner(c).Run(ctx, nil, "sh", "-c", "ls /var/lib/docker/swarm/raft/wal-v3-encrypted /var/lib/docker/swarm/raft/snap-v3-encrypted 2>/dev/null")
	if err != nil && len(out) == 0 {
		return -1
	}
	best := int64(-1)
	for _, f := range strings.Fields(string(out)) {
		name := strings.TrimSuffix(strings.TrimSuffix(f, ".wal"), ".snap")
		if _, idx, ok := strings.Cut(name, "-"); ok && name != f {
			if v, err := strconv.ParseInt(idx, 16, 64); err == nil && v > best {
				best = v
			}
		}
	}
	return best
}

func (rc *recovery) force(r *run, ctx context.Context) error {
	if rc.resumed {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(rc.markPath()), 0o700); err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(rc.markPath(), []byte(rc.survivor.Name+"\n"), 0o600); err != nil {
		return err
	}
	return r.forceNewCluster(ctx, rc.survivor)
}

func (rc *recovery) othersLeave(r *run, ctx context.Context) error {
	if rc.resumed {
		return nil
	}
	for _, name := range rc.others {
		r.up.say(name, "leaving the old cluster (it joins the new one again)")
		if err := r.nodes[name].Docker.SwarmLeave(ctx, true); err != nil {
			return r.fail(name, err)
		}
	}
	return nil
}

// removeGone takes every manager but the survivor out of the node list through it (the new
// cluster has one member): the file's managers join it afresh.
func (rc *recovery) removeGone(r *run, ctx context.Context) error {
	m := rc.survivor
	self, err := m.Inspect(ctx)
	if err != nil {
		return r.fail(m.Name, err)
	}
	list, err := m.Docker.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return r.fail(m.Name, err)
	}
	for _, x := range list {
		if x.ID == self.NodeID || x.Spec.Role != swarm.NodeRoleManager {
			continue
		}
		if x.ManagerStatus != nil && x.ManagerStatus.Reachability == swarm.ReachabilityReachable {
			continue // joined the new cluster (a recover run again)
		}
		// (a manager out of raft after the forced cluster has no manager status)
		r.up.say(x.Description.Hostname, "out of the node list (a manager of the old cluster)")
		if err := removeDead(ctx, m, x.ID); err != nil {
			return r.fail(x.Description.Hostname, err)
		}
	}
	return nil
}

// remake removes the machines of the managers that are gone: the steps of `swarm up` that
// follow make them again from the file, and join them.
func (rc *recovery) remake(r *run, ctx context.Context) error {
	for _, name := range rc.gone {
		if !r.api.Exists(name) {
			continue
		}
		r.up.say(name, "its engine does not answer: the machine is removed, to be made again from the file")
		if n := r.nodes[name]; n != nil {
			n.Close()
			delete(r.nodes, name)
		}
		if err := r.api.Remove(ctx, name, true); err != nil {
			return r.fail(name, err)
		}
	}
	return nil
}

// reported waits until every node of the file in the swarm is Ready on the new cluster: a
// forced cluster marks the nodes it inherits "unknown" until their agents, which were talking
// to managers that are gone, find the survivor (they back off between tries).
func (rc *recovery) reported(r *run, ctx context.Context) error {
	m := liveManager(r.c, r.alive, r.nodes)
	if m == nil {
		return nil // nothing to ask: swarm up's steps said why
	}
	for _, name := range order(r.c) {
		n := r.nodes[name]
		if n == nil || n == m {
			continue
		}
		if err := waitReady(ctx, m, n); err != nil {
			return r.fail(name, err)
		}
	}
	return nil
}
