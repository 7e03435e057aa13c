package swarm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"

	"github.com/machine-tools/machine/internal/fsutil"
	"github.com/machine-tools/machine/internal/wait"
	"github.com/machine-tools/machine/machine"
)

// A swarm with autolock keeps its managers' raft keys encrypted at rest: a manager whose engine
// restarts stays locked until it is given the unlock key. The store keeps that key per swarm
// (swarms/ID.unlock-key, 0600, written atomically), and each manager machine's folder names the
// swarm it was last seen managing (swarm-id), so that a locked manager, which no longer says
// which swarm it belongs to, is unlocked with the right key. After a rotation the old key is
// kept beside the new one (ID.unlock-key.previous) until every manager has been reached by the
// new one: a manager that was down during the rotation still needs the old key.

// LockedError is a manager whose swarm is locked: its engine restarted with autolock on.
type LockedError struct{ Node string }

func (e *LockedError) Error() string {
	return fmt.Sprintf("%s: the swarm is locked on this node (autolock, its engine restarted): `machine swarm unlock %s` unlocks it with the key the store keeps", e.Node, e.Node)
}

// swarmIDFile names, in a manager machine's folder, the swarm it was last seen managing.
const swarmIDFile = "swarm-id"

// remember notes in the machine's folder which swarm it manages (nothing when it is so).
func (n *Node) remember(clusterID string) {
	if n.Host == nil || n.Host.Dir() == "" || clusterID == "" {
		return
	}
	p := filepath.Join(n.Host.Dir(), swarmIDFile)
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == clusterID {
		return
	}
	_ = fsutil.WriteFileAtomic(p, []byte(clusterID+"\n"), 0o600)
}

// rememberedSwarm is the swarm the machine was last seen managing ("" when never).
func rememberedSwarm(n *Node) string {
	if n.Host == nil || n.Host.Dir() == "" {
		return ""
	}
	b, _ := os.ReadFile(filepath.Join(n.Host.Dir(), swarmIDFile))
	return strings.TrimSpace(string(b))
}

// keyPath is where the store keeps a swarm's unlock key.
func keyPath(root, clusterID string) string {
	return filepath.Join(root, "swarms", clusterID+".unlock-key")
}

// rootOf is the folder of the store that n is a machine of.
func rootOf(n *Node) string {
	if n.Host == nil || n.Host.Dir() == "" {
		return ""
	}
	return filepath.Dir(filepath.Dir(n.Host.Dir())) // ROOT/machines/NAME
}

// keptKeys are the swarm's kept unlock keys: the current one, and the one before a rotation
// while some manager may still need it.
func keptKeys(root, clusterID string) (cur, prev string) {
	read := func(p string) string {
		b, _ := os.ReadFile(p)
		return strings.TrimSpace(string(b))
	}
	p := keyPath(root, clusterID)
	return read(p), read(p + ".previous")
}

// keepKey keeps key as the swarm's current unlock key; a different key kept before becomes the
// previous one.
func keepKey(root, clusterID, key string) error {
	if root == "" || clusterID == "" || key == "" {
		return nil
	}
	p := keyPath(root, clusterID)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	cur, _ := keptKeys(root, clusterID)
	if cur == key {
		return nil
	}
	if cur != "" {
		if err := fsutil.WriteFileAtomic(p+".previous", []byte(cur+"\n"), 0o600); err != nil {
			return err
		}
	}
	return fsutil.WriteFileAtomic(p, []byte(key+"\n"), 0o600)
}

// keepLiveKey reads the swarm's autolock setting through manager m and, when it is on, keeps the
// swarm's current unlock key; once every manager is reachable the previous key is let go (not
// right after a rotation: the managers are given a moment to apply it).
func keepLiveKey(ctx context.Context, m *Node) (on bool, err error) {
	return keepLive(ctx, m, true)
}

func keepLive(ctx context.Context, m *Node, letGo bool) (on bool, err error) {
	sw, err := m.Docker.SwarmInspect(ctx)
	if err != nil {
		return false, err
	}
	m.remember(sw.ID)
	if !sw.Spec.EncryptionConfig.AutoLockManagers {
		return false, nil
	}
	k, err := m.Docker.SwarmGetUnlockKey(ctx)
	if err != nil {
		return true, fmt.Errorf("reading the unlock key through %s: %w", m.Name, err)
	}
	root := rootOf(m)
	if err := keepKey(root, sw.ID, k.UnlockKey); err != nil {
		return true, fmt.Errorf("keeping the unlock key: %w", err)
	}
	if _, prev := keptKeys(root, sw.ID); letGo && prev != "" && allManagersReached(ctx, m) {
		_ = os.Remove(keyPath(root, sw.ID) + ".previous")
	}
	return true, nil
}

// allManagersReached says whether every manager in the swarm's list is reachable: each has the
// raft state that the current key encrypts.
func allManagersReached(ctx context.Context, m *Node) bool {
	list, err := m.Docker.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return false
	}
	for _, x := range list {
		if x.ManagerStatus != nil && x.ManagerStatus.Reachability != swarm.ReachabilityReachable {
			return false
		}
	}
	return true
}

// unlockNode unlocks a locked manager with its swarm's kept keys (the current one, then the one
// before a rotation), through its engine's API: the key is never on the host's disk or argv.
func unlockNode(ctx context.Context, n *Node) error {
	id := rememberedSwarm(n)
	cur, prev := "", ""
	if id != "" {
		cur, prev = keptKeys(rootOf(n), id)
	}
	if cur == "" {
		where := "this store keeps no unlock key for its swarm"
		if id != "" {
			where = "this store keeps no unlock key for its swarm (" + keyPath(rootOf(n), id) + ")"
		}
		return fmt.Errorf("%s is locked and %s: give the key with `machine swarm unlock --unlock-key-file FILE %s`", n.Name, where, n.Name)
	}
	var last error
	for _, k := range []string{cur, prev} {
		if k == "" {
			continue
		}
		if last = n.Docker.SwarmUnlock(ctx, swarm.UnlockRequest{UnlockKey: k}); last == nil {
			return nil
		}
		last = errors.New(redact(last.Error(), k))
	}
	return fmt.Errorf("%s is locked and refused the kept unlock key (%v): give the right one with `machine swarm unlock --unlock-key-file FILE %s`", n.Name, last, n.Name)
}

