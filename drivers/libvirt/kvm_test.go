package libvirt

import (
	"context"
	"testing"
	"time"
)

// TestKVMProbeAnswersQuickly: the probe decides within seconds either way, and says why when
// KVM is not usable.
func TestKVMProbeAnswersQuickly(t *testing.T) {
	start := time.Now()
	ok, why := KVMWorks(context.Background())
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the probe took %s", d)
	}
	if !ok && why == "" {
		t.Error("a failed probe must say why")
	}
	t.Logf("KVM usable: %v %s (%s)", ok, why, time.Since(start).Round(time.Millisecond))
}
