package virtualbox

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// svcRunner answers "Failed to create the VirtualBox object!" so many times, then the output.
type svcRunner struct {
	fails, calls int
	other        bool
}

func (r *svcRunner) Run(ctx context.Context, args ...string) (string, error) {
	r.calls++
	if r.calls <= r.fails {
		if r.other {
			return "", errors.New("VBoxManage " + strings.Join(args, " ") + ": VBOX_E_OBJECT_NOT_FOUND")
		}
		return "", errors.New("VBoxManage " + strings.Join(args, " ") + ": Failed to create the VirtualBox object!")
	}
	return "vm1\n", nil
}

// TestVBoxSVCStartingIsAskedAgain: VBoxSVC's start-or-exit answer is asked again a few times;
// any other error is returned at once; a VBoxSVC that never answers is said after the attempts.
func TestVBoxSVCStartingIsAskedAgain(t *testing.T) {
	ctx := context.Background()
	defer func(p time.Duration) { vboxSVCPause = p }(vboxSVCPause)
	vboxSVCPause = time.Millisecond
	r := &svcRunner{fails: 2}
	d := &Driver{run: r}
	if out, err := d.vbm(ctx, "list", "vms"); err != nil || out != "vm1\n" || r.calls != 3 {
		t.Errorf("VBoxSVC up at the third call: %q %v after %d calls", out, err, r.calls)
	}
	r = &svcRunner{fails: 2, other: true}
	d = &Driver{run: r}
	if _, err := d.vbm(ctx, "list", "vms"); err == nil || r.calls != 1 {
		t.Errorf("another error: %v after %d calls", err, r.calls)
	}
	r = &svcRunner{fails: 100}
	d = &Driver{run: r}
	if _, err := d.vbm(ctx, "list", "vms"); err == nil || r.calls != vboxSVCAttempts {
		t.Errorf("VBoxSVC never up: %v after %d calls", err, r.calls)
	}
}
