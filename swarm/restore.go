package swarm

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/machine-tools/machine/internal/fsutil"
	"github.com/machine-tools/machine/internal/runner"
	"github.com/machine-tools/machine/internal/wait"
	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm/cluster"
)

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Onto names the machine the swarm is restored on (default: the file's first manager).
	Onto string
	// Force restores over a swarm that is up: its nodes leave it first (what it holds is lost).
	Force bool
	// UnlockKey unlocks the restored manager when the backup's swarm had autolock on.
	UnlockKey string
	// Up tunes the convergence of the rest of the file after the restore.
	Up UpOptions
}

// Restore brings the swarm of a backup back on the file's hosts (made when missing), with their
// addresses of today: the state goes onto one manager (its engine stopped, its swarm state
// replaced, started, unlocked when needed), which forces a new cluster of one advertising its
// address now; what the swarm holds is checked against the backup's counts; then the rest of the
// file is brought up as `swarm up` does (the other managers and the workers join, entries of the
// old swarm's nodes that joined again are removed). A swarm that is up is not replaced unless
// Force. After a failure, the same restore again finishes.
func Restore(ctx context.Context, api *machine.API, c *cluster.Cluster, path string, o RestoreOptions) error {
	info, err := ReadBackup(path)
	if err != nil {
		return err
	}
	r := newRun(api, c)
	r.up = o.Up
	r.up.defaults() // before any step: the machines being made read r.up beside the steps
	rs := &restore{run: r, o: o, path: path, info: info}
	steps := []step{
		{"observe", rs.observe},
		{"making the machine", rs.makeTarget},
		{"leaving the live swarm", rs.leaveLive},
		{"placing the swarm's state", rs.place},
		{"unlocking", rs.unlock},
		{"forcing a new cluster", rs.forceNewCluster},
		{"removing the old swarm's other nodes", rs.removeOld},
		{"checking what the swarm holds", rs.check},
	}
	steps = append(steps, thenUp...)
	steps = append(steps, step{"restoring labels set outside the file", rs.relabel})
	if err := r.do(ctx, steps); err != nil {
		return err
	}
	_ = os.Remove(rs.markPath()) // done: a restore of it again is one over a live swarm
	_ = os.Remove(rs.markPath() + ".labels")
	return nil
}

type restore struct {
	*run
	o      RestoreOptions
	path   string
	info   BackupInfo
	target string
	// resumedOn is the target of a restore run again after its new cluster was forced.
	resumedOn string
	// labels are the old swarm's nodes' labels that the file does not set (UnmanagedLabelPrefix),
	// by host name: given back to the machines of those names once they have joined afresh.
	labels map[string]map[string]string
}

func (rs *restore) say(node, msg string) { rs.run.up.say(node, msg) }

func (rs *restore) observe(r *run, ctx context.Context) error {
	var lost *QuorumLostError
	if err := r.reobserve(ctx); errors.As(err, &lost) {
		// A swarm without its quorum (a restore interrupted after the state was placed, or a
		// swarm lost): not a healthy one to keep; restored over.
		if err := r.openAll(ctx); err != nil {
			return err
		}
		r.ob = nil
	} else if err != nil {
		return err
	}
	rs.target = rs.o.Onto
	if n, ok := r.c.Node(rs.info.Machine); rs.target == "" && ok && n.Role == cluster.Manager {
		rs.target = n.Name // the backup's own manager, made again
	}
	if rs.target == "" {
		rs.target = r.c.Managers()[0].Name
	}
	if n, ok := r.c.Node(rs.target); !ok || n.Role != cluster.Manager {
		return fmt.Errorf("%s is not a manager of %s: restore onto one of its managers (--onto)", rs.target, r.c.File())
	}
	if r.ob == nil || r.ob.via == nil {
		return nil
	}
	// A swarm is up. When this backup was restored on the target before (a restore that
	// stopped after its new cluster was forced), what is left is bringing the rest up.
	st := r.alive[r.ob.via.Name]
	if b, err := os.ReadFile(rs.markPath()); err == nil && !rs.o.Force && strings.TrimSpace(string(b)) == rs.target && rs.restored(ctx) {
		rs.say(rs.target, "this backup is restored here already: bringing the rest of the file up")
		rs.resumedOn, rs.target = rs.target, "" // the placing steps are skipped
		return nil
	}
	if !rs.o.Force {
		services, _ := r.ob.via.Docker.ServiceList(ctx, swarm.ServiceListOptions{})
		return fmt.Errorf("the swarm of %s is up (through %s: swarm %s, %d nodes, %d services): a restore would replace it and lose what it holds; take it down first (`machine swarm down -f %s --keep-machines`), or pass --force",
			r.c.Name, r.ob.via.Name, short(st.ClusterID), len(r.ob.Nodes), len(services), r.c.File())
	}
	return nil
}

