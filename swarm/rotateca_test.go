package swarm

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestRotateCA: a rotation ends when every node holds a certificate of the new root, with
// progress said as nodes get theirs; a node that stays down is named when the wait ends.
func TestRotateCA(t *testing.T) {
	ctx := context.Background()
	f := newFakeCluster(t)
	c := f.file(t, 1, "m1", "w1", "w2", "w3")
	if _, err := f.up(ctx, c, UpOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := f.open("m1")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var said []int
	if err := RotateCA(ctx, m, func(done, total int) {
		if total != 4 {
			t.Errorf("total %d", total)
		}
		said = append(said, done)
	}); err != nil {
		t.Fatal(err)
	}
	if len(said) < 2 || said[len(said)-1] != 4 {
		t.Errorf("progress: %v", said)
	}
	for id, n := range f.sw.nodes {
		if !sameIssuer(n.Description.TLSInfo, f.sw.tlsInfo()) {
			t.Errorf("node %s: %v, the root is %v", id, n.Description.TLSInfo, f.sw.tlsInfo())
		}
	}
	if f.sw.root != 1 || f.sw.rotating {
		t.Errorf("root %d, rotating %v", f.sw.root, f.sw.rotating)
	}

	defer func(d time.Duration) { rotateCALimit = d }(rotateCALimit)
	rotateCALimit = 3 * time.Second
	f.kill("w2")
	err = RotateCA(ctx, m, nil)
	if err == nil || !strings.Contains(err.Error(), "w2 (ready) still hold certificates of the old CA") {
		t.Fatalf("a rotation with w2 down: %v", err)
	}
}
