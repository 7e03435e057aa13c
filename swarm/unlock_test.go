package swarm

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestAutolockKeyKeptAndUsed: a file with autolock makes a swarm locked at rest whose key the
// store keeps (0600, never in a progress line); a manager whose engine restarted is listed by
// the plan and unlocked by up; after a rotation while one manager was down, that manager is
// unlocked with the old key, which is let go once every manager has the new one.
func TestAutolockKeyKeptAndUsed(t *testing.T) {
	ctx := context.Background()
	f := newFakeCluster(t)
	c := f.file(t, 3, "m1", "m2", "m3", "w1")
	on := true
	c.Swarm.Autolock = &on
	var mu sync.Mutex
	var said []string
	o := UpOptions{Progress: func(node, msg string) { mu.Lock(); said = append(said, node+": "+msg); mu.Unlock() }}
	plan, err := f.up(ctx, c, o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(plan, Change{Kind: ChangeSwarm, Detail: "autolock on (the unlock key kept in the store; `machine swarm unlock-key` prints it)"}) {
		t.Errorf("the plan of a new swarm with autolock: %v", plan)
	}
	p := keyPath(f.api.Store.Root, f.sw.id)
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the kept key: %v %v", st, err)
	}
	if cur, _ := keptKeys(f.api.Store.Root, f.sw.id); cur != f.sw.key {
		t.Fatalf("kept %q, the swarm's key is %q", cur, f.sw.key)
	}

	// m2's engine restarts: locked. The plan says so; up unlocks it and says so.
	f.restart("m2")
	ob, err := observe(ctx, f.api, c, f.open, false)
	if err != nil {
		t.Fatal(err)
	}
	ob.close()
	plan, err = Plan(c, ob.Observed, PlanOptions{})
	if err != nil || len(plan) == 0 || plan[0].Kind != ChangeUnlock || plan[0].Node != "m2" {
		t.Fatalf("the plan with m2 locked: %v %v", plan, err)
	}
	said = nil
	if _, err := f.up(ctx, c, o); err != nil {
		t.Fatal(err)
	}
	if f.engines["m2"].locked || !slices.ContainsFunc(said, func(s string) bool { return strings.HasPrefix(s, "m2: was locked") }) {
		t.Errorf("up with m2 locked: locked %v; said %q", f.engines["m2"].locked, said)
	}

	// A rotation while m3 is down: both keys kept; m3 back (locked, knowing the old key) is
	// unlocked with it; then only the new key is kept.
	old := f.sw.key
	f.kill("m3")
	m1, err := f.open("m1")
	if err != nil {
		t.Fatal(err)
	}
	defer m1.Close()
	key, err := UnlockKey(ctx, m1, true)
	if err != nil || key == old || key != f.sw.key {
		t.Fatalf("rotate: %q (was %q) %v", key, old, err)
	}
	if cur, prev := keptKeys(f.api.Store.Root, f.sw.id); cur != key || prev != old {
		t.Fatalf("after a rotation with m3 down: kept %q and %q", cur, prev)
	}
	f.restart("m3")
	f.engines["m3"].locked = true
	said = nil
	if _, err := f.up(ctx, c, o); err != nil {
		t.Fatal(err)
	}
	if f.engines["m3"].locked {
		t.Errorf("m3 still locked; said %q", said)
	}
	if cur, prev := keptKeys(f.api.Store.Root, f.sw.id); cur != key || prev != "" {
		t.Errorf("with every manager back: kept %q and %q", cur, prev)
	}
	for _, s := range said {
		if strings.Contains(s, "SWMKEY") {
			t.Errorf("a progress line holds the key: %q", s)
		}
	}
}

// TestUnlockWithoutAKeptKey: a locked manager whose swarm's key the store does not keep is one
// line that says where the key would be and how to give it.
func TestUnlockWithoutAKeptKey(t *testing.T) {
	ctx := context.Background()
	f := upLocked(t, "m1", "m2", "m3")
	if err := os.Remove(keyPath(f.api.Store.Root, f.sw.id)); err != nil {
		t.Fatal(err)
	}
	f.restart("m2")
	n, err := f.open("m2")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	err = unlockNode(ctx, n)
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), keyPath(f.api.Store.Root, f.sw.id)) || !strings.Contains(err.Error(), "--unlock-key-file") {
		t.Fatalf("unlock without a kept key: %v", err)
	}
	if msg, err := unlockOne(ctx, n, f.sw.key); err != nil || !strings.Contains(msg, "unlocked with the key given") {
		t.Fatalf("unlock with the key given: %q %v", msg, err)
	}
	if cur, _ := keptKeys(f.api.Store.Root, f.sw.id); cur != f.sw.key {
		t.Errorf("the key given is not kept: %q", cur)
	}
}

// TestRollUnlocksARestartedManager: an engine change rolled over a manager of a swarm with
// autolock finds it locked after the restart and unlocks it with the kept key.
func TestRollUnlocksARestartedManager(t *testing.T) {
	ctx := context.Background()
	f := upLocked(t, "m1", "m2", "m3")
	m1, err := f.open("m1")
	if err != nil {
		t.Fatal(err)
	}
	defer m1.Close()
	var said []string
	err = rollOne(ctx, m1, []string{"m1", "m2", "m3"}, "m2", f.open, func(node, msg string) { said = append(said, node+": "+msg) },
		func(ctx context.Context, name string, say func(string)) error { f.restart(name); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if f.engines["m2"].locked || !slices.Contains(said, "m2: was locked after its engine restart (autolock): unlocked with the key the store keeps") {
		t.Errorf("m2 locked %v; said %q", f.engines["m2"].locked, said)
	}
}

// upLocked is a swarm of fake engines brought up from a file with autolock, the first three
// machines managers.
func upLocked(t *testing.T, names ...string) *fakeCluster {
	t.Helper()
	f := newFakeCluster(t)
	c := f.file(t, 3, names...)
	on := true
	c.Swarm.Autolock = &on
	if _, err := f.up(context.Background(), c, UpOptions{}); err != nil {
		t.Fatal(err)
	}
	return f
}
