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

// TestCapacityError: hosts that would not fit this machine's memory or inotify limit are refused
// with the numbers; hosts that fit, or limits that cannot be read, are not.
func TestCapacityError(t *testing.T) {
	dir := t.TempDir()
	mem, ino := filepath.Join(dir, "meminfo"), filepath.Join(dir, "inotify")
	defer func(m, i string) { meminfoPath, inotifyPath = m, i }(meminfoPath, inotifyPath)
	meminfoPath, inotifyPath = mem, ino
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(mem, "MemTotal:       24589188 kB\nMemFree:         1000000 kB\nMemAvailable:    8192000 kB\n")
	write(ino, "8192\n")
	if err := CapacityError(50, 0); err != nil {
		t.Errorf("50 hosts in 8000 MiB: %v", err)
	}
	err := CapacityError(1000, 0)
	if err == nil || !strings.Contains(err.Error(), "1000 more container hosts need about 80000 MiB") || !strings.Contains(err.Error(), "8000 MiB available") {
		t.Errorf("1000 hosts in 8000 MiB: %v", err)
	}
	write(ino, "128\n")
	err = CapacityError(10, 10)
	if err == nil || !strings.Contains(err.Error(), "fs.inotify.max_user_instances = 128") || !strings.Contains(err.Error(), "20 container hosts (10 of them new) need about 160") {
		t.Errorf("20 hosts with 128 inotify instances: %v", err)
	}
	meminfoPath, inotifyPath = filepath.Join(dir, "none"), filepath.Join(dir, "none")
	if err := CapacityError(1000, 0); err != nil {
		t.Errorf("unreadable limits: %v", err)
	}
}

// TestHaltedOnRequest: a host stopped while it booted (its systemd's words, recorded from a
// `docker stop` during a create here) is not blamed on this machine's limits.
func TestHaltedOnRequest(t *testing.T) {
	stopped := "Sending SIGKILL to remaining processes... / All filesystems, swaps, loop devices, MD devices and DM devices detached. / Halting system."
	if !haltedOnRequest(stopped) {
		t.Error("an orderly halt not recognised")
	}
	if haltedOnRequest("Failed to create /init.scope control group: Read-only file system / Failed to allocate manager object.") || haltedOnRequest("") {
		t.Error("a failure taken for a halt")
	}
}