// markPath is where a restore notes that its new cluster was forced, for the one backup (its
// state's checksum) onto the one machine (the file's content): a restore run again goes on from
// there, while a swarm that is merely up is not mistaken for one restored.
func (rs *restore) markPath() string {
	return filepath.Join(rs.run.api.Store.Root, "clusters", "restored-"+rs.info.StateSHA256[:min(16, len(rs.info.StateSHA256))])
}

// restored says whether the target runs the backup's node (its swarm state the backup's).
func (rs *restore) restored(ctx context.Context) bool {
	n := rs.run.nodes[rs.target]
	if n == nil {
		return false
	}
	st, err := n.Inspect(ctx)
	return err == nil && st.NodeID == rs.info.NodeID
}

func (rs *restore) makeTarget(r *run, ctx context.Context) error {
	if rs.target == "" {
		return nil
	}
	if n := r.nodes[rs.target]; n != nil {
		return rs.sameAddress(ctx, n)
	}
	n, _ := r.c.Node(rs.target)
	if !r.api.Exists(n.Name) {
		rs.say(n.Name, "creating the machine")
		if err := createNode(ctx, r.api, r.c, n, r.up); err != nil {
			return r.fail(n.Name, err)
		}
	}
	o, err := r.open(n.Name)
	if err != nil {
		return r.fail(n.Name, err)
	}
	r.nodes[n.Name] = o
	return rs.sameAddress(ctx, o)
}

// sameAddress checks, before anything is placed, that a target whose address is not the backup's
// manager's can have its raft address moved after the restore: the swarm's raft keeps the
// backup's address for its one manager after the new cluster is forced (swarmkit changes a
// manager's raft address only through another manager), so up lends it that address for the
// while and moves it through another node (raftaddr.go).
func (rs *restore) sameAddress(ctx context.Context, n *Node) error {
	if rs.info.Addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(rs.info.Addr)
	if err != nil || host == n.IP() {
		return nil
	}
	if _, err := rs.lendable(ctx, n, host); err != nil {
		return rs.run.fail(n.Name, fmt.Errorf("the backup's manager %s was at %s, %s is at %s, and %w; or restore onto a host at %s (with --onto, or the driver's address option for %s)", rs.info.Machine, host, n.Name, n.IP(), err, host, n.Name))
	}
	rs.say(n.Name, "the backup's manager was at "+host+", "+n.Name+" is at "+n.IP()+": the swarm's raft address is moved once the other nodes are up ("+host+" lent to it for the while)")
	return nil
}

// leaveLive takes the file's live nodes out of the swarm they are in (forced: there may be no
// quorum to leave through).
func (rs *restore) leaveLive(r *run, ctx context.Context) error {
	if rs.target == "" {
		return nil
	}
	for _, name := range order(r.c) {
		n := r.nodes[name]
		st, ok := r.alive[name]
		if n == nil || !ok || !st.Active {
			continue
		}
		if name == rs.target {
			continue // its state is replaced as a whole
		}
		rs.say(name, "leaving the swarm it is in (--force)")
		if err := n.Docker.SwarmLeave(ctx, true); err != nil {
			return r.fail(name, err)
		}
	}
	return nil
}

