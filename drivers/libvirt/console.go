package libvirt

import (
	"bytes"
	"strings"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/machine-tools/machine/drivers"
)

// console follows a booting domain's serial console, on a libvirt connection of its own, so that
// a guest that does not come up can be told about: its console's last line goes into the error,
// and a kernel panic ends the wait at once instead of at the deadline. It never takes the console
// from someone else (virsh console): then it simply knows nothing.
type console struct {
	mu    sync.Mutex
	tail  []byte // the last consoleKeep bytes
	panic string // the first "Kernel panic" line seen
	l     *golibvirt.Libvirt
	done  chan struct{}
}

const consoleKeep = 8 << 10

// followConsole starts following dom's console; a nil console (nothing could be opened) answers
// every question with "".
func (d *Driver) followConsole(dom golibvirt.Domain) *console {
	l, err := d.connect()
	if err != nil {
		return nil
	}
	c := &console{l: l, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		_ = l.DomainOpenConsole(dom, golibvirt.OptString{}, c, 0) // until the guest stops or close
	}()
	return c
}

// Write takes what the console printed.
func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tail = append(c.tail, p...)
	if c.panic == "" {
		if i := bytes.Index(c.tail, []byte("Kernel panic")); i >= 0 {
			if j := bytes.IndexByte(c.tail[i:], '\n'); j >= 0 {
				c.panic = cleanLine(string(c.tail[i : i+j]))
			}
		}
	}
	if n := len(c.tail); n > consoleKeep {
		c.tail = append([]byte(nil), c.tail[n-consoleKeep:]...)
	}
	return len(p), nil
}

// panicked is the kernel's panic line, if the guest's kernel panicked.
func (c *console) panicked() string {
	if c == nil {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.panic
}

// lastLine is the console's last line with something printable on it.
func (c *console) lastLine() string {
	if c == nil {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return lastConsoleLine(c.tail)
}

// close ends the following (without waiting more than a second for libvirtd to agree).
func (c *console) close() {
	if c == nil {
		return
	}
	go func() { _ = c.l.Disconnect() }()
	select {
	case <-c.done:
	case <-time.After(time.Second):
	}
}

// cleanLine is a console line as one could read it (drivers.PlainLine), at most 200 characters.
func cleanLine(s string) string {
	s = drivers.PlainLine(s)
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s
}

// lastConsoleLine is the last line of out with something printable on it ("" if none).
func lastConsoleLine(out []byte) string {
	lines := strings.FieldsFunc(string(out), func(r rune) bool { return r == '\n' || r == '\r' })
	for i := len(lines) - 1; i >= 0; i-- {
		if l := cleanLine(lines[i]); l != "" {
			return l
		}
	}
	return ""
}
