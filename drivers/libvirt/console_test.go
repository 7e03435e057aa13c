package libvirt

import (
	"strings"
	"testing"
)

func TestConsoleTail(t *testing.T) {
	var nobody *console // nothing could be opened: nothing known, no panic
	if nobody.panicked() != "" || nobody.lastLine() != "" {
		t.Fatal("a nil console knows something")
	}
	nobody.close()

	c := &console{}
	// Debian 12's kernel (6.1.0-50-amd64) booted by QEMU 7.2 without its initrd (virtio_blk is a
	// module): its console's words, recorded, arriving in pieces that cut the panic line.
	for _, p := range []string{
		"[    3.794754] No filesystem could mount root, tried: \r\n[    3.794785] \r\n",
		"[    3.795170] Kernel pa", "nic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\r\n",
		"[    3.795786] CPU: 0 PID: 1 Comm: swapper/0 Not tainted 6.1.0-50-amd64 #1  Debian 6.1.176-1\r\n",
		"[    3.801827] ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0) ]---\r\n\r\n",
	} {
		if _, err := c.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := c.panicked(), "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"; got != want {
		t.Errorf("panicked() = %q, want %q", got, want)
	}
	if got := c.lastLine(); !strings.HasPrefix(got, "[ 3.801827] ---[ end Kernel panic") {
		t.Errorf("lastLine() = %q", got)
	}

	c = &console{}
	c.Write([]byte("\x1b[1;31mdebian login: \x1b[0m\x07"))
	if got := c.lastLine(); got != "debian login:" {
		t.Errorf("escapes left in %q", got)
	}
	c.Write([]byte(strings.Repeat("x", 3*consoleKeep) + "\n"))
	if len(c.tail) > consoleKeep {
		t.Errorf("the tail grew to %d bytes", len(c.tail))
	}
	if got := c.lastLine(); len([]rune(got)) != 201 || c.panicked() != "" {
		t.Errorf("a long line is not cut to 200 characters: %d", len([]rune(got)))
	}
}
