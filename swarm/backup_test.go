package swarm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm/cluster"
)

// TestBackupChoosesAManagerThatCanStop: not the leader when another manager will do; refused
// when stopping any would cost the quorum (a manager the swarm still counts but whose engine does
// not answer is down); the only manager with a warning.
func TestBackupChoosesAManagerThatCanStop(t *testing.T) {
	c, err := cluster.Parse("c.yml", []byte("name: c\ndriver: none\nnodes:\n  - {name: m1, role: manager, driver-options: {url: \"tcp://10.0.0.1:2376\"}}\n  - {name: m2, role: manager, driver-options: {url: \"tcp://10.0.0.2:2376\"}}\n  - {name: m3, role: manager, driver-options: {url: \"tcp://10.0.0.3:2376\"}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	choose := func(leader string, alive []string, reachable []string, from string) (*backup, []string, error) {
		r := &run{c: c, nodes: map[string]*Node{}, alive: map[string]State{}, ob: &observation{Observed: Observed{Nodes: map[string]ObservedNode{}}}}
		for _, n := range []string{"m1", "m2", "m3"} {
			r.nodes[n] = &Node{Host: &machine.Host{}}
			r.ob.Nodes[n] = ObservedNode{Machine: n, ID: "id-" + n, Manager: true, Leader: n == leader, Reachable: strings.Contains(strings.Join(reachable, ","), n)}
		}
		for _, n := range alive {
			r.alive[n] = State{Active: true, Manager: true}
		}
		var warned []string
		b := &backup{run: r, o: BackupOptions{From: from, Warn: func(m string) { warned = append(warned, m) }}}
		return b, warned, b.choose(r, context.Background())
	}
	all := []string{"m1", "m2", "m3"}
	b, _, err := choose("m1", all, all, "")
	if err != nil || b.info.Machine != "m2" || b.via != b.run.nodes["m1"] {
		t.Errorf("m1 leads: chose %q (via %v), %v; want m2 through m1", b.info.Machine, b.via, err)
	}
	// m3 down for its engine, while the swarm still counts it reachable.
	_, _, err = choose("m1", []string{"m1", "m2"}, all, "")
	var qe *QuorumError
	if !errors.As(err, &qe) || !strings.Contains(err.Error(), "stopping one for the copy would leave 1 of 3") || !strings.Contains(err.Error(), "start m3 first") {
		t.Errorf("one of three down: %v", err)
	}
	if _, _, err := choose("m1", all, all, "m9"); err == nil || !strings.Contains(err.Error(), "m9 is not a reachable manager") {
		t.Errorf("--from m9: %v", err)
	}
	if b, _, err := choose("m1", all, all, "m1"); err != nil || b.info.Machine != "m1" {
		t.Errorf("--from m1: %q %v", b.info.Machine, err)
	}
}

// TestBackupFileWholeAndChecked: the file is 0600, says what it holds, and a damaged one is
// refused by its checksum.
func TestBackupFileWholeAndChecked(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "b.swarm-backup")
	state, err := os.CreateTemp(dir, "state")
	if err != nil {
		t.Fatal(err)
	}
	content := []byte(strings.Repeat("raft state ", 1000))
	state.Write(content)
	sum := sha256.Sum256(content)
	b := &backup{run: &run{}, path: p, state: state, info: BackupInfo{Format: BackupFormat, SwarmID: "sw1", Machine: "m2", StateSHA256: hex.EncodeToString(sum[:]), StateBytes: int64(len(content))}}
	if err := b.write(b.run, context.Background()); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the file: %v %v", st, err)
	}
	info, err := ReadBackup(p)
	if err != nil || info.SwarmID != "sw1" || info.Machine != "m2" {
		t.Fatalf("read back: %+v %v", info, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".b.swarm-backup.tmp-*")); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	raw, _ := os.ReadFile(p)
	i := strings.Index(string(raw), "raft state")
	raw[i] = 'R'
	os.WriteFile(p, raw, 0o600)
	if _, err := ReadBackup(p); err == nil || !strings.Contains(err.Error(), "does not match its checksum") {
		t.Errorf("a damaged backup: %v", err)
	}
}
