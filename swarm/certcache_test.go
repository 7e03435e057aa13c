package swarm

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"
)

// TestNodeCertKept: a certificate's validity kept in the store is used while the same CA issues
// the swarm's certificates and it is not in its last tenth; under another CA, near its end, or
// for a node that is down, it is read again (here: the machine has no SSH, so reading fails), and
// what is kept under the same CA given when that fails; nothing under another CA.
func TestNodeCertKept(t *testing.T) {
	f := newFakeCluster(t)
	c := f.file(t, 1, "m1")
	if _, err := f.up(context.Background(), c, UpOptions{}); err != nil {
		t.Fatal(err)
	}
	h, err := f.api.Load("m1")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	keep := func(k certKept) {
		b, _ := json.Marshal(k)
		if err := os.WriteFile(certKeptPath(h), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if _, ok := nodeCertValidity(ctx, h, "ca1", false, now); ok {
		t.Fatal("nothing kept, no SSH: a validity came from nowhere")
	}
	far := certKept{Issuer: "ca1", NotBefore: now.Add(-10 * time.Hour), NotAfter: now.Add(80 * time.Hour)}
	keep(far)
	for _, tc := range []struct {
		why    string
		issuer string
		down   bool
		want   bool
	}{
		{"kept, same CA, far from its end", "ca1", false, true},
		{"kept, same CA, down: read (fails), the kept one", "ca1", true, true},
		{"kept under another CA: read again (fails)", "ca2", false, false},
		{"kept under another CA, down", "ca2", true, false},
		{"issuer not known: read (fails)", "", false, false},
	} {
		got, ok := nodeCertValidity(ctx, h, tc.issuer, tc.down, now)
		if ok != tc.want || (ok && !got.NotAfter.Equal(far.NotAfter)) {
			t.Errorf("%s: %v %v", tc.why, got, ok)
		}
	}
	near := certKept{Issuer: "ca1", NotBefore: now.Add(-85 * time.Hour), NotAfter: now.Add(5 * time.Hour)}
	keep(near)
	for _, down := range []bool{false, true} {
		// read again (fails): the kept one, which says it is near its end
		if got, ok := nodeCertValidity(ctx, h, "ca1", down, now); !ok || !got.soon(now) {
			t.Errorf("kept in its last tenth (down %v): %v %v", down, got, ok)
		}
	}
	if st, err := os.Stat(certKeptPath(h)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the kept file: %v %v", st, err)
	}
}
