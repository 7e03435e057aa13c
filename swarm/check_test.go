package swarm

import (
	"strings"
	"testing"
)

func TestCheckReportLines(t *testing.T) {
	r := CheckReport{{Node: "w1", Addr: "10.0.0.3"}, {Node: "w2", Blocked: []string{"w2 cannot reach m on 7946/udp", "m cannot reach w2 on 4789/udp"}}}
	var b strings.Builder
	if err := r.WriteLines(&b, "m"); err != nil {
		t.Fatal(err)
	}
	want := "(w1) ok: w1 reaches m on 2377/tcp, 7946/tcp+udp, 4789/udp, and back on 7946/tcp+udp, 4789/udp\n" +
		"(w2) blocked: w2 cannot reach m on 7946/udp\n(w2) blocked: m cannot reach w2 on 4789/udp\n"
	if b.String() != want {
		t.Errorf("lines:\n%s\nwant:\n%s", b.String(), want)
	}
	if err := r.Err("m"); err == nil || err.Error() != "2 blocked port(s) between m and its swarm's nodes" {
		t.Errorf("Err = %v", err)
	}
	if err := r[:1].Err("m"); err != nil {
		t.Errorf("nothing blocked: Err = %v", err)
	}
}