// place stops the target's engine, replaces its /var/lib/docker/swarm with the backup's and
// starts it again.
func (rs *restore) place(r *run, ctx context.Context) error {
	if rs.target == "" {
		return nil
	}
	n := r.nodes[rs.target]
	c, err := n.Dial(ctx)
	if err != nil {
		return r.fail(n.Name, err)
	}
	defer c.Close()
	root := machine.Runner(c)
	f, err := os.Open(rs.path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err != nil {
			return fmt.Errorf("%s: the swarm's state is missing: %w", rs.path, err)
		}
		if hdr.Name == "swarm.tar.gz" {
			break
		}
	}
	rs.say(n.Name, "stopping its engine, placing the backup's swarm state")
	if _, err := root.Run(ctx, nil, "sh", "-c", engineStop); err != nil {
		return r.fail(n.Name, err)
	}
	started := false
	defer func() {
		if !started { // Ctrl-C or a failure: the engine runs again, with whatever state it has
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			defer cancel()
			_, _ = root.Run(sctx, nil, "sh", "-c", engineStart)
		}
	}()
	// The old state aside first, the new one in, then the old one gone: a failure half-way
	// leaves either.
	place := `set -e; cd /var/lib/docker; rm -rf swarm.machine-new swarm.machine-old; mkdir swarm.machine-new
tar -C swarm.machine-new -xzf -; [ -d swarm.machine-new/swarm ]
[ ! -e swarm ] || mv swarm swarm.machine-old; mv swarm.machine-new/swarm swarm; rm -rf swarm.machine-new swarm.machine-old`
	cmd := runner.Quote("sh", "-c", place)
	if c.Config().User != "root" {
		cmd = "sudo -n -- " + cmd
	}
	var stderr strings.Builder
	code, err := c.Exec(ctx, cmd, tr, io.Discard, &stderr)
	if err == nil && code != 0 {
		err = fmt.Errorf("placing the state exited %d: %s", code, strings.TrimSpace(stderr.String()))
	}
	if err != nil {
		return r.fail(n.Name, err)
	}
	rs.say(n.Name, "starting its engine")
	started = true
	if _, err := root.Run(ctx, nil, "sh", "-c", engineStart); err != nil {
		return r.fail(n.Name, err)
	}
	// Its engine answers again (its swarm still the backup's, with the old addresses).
	return wait.Until(ctx, 2*time.Minute, 500*time.Millisecond, func(ctx context.Context) (bool, string, error) {
		_, err := n.Docker.Info(ctx)
		if err != nil {
			return false, err.Error(), nil
		}
		return true, "", nil
	})
}

func (rs *restore) unlock(r *run, ctx context.Context) error {
	if rs.target == "" {
		return nil
	}
	n := r.nodes[rs.target]
	info, err := n.Docker.Info(ctx)
	if err != nil {
		return r.fail(n.Name, err)
	}
	if info.Swarm.LocalNodeState != swarm.LocalNodeStateLocked {
		return nil
	}
	if rs.o.UnlockKey == "" {
		if b, err := os.ReadFile(UnlockKeyPath(rs.path)); err == nil {
			rs.o.UnlockKey = strings.TrimSpace(string(b))
		}
	}
	if rs.o.UnlockKey == "" {
		return r.fail(n.Name, fmt.Errorf("the backup's swarm has autolock on: give its unlock key (--unlock-key-stdin, or put the %s that the backup wrote beside it)", UnlockKeyPath(rs.path)))
	}
	if err := n.Docker.SwarmUnlock(ctx, swarm.UnlockRequest{UnlockKey: rs.o.UnlockKey}); err != nil {
		return r.fail(n.Name, fmt.Errorf("the unlock key was refused: %s", redact(err.Error(), rs.o.UnlockKey)))
	}
	return nil
}

