package container

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNeighbourWarning: with the kernel's default neighbour table (1024 entries), a cluster of
// 50 container hosts is warned about, naming the sysctl; 30 fit; a raised limit or an unreadable
// one says nothing.
func TestNeighbourWarning(t *testing.T) {
	old := neighbourPath
	t.Cleanup(func() { neighbourPath = old })
	neighbourPath = filepath.Join(t.TempDir(), "gc_thresh3")
	if err := os.WriteFile(neighbourPath, []byte("1024\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if w := NeighbourWarning(50); !strings.Contains(w, "gc_thresh3 = 1024") || !strings.Contains(w, "sysctl -w ") || !strings.Contains(w, "gc_thresh3=32768") {
		t.Errorf("50 hosts: %q", w)
	}
	if w := NeighbourWarning(30); w != "" {
		t.Errorf("30 hosts: %q", w)
	}
	if err := os.WriteFile(neighbourPath, []byte("32768\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if w := NeighbourWarning(100); w != "" {
		t.Errorf("100 hosts, raised: %q", w)
	}
	neighbourPath = filepath.Join(t.TempDir(), "none")
	if w := NeighbourWarning(1000); w != "" {
		t.Errorf("unreadable: %q", w)
	}
}
