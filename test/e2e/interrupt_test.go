//go:build e2e

package e2e

import (
	"bytes"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCreateInterrupted: Ctrl-C at several moments of a container create (while the network and
// container are made, while it boots, while it is provisioned) leaves either a whole machine or
// nothing: no record, container, volume or network; and what it says is true.
func TestCreateInterrupted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	net := uniq("e2e-int-net")
	for i, after := range []time.Duration{50 * time.Millisecond, 300 * time.Millisecond, 700 * time.Millisecond, 1200 * time.Millisecond} {
		name := uniq("e2e-int") + "-" + string(rune('a'+i))
		cmd := exec.Command(machineBin, "create", "-d", "container", "--container-network", net, name)
		cmd.Env = append(cleanEnv(), "MACHINE_STORAGE_PATH="+e.store)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(after)
		_ = cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		if err == nil { // finished before the signal: a whole machine
			e.must("rm", "-y", name)
			continue
		}
		msg := stderr.String()
		if strings.TrimSpace(msg) == "" { // the signal came before the binary listened for it
			msg = "nothing was left behind"
		} else if !strings.Contains(msg, "interrupted") && !strings.Contains(msg, "context canceled") {
			t.Errorf("after %s: the error does not say it was interrupted: %s", after, msg)
		}
		if strings.Contains(msg, "nothing was left behind") {
			if out := e.must("ls", "-q"); strings.Contains(out, name) {
				t.Errorf("after %s: it said nothing was left, but the record is there", after)
			}
			if left := leftovers(t, []string{name}, nil); len(left) > 0 {
				t.Errorf("after %s: it said nothing was left, but %v", after, left)
			}
		} else {
			// Something was left: rm -f removes all of it.
			if r := e.run("rm", "-f", name); r.code != 0 {
				t.Errorf("after %s: rm -f: %s", after, r)
			}
			if left := leftovers(t, []string{name}, nil); len(left) > 0 {
				t.Errorf("after %s: rm -f left %v", after, left)
			}
		}
	}
	// The network the driver made goes with its last machine.
	if left := leftovers(t, nil, []string{net}); len(left) > 0 {
		t.Errorf("left %v", left)
	}
}