// forceNewCluster makes the target the one manager of the backup's swarm, advertising the
// address its host has today.
func (rs *restore) forceNewCluster(r *run, ctx context.Context) error {
	if rs.target == "" {
		return nil
	}
	// Noted first: a restore stopped while its engine forces the new cluster (which goes on
	// without it) finds, run again, the backup's node leading a swarm of its own, and goes on.
	if err := os.MkdirAll(filepath.Dir(rs.markPath()), 0o700); err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(rs.markPath(), []byte(rs.target+"\n"), 0o600); err != nil {
		return err
	}
	return r.forceNewCluster(ctx, r.nodes[rs.target])
}

// removeOld takes every node of the backup's swarm but the target out of the node list: their
// hosts are gone or left (the new cluster has one member); the file's machines join afresh.
func (rs *restore) removeOld(r *run, ctx context.Context) error {
	name := rs.target
	if name == "" {
		name = rs.resumedOn // entries a stopped run left
	}
	m := r.nodes[name]
	if m == nil {
		return nil
	}
	self, err := m.Inspect(ctx)
	if err != nil {
		return r.fail(m.Name, err)
	}
	list, err := m.Docker.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return r.fail(m.Name, err)
	}
	// The labels set outside the file, kept in the store first: a restore stopped after the
	// entries are gone gives them back when run again.
	rs.labels = rs.keptLabels()
	for _, x := range list {
		if x.ID != self.NodeID && rs.resumedOn != "" && x.Status.State == swarm.NodeStateReady {
			continue // joined the restored swarm afresh
		}
		for k, v := range x.Spec.Labels {
			if strings.HasPrefix(k, UnmanagedLabelPrefix) {
				if rs.labels[x.Description.Hostname] == nil {
					rs.labels[x.Description.Hostname] = map[string]string{}
				}
				rs.labels[x.Description.Hostname][k] = v
			}
		}
	}
	b, err := json.Marshal(rs.labels)
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(rs.markPath()+".labels", b, 0o600); err != nil {
		return err
	}
	removed := 0
	for _, x := range list {
		if x.ID == self.NodeID || (rs.resumedOn != "" && x.Status.State == swarm.NodeStateReady) {
			continue
		}
		if err := removeDead(ctx, m, x.ID); err != nil {
			return r.fail(x.Description.Hostname, err)
		}
		removed++
	}
	if removed > 0 {
		rs.say(m.Name, fmt.Sprintf("the old swarm's %d other node(s) out of the node list: the file's machines join afresh", removed))
	}
	return nil
}

// keptLabels reads the labels a restore of the same backup kept in the store (none: empty).
func (rs *restore) keptLabels() map[string]map[string]string {
	out := map[string]map[string]string{}
	if b, err := os.ReadFile(rs.markPath() + ".labels"); err == nil {
		_ = json.Unmarshal(b, &out)
	}
	return out
}

// relabel gives the machines that joined afresh the labels their old nodes had outside the file.
func (rs *restore) relabel(r *run, ctx context.Context) error {
	if rs.labels == nil {
		rs.labels = rs.keptLabels()
	}
	for host, labels := range rs.labels {
		n := r.nodes[host]
		if n == nil {
			continue
		}
		st, err := n.Inspect(ctx)
		if err != nil {
			return r.fail(host, err)
		}
		if _, err := updateNode(ctx, r.first, st.NodeID, func(spec *swarm.NodeSpec) bool {
			changed := false
			for k, v := range labels {
				if spec.Labels[k] != v {
					if spec.Labels == nil {
						spec.Labels = map[string]string{}
					}
					spec.Labels[k], changed = v, true
				}
			}
			return changed
		}); err != nil {
			return r.fail(host, err)
		}
	}
	return nil
}

// check compares what the restored swarm holds with the backup's counts.
func (rs *restore) check(r *run, ctx context.Context) error {
	name := rs.target
	if name == "" {
		return nil
	}
	got, err := countHeld(ctx, r.nodes[name])
	if err != nil {
		return r.fail(name, err)
	}
	want := held{rs.info.Services, rs.info.Secrets, rs.info.Configs, rs.info.Networks}
	if got != want {
		return r.fail(name, fmt.Errorf("the restored swarm holds %s, the backup %s", got, want))
	}
	rs.say(name, "the swarm holds what the backup did: "+got.String())
	return nil
}
