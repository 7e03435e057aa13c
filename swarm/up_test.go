package swarm

import (
	"sync"

	"github.com/docker/docker/api/types/swarm"

	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestUpFreshCluster: a fresh 3+2 cluster from nothing: the first manager starts the swarm, the
// other managers join one by one, the workers after them, each advertising its own address.
func TestUpFreshCluster(t *testing.T) {
	ctx := context.Background()
	f := newFakeCluster(t)
	c := f.file(t, 3, "m1", "m2", "m3", "w1", "w2")
	plan, err := f.up(ctx, c, UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) == 0 || !Changes(plan) {
		t.Fatalf("a fresh cluster's plan: %v", plan)
	}
	want := []string{"m1:manager:active", "m2:manager:active", "m3:manager:active", "w1:worker:active", "w2:worker:active"}
	if got := f.roles(); !slices.Equal(got, want) {
		t.Fatalf("swarm after up: %v, want %v", got, want)
	}
	ch := f.changes()
	if len(ch) < 5 || ch[0] != "init m1 advertising 10.99.0.1" || ch[1] != "join m2 as manager advertising 10.99.0.2" || ch[2] != "join m3 as manager advertising 10.99.0.3" {
		t.Errorf("order of the work: %q", ch)
	}
	for _, w := range []string{"w1", "w2"} {
		if i := slices.Index(ch, "join "+w+" as worker advertising 10.99.0."+map[string]string{"w1": "4", "w2": "5"}[w]); i < 3 {
			t.Errorf("%s joined at %d (before the managers, or not at all): %q", w, i, ch)
		}
	}
	for _, n := range c.Nodes {
		if !f.api.Exists(n.Name) {
			t.Errorf("machine %s was not made", n.Name)
		}
	}
}

// TestUpAgainChangesNothing: a second up of the same file plans nothing and changes nothing.
func TestUpAgainChangesNothing(t *testing.T) {
	ctx := context.Background()
	f := newFakeCluster(t)
	c := f.file(t, 3, "m1", "m2", "m3", "w1", "w2")
	if _, err := f.up(ctx, c, UpOptions{}); err != nil {
		t.Fatal(err)
	}
	before := len(f.changes())
	plan, err := f.up(ctx, c, UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if Changes(plan) {
		t.Errorf("the second plan: %v", plan)
	}
	if after := f.changes(); len(after) != before {
		t.Errorf("the second up changed: %q", after[before:])
	}
}

// TestUpFailureHalfWayThenFinish: a worker whose join fails stops the run with its name and the
// way on; the same up again finishes, without redoing what was done.
func TestUpFailureHalfWayThenFinish(t *testing.T) {
	ctx := context.Background()
	f := newFakeCluster(t)
	c := f.file(t, 1, "m1", "w1", "w2")
	f.engines["w2"].failJoin = 1
	_, err := f.up(ctx, c, UpOptions{})
	if err == nil || !strings.Contains(err.Error(), "w2: swarm join") || !strings.Contains(err.Error(), "run the same `machine swarm up` again to finish") {
		t.Fatalf("a failed join: %v", err)
	}
	if got := f.roles(); !slices.Equal(got, []string{"m1:manager:active", "w1:worker:active"}) {
		t.Fatalf("after the failure: %v", got)
	}
	plan, err := f.up(ctx, c, UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 1 || plan[0].Node != "w2" || plan[0].Kind != ChangeJoin {
		t.Errorf("the second plan: %v, want w2's join only", plan)
	}
	if got := f.roles(); !slices.Equal(got, []string{"m1:manager:active", "w1:worker:active", "w2:worker:active"}) {
		t.Errorf("after the second up: %v", got)
	}
	if n := strings.Count(strings.Join(f.changes(), "\n"), "init "); n != 1 {
		t.Errorf("the swarm was started %d times", n)
	}
}

// TestUpRefusesLosingQuorum: with one of three managers down, a file that demotes another is
// refused before anything changes.
func TestUpRefusesLosingQuorum(t *testing.T) {
	ctx := context.Background()
	f := newFakeCluster(t)
	c := f.file(t, 3, "m1", "m2", "m3", "w1")
	if _, err := f.up(ctx, c, UpOptions{}); err != nil {
		t.Fatal(err)
	}
	f.sw.mu.Lock()
	f.sw.nodes[f.sw.nodeOf("m3")].ManagerStatus.Reachability = "unreachable"
	f.sw.mu.Unlock()
	before := len(f.changes())
	fewer := f.file(t, 1, "m1", "m2", "m3", "w1") // m2 and m3 workers
	_, err := f.up(ctx, fewer, UpOptions{})
	var qe *QuorumError
	if !errors.As(err, &qe) {
		t.Fatalf("demoting with a manager unreachable: %v", err)
	}
	if after := f.changes(); len(after) != before {
		t.Errorf("a refused up changed: %q", after[before:])
	}
}

// TestUpSkipsADownNode with nothing to do, and stops at one that has something: named, with the fix.
func TestUpSkipsADownNode(t *testing.T) {
	ctx := context.Background()
	f := newFakeCluster(t)
	c := f.file(t, 1, "m1", "w1", "w2")
	if _, err := f.up(ctx, c, UpOptions{}); err != nil {
		t.Fatal(err)
	}
	f.engines["w2"].down = true
	var said []string
	c = f.file(t, 1, "m1", "w1", "w2")
	c.Nodes[1].Labels = map[string]string{"zone": "a"} // a change, for another node
	if _, err := f.up(ctx, c, UpOptions{Progress: func(n, m string) { said = append(said, n+": "+m) }}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(said, "w2: its engine does not answer (w2: Cannot connect to the Docker daemon: connection refused): skipped (the plan has nothing for it)") {
		t.Errorf("a node that is down with nothing to do: %q", said)
	}
	labelled := f.file(t, 1, "m1", "w1", "w2")
	labelled.Nodes[2].Labels = map[string]string{"zone": "b"}
	_, err := f.up(ctx, labelled, UpOptions{})
	if err == nil || !strings.Contains(err.Error(), "w2: ") || !strings.Contains(err.Error(), "machine start w2") {
		t.Errorf("a change for a node that is down: %v", err)
	}
}

// TestDownKeepsQuorumToTheEnd: workers leave first, then managers one by one, the one gone
// through last; the machines are removed.
// TestDownWorkerLeaveTimesOut: a worker whose engine ends its leave at its own deadline (a
// loaded host: measured with 100 container hosts) is taken out by force, and down goes on.
func TestDownWorkerLeaveTimesOut(t *testing.T) {
	ctx := context.Background()
	f := newFakeCluster(t)
	c := f.file(t, 1, "m1", "w1", "w2")
	if _, err := f.up(ctx, c, UpOptions{}); err != nil {
		t.Fatal(err)
	}
	f.engines["w1"].leaveTimesOut = 1
	if err := f.down(ctx, c, DownOptions{}); err != nil {
		t.Fatalf("down with a worker's leave timed out: %v", err)
	}
	for _, n := range c.Nodes {
		if f.api.Exists(n.Name) {
			t.Errorf("machine %s is left", n.Name)
		}
	}
	if f.engines["w1"].leaveTimesOut != 0 {
		t.Error("the worker's leave was not tried")
	}
}

func TestDownKeepsQuorumToTheEnd(t *testing.T) {
	ctx := context.Background()
	f := newFakeCluster(t)
	c := f.file(t, 3, "m1", "m2", "m3", "w1", "w2")
	if _, err := f.up(ctx, c, UpOptions{}); err != nil {
		t.Fatal(err)
	}
	before := len(f.changes())
	if err := f.down(ctx, c, DownOptions{}); err != nil {
		t.Fatal(err)
	}
	var leaves []string
	for _, ch := range f.changes()[before:] {
		if name, ok := strings.CutPrefix(ch, "leave "); ok {
			leaves = append(leaves, name)
		}
	}
	if len(leaves) != 5 || !slices.Contains(leaves[:2], "w1") || !slices.Contains(leaves[:2], "w2") || !slices.Equal(leaves[2:], []string{"m3", "m2", "m1"}) {
		t.Errorf("the order of leaving: %v", leaves)
	}
	for _, n := range c.Nodes {
		if f.api.Exists(n.Name) {
			t.Errorf("machine %s is left", n.Name)
		}
	}
}

// TestRollStopsAtTheNodeThatDoesNotComeBack: a roll over w1 then w2, where w1 is not Ready
// again after its restart, stops at w1, names it, and never touches w2.
func TestRollStopsAtTheNodeThatDoesNotComeBack(t *testing.T) {
	ctx := context.Background()
	f := newFakeCluster(t)
	c := f.file(t, 1, "m1", "w1", "w2")
	if _, err := f.up(ctx, c, UpOptions{}); err != nil {
		t.Fatal(err)
	}
	defer func(d time.Duration) { backLimit = d }(backLimit)
	backLimit = time.Second
	f.engines["w1"].notBack = true
	m, err := f.open("m1")
	if err != nil {
		t.Fatal(err)
	}
	before := len(f.changes())
	var worked []string
	err = roll(ctx, m, []string{"m1"}, [][]string{{"w1"}, {"w2"}}, f.open, func(string, string) {}, func(ctx context.Context, name string, say func(string)) error {
		worked = append(worked, name)
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "w1: coming back after its engine restart: w1 is not Ready after 1s") || !strings.Contains(err.Error(), "the nodes after it were not touched") {
		t.Fatalf("the roll: %v", err)
	}
	if !slices.Equal(worked, []string{"w1"}) {
		t.Errorf("work ran on %v", worked)
	}
	if got := f.changes()[before:]; !slices.Equal(got, []string{"availability w1 drain"}) {
		t.Errorf("the roll changed %q: only w1's drain", got)
	}
}

// TestUpConvergesRoles: a file that swaps a manager and a worker promotes the worker first and
// demotes the manager after, each Ready in its new role before the next change.
func TestUpConvergesRoles(t *testing.T) {
	ctx := context.Background()
	f := newFakeCluster(t)
	c := f.file(t, 3, "m1", "m2", "m3", "w1")
	if _, err := f.up(ctx, c, UpOptions{}); err != nil {
		t.Fatal(err)
	}
	swapped := f.file(t, 3, "m1", "m2", "w1", "m3") // w1 third: a manager now; m3 a worker
	before := len(f.changes())
	plan, err := f.up(ctx, swapped, UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ch := range plan {
		if ch.Kind != ChangeKeep {
			kinds = append(kinds, string(ch.Kind)+" "+ch.Node)
		}
	}
	if !slices.Equal(kinds, []string{"promote w1", "demote m3"}) {
		t.Errorf("the plan: %q", kinds)
	}
	if got := f.changes()[before:]; !slices.Equal(got, []string{"role w1 manager", "role m3 worker"}) {
		t.Errorf("the changes: %q", got)
	}
	want := []string{"m1:manager:active", "m2:manager:active", "m3:worker:active", "w1:manager:active"}
	if got := f.roles(); !slices.Equal(got, want) {
		t.Errorf("after the swap: %v", got)
	}
}

// TestQuorumLostIsSaid: with two of three managers gone, up says so at once, naming them and
// the way out, instead of failing on the first call the swarm cannot answer.
func TestQuorumLostIsSaid(t *testing.T) {
	ctx := context.Background()
	f := newFakeCluster(t)
	c := f.file(t, 3, "m1", "m2", "m3", "w1")
	if _, err := f.up(ctx, c, UpOptions{}); err != nil {
		t.Fatal(err)
	}
	f.engines["m2"].down, f.engines["m3"].down = true, true
	_, err := f.up(ctx, c, UpOptions{})
	var lost *QuorumLostError
	if !errors.As(err, &lost) || !strings.Contains(err.Error(), "quorum lost: 2 of 3 managers unreachable (m2, m3)") || !strings.Contains(err.Error(), "machine swarm recover -f fake.yml") {
		t.Fatalf("up with quorum lost: %v", err)
	}
	f.engines["m3"].down = false
	if _, err := f.up(ctx, c, UpOptions{}); errors.As(err, &lost) {
		t.Errorf("two of three managers answer: %v", err)
	}
}

// TestRecover: two of three managers killed: recover forces a new cluster on the survivor,
// makes the lost managers again and joins them; the worker stays in the swarm as it was. With the
// quorum intact recover refuses.
func TestRecover(t *testing.T) {
	ctx := context.Background()
	f := newFakeCluster(t)
	c := f.file(t, 3, "m1", "m2", "m3", "w1")
	if _, err := f.up(ctx, c, UpOptions{}); err != nil {
		t.Fatal(err)
	}
	recover := func() error {
		r := newRun(f.api, c)
		r.open = f.open
		return recoverWith(ctx, r)
	}
	if err := recover(); err == nil || !strings.Contains(err.Error(), "has its quorum: nothing to recover") {
		t.Fatalf("recover with the quorum intact: %v", err)
	}
	f.sw.mu.Lock()
	w1 := f.sw.nodeOf("w1")
	f.sw.mu.Unlock()
	time.Sleep(10 * time.Millisecond)
	f.kill("m2")
	f.kill("m3")
	before := len(f.changes())
	if err := recover(); err != nil {
		t.Fatal(err)
	}
	ch := f.changes()[before:]
	if len(ch) == 0 || ch[0] != "force new cluster on m1 advertising 10.99.0.1" {
		t.Errorf("the first change: %q", ch)
	}
	want := []string{"m1:manager:active", "m2:manager:active", "m3:manager:active", "w1:worker:active"}
	if got := f.roles(); !slices.Equal(got, want) {
		t.Errorf("after recover: %v", got)
	}
	f.sw.mu.Lock()
	defer f.sw.mu.Unlock()
	if f.sw.nodeOf("w1") != w1 {
		t.Error("the worker joined again: it should have stayed")
	}
	if st := f.sw.nodes[w1].Status.State; st != swarm.NodeStateReady {
		t.Errorf("recover returned with the worker %s on the new cluster: it should wait until it reports", st)
	}
}

// TestRecoverInterruptedThenAgain: a recover interrupted once its new cluster is forced (the
// swarm has its quorum again) is finished by the same recover run again, not refused.
func TestRecoverInterruptedThenAgain(t *testing.T) {
	f := newFakeCluster(t)
	c := f.file(t, 3, "m1", "m2", "m3", "w1")
	if _, err := f.up(context.Background(), c, UpOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	f.kill("m2")
	f.kill("m3")
	ctx, cancel := context.WithCancel(context.Background())
	r := newRun(f.api, c)
	r.open = f.open
	r.up.Progress = func(node, msg string) {
		if strings.HasPrefix(msg, "forcing a new cluster") {
			cancel()
		}
	}
	if err := recoverWith(ctx, r); err == nil {
		t.Fatal("the interrupted recover returned no error")
	}
	if ch := f.changes(); !slices.Contains(ch, "force new cluster on m1 advertising 10.99.0.1") {
		t.Fatalf("the interrupt came before the new cluster: %q", ch)
	}
	r = newRun(f.api, c)
	r.open = f.open
	if err := recoverWith(context.Background(), r); err != nil {
		t.Fatalf("recover again: %v", err)
	}
	want := []string{"m1:manager:active", "m2:manager:active", "m3:manager:active", "w1:worker:active"}
	if got := f.roles(); !slices.Equal(got, want) {
		t.Errorf("after recover again: %v", got)
	}
	r = newRun(f.api, c)
	r.open = f.open
	if err := recoverWith(context.Background(), r); err == nil || !strings.Contains(err.Error(), "has its quorum") {
		t.Errorf("a third recover, with nothing to recover: %v", err)
	}
}

// TestUpPrunesNodesGoneForGood: up --prune removes the entry of a node that is down, no machine
// and not in the file, and leaves the file's nodes as they are.
func TestUpPrunesNodesGoneForGood(t *testing.T) {
	ctx := context.Background()
	f := newFakeCluster(t)
	c := f.file(t, 1, "m1", "w1", "x1")
	if _, err := f.up(ctx, c, UpOptions{}); err != nil {
		t.Fatal(err)
	}
	f.kill("x1")
	if err := f.api.Remove(ctx, "x1", true); err != nil {
		t.Fatal(err)
	}
	f.sw.mu.Lock()
	f.sw.nodes[f.sw.nodeOf("x1")].Status.State = "down"
	f.sw.mu.Unlock()
	c = f.file(t, 1, "m1", "w1")
	plan, err := f.up(ctx, c, UpOptions{Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 1 || plan[0].Kind != ChangeForget || plan[0].Node != "x1" {
		t.Errorf("the plan: %v", plan)
	}
	if got := f.roles(); !slices.Equal(got, []string{"m1:manager:active", "w1:worker:active"}) {
		t.Errorf("after up --prune: %v", got)
	}
}

// TestUpRepairsAStuckPendingJoin: a worker whose engine was left pending by a join it gave up
// on leaves it and is joined again by up, which says so.
func TestUpRepairsAStuckPendingJoin(t *testing.T) {
	defer func(d time.Duration) { pendingGrace = d }(pendingGrace)
	pendingGrace = 2 * time.Second
	ctx := context.Background()
	f := newFakeCluster(t)
	c := f.file(t, 1, "m1", "w1", "w2")
	if _, err := f.up(ctx, c, UpOptions{}); err != nil {
		t.Fatal(err)
	}
	f.sw.mu.Lock()
	id := f.sw.nodeOf("w2")
	delete(f.sw.engineOf, id)
	delete(f.sw.nodes, id)
	f.engines["w2"].pending = true
	f.sw.mu.Unlock()
	var said []string
	var mu sync.Mutex
	if _, err := f.up(ctx, c, UpOptions{Progress: func(node, msg string) { mu.Lock(); said = append(said, node+": "+msg); mu.Unlock() }}); err != nil {
		t.Fatal(err)
	}
	if f.engines["w2"].pending || !slices.Contains(said, "w2: its engine was stuck in a swarm join that did not finish (pending, or in error): it left it, and joins again") {
		t.Errorf("pending %v; said %q", f.engines["w2"].pending, said)
	}
	if got := f.roles(); !slices.Equal(got, []string{"m1:manager:active", "w1:worker:active", "w2:worker:active"}) {
		t.Errorf("after up: %v", got)
	}
}

// A worker whose certificate expired while it was off: its engine's swarm state is in error, its
// entry Down. plan names it (not as a node it could not observe), up has it leave, join again,
// and removes its old entry.
func TestUpRejoinsANodeWhoseCertificateExpired(t *testing.T) {
	ctx := context.Background()
	f := newFakeCluster(t)
	c := f.file(t, 1, "m1", "w1", "w2")
	if _, err := f.up(ctx, c, UpOptions{}); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	f.sw.mu.Lock()
	old := f.sw.nodeOf("w2")
	delete(f.sw.engineOf, old) // its entry stays Ready a while: the managers have not missed its heartbeats yet
	f.engines["w2"].expired = at
	f.sw.mu.Unlock()

	obs, err := observe(ctx, f.api, c, f.open, false)
	if err != nil {
		t.Fatal(err)
	}
	obs.close()
	if err := obs.Complete(); err != nil {
		t.Fatalf("an expired node is not one that could not be observed: %v", err)
	}
	plan, err := Plan(c, obs.Observed, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, ch := range plan {
		lines = append(lines, ch.String())
	}
	want := []string{
		"w2: its swarm certificate expired at " + at.Format(time.RFC3339) + " (off for longer than its validity): out of its swarm, joins again (labels and availability restored, its old entry removed)",
		"w2: join as worker",
		"w2: remove its old node entry " + shortID(old) + " (left by an earlier join: ready until the managers miss its heartbeats)",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}

	var said []string
	var mu sync.Mutex
	if _, err := f.up(ctx, c, UpOptions{Progress: func(node, msg string) { mu.Lock(); said = append(said, node+": "+msg); mu.Unlock() }}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(said, "w2: its swarm certificate expired at "+at.Format(time.RFC3339)+" (it was off for longer than its validity): it left its swarm, and joins again") {
		t.Errorf("said %q", said)
	}
	if got := f.roles(); !slices.Equal(got, []string{"m1:manager:active", "w1:worker:active", "w2:worker:active"}) {
		t.Errorf("after up: %v (the old entry of w2 should be gone)", got)
	}
}

func TestCertExpiredAt(t *testing.T) {
	msg := "error while loading TLS certificate in /var/lib/docker/swarm/certificates/swarm-node.crt: certificate (1 - tgtl45jp3ogw7x6pv04sj4bzm) not valid after Thu, 03 Dec 2026 02:10:26 UTC, and it is currently Thu, 03 Dec 2026 03:10:30 UTC: x509: certificate has expired or is not yet valid: "
	at, ok := certExpiredAt(msg)
	if !ok || !at.Equal(time.Date(2026, 12, 3, 2, 10, 26, 0, time.UTC)) {
		t.Errorf("recorded message: %v %v", at, ok)
	}
	for _, m := range []string{
		"", "rpc error: code = Unavailable",
		// a clock behind: not valid yet, not expired
		"error while loading TLS certificate in x: certificate (1 - y) not valid before Thu, 03 Dec 2026 02:10:26 UTC, and it is currently Thu, 03 Dec 2026 01:10:30 UTC: x509: certificate has expired or is not yet valid: ",
		"x509: certificate has expired: not valid after yesterday, and it is currently today",
	} {
		if _, ok := certExpiredAt(m); ok {
			t.Errorf("%q read as an expiry", m)
		}
	}
}

func TestHours(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Hour: "1h", 720 * time.Hour: "720h", 90 * time.Minute: "1h30m", 10 * time.Second: "10s", 2*time.Minute + 10*time.Second: "2m10s", time.Minute: "1m"} {
		if got := hours(d); got != want {
			t.Errorf("hours(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestCertCellAndExpiresSoon(t *testing.T) {
	now := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	for in, want := range map[string]string{"2027-03-03T03:10:00Z": "2027-03-03 03:10", "2026-12-03T02:10:26Z": "expired 2026-12-03 02:10", "": "-", "garbage": "-"} {
		if got := certCell(in, now); got != want {
			t.Errorf("certCell(%q) = %q, want %q", in, got, want)
		}
	}
	c := certKept{NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(8 * time.Hour)} // 10h, 8h left
	if c.soon(now) || !c.soon(now.Add(7*time.Hour+30*time.Minute)) || !c.soon(now.Add(9*time.Hour)) {
		t.Error("soon: the last tenth of a 10h certificate is its last hour")
	}
}