// unlockWith unlocks a locked manager with a key the user gave; kept for its swarm once the
// manager says which one it is.
func unlockWith(ctx context.Context, n *Node, key string) error {
	if err := n.Docker.SwarmUnlock(ctx, swarm.UnlockRequest{UnlockKey: key}); err != nil {
		return fmt.Errorf("%s refused the unlock key: %s", n.Name, redact(err.Error(), key))
	}
	return waitUnlocked(ctx, n)
}

// waitUnlocked waits until an unlocked manager answers as one again, and notes its swarm.
func waitUnlocked(ctx context.Context, n *Node) error {
	return wait.Until(ctx, time.Minute, 500*time.Millisecond, func(ctx context.Context) (bool, string, error) {
		st, err := n.Inspect(ctx)
		if err != nil {
			return false, err.Error(), nil
		}
		return st.Active && st.Manager, "not an active manager yet", nil
	})
}

// Unlock unlocks every locked manager of names (with key when given, else with the store's kept
// key) and says, per machine, what it did.
func Unlock(ctx context.Context, a *machine.API, names []string, key string) (map[string]string, error) {
	out := map[string]string{}
	var errs []error
	for _, name := range names {
		n, err := OpenNode(a, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		msg, err := unlockOne(ctx, n, key)
		n.Close()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[name] = msg
	}
	return out, errors.Join(errs...)
}

func unlockOne(ctx context.Context, n *Node, key string) (string, error) {
	info, err := n.Docker.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: %w", n.Name, err)
	}
	if info.Swarm.LocalNodeState != swarm.LocalNodeStateLocked {
		return "not locked", nil
	}
	if key != "" {
		if err := unlockWith(ctx, n, key); err != nil {
			return "", err
		}
		if err := waitReady(ctx, n, n); err != nil {
			return "", err
		}
		if _, err := keepLiveKey(ctx, n); err != nil {
			return "", err
		}
		return "unlocked with the key given (now kept in the store)", nil
	}
	if err := unlockNode(ctx, n); err != nil {
		return "", err
	}
	if err := waitUnlocked(ctx, n); err != nil {
		return "", err
	}
	if err := waitReady(ctx, n, n); err != nil { // Ready in its swarm's list, seen by itself
		return "", err
	}
	return "unlocked with the kept key", nil
}

// UnlockKey is the swarm's unlock key, read through manager m and kept (the only way `machine`
// prints it); "" when autolock is off. With rotate, a new key replaces it first: the old one is
// kept until a later command (swarm up, unlock-key) finds every manager reachable.
func UnlockKey(ctx context.Context, m *Node, rotate bool) (string, error) {
	if _, err := keepLiveKey(ctx, m); err != nil {
		return "", err
	}
	sw, err := m.Docker.SwarmInspect(ctx)
	if err != nil {
		return "", err
	}
	if !sw.Spec.EncryptionConfig.AutoLockManagers {
		return "", nil
	}
	if rotate {
		if err := m.Docker.SwarmUpdate(ctx, sw.Version, sw.Spec, swarm.UpdateFlags{RotateManagerUnlockKey: true}); err != nil {
			return "", fmt.Errorf("rotating the unlock key through %s: %w", m.Name, err)
		}
		// Kept at once, the old one beside it: no crash leaves a key nobody has.
		if _, err := keepLive(ctx, m, false); err != nil {
			return "", err
		}
	}
	cur, _ := keptKeys(rootOf(m), sw.ID)
	return cur, nil
}

// FindManager is the first of names (in their order) whose engine answers as an active manager,
// open (the caller closes it).
func FindManager(ctx context.Context, a *machine.API, names []string) (*Node, error) {
	if m := findManager(ctx, names, opener(a)); m != nil {
		return m, nil
	}
	return nil, fmt.Errorf("none of %s answers as a manager of a swarm", strings.Join(names, ", "))
}

// UnlockStarted unlocks a machine just started or restarted when it manages a swarm with
// autolock and came back locked (the store's kept key); "" when there was nothing to unlock.
func UnlockStarted(ctx context.Context, h *machine.Host) (string, error) {
	n, err := Open(h)
	if err != nil {
		return "", err
	}
	defer n.Close()
	if rememberedSwarm(n) == "" {
		return "", nil // never seen managing a swarm
	}
	msg, err := unlockOne(ctx, n, "")
	if err != nil || msg == "not locked" {
		return "", err
	}
	return msg, nil
}

// unlockIfLocked unlocks n with the store's kept key when its engine says it is locked, and
// waits until it is an active manager again; false when it was not locked.
func unlockIfLocked(ctx context.Context, n *Node) (bool, error) {
	var info system.Info
	err := wait.Until(ctx, time.Minute, time.Second, func(ctx context.Context) (bool, string, error) {
		var err error
		info, err = n.Docker.Info(ctx)
		if err != nil {
			return false, err.Error(), nil
		}
		return true, "", nil
	})
	if err != nil || info.Swarm.LocalNodeState != swarm.LocalNodeStateLocked {
		return false, err
	}
	if err := unlockNode(ctx, n); err != nil {
		return false, err
	}
	return true, waitUnlocked(ctx, n)
}
