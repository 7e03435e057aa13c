package machine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/internal/fsutil"
	"github.com/machine-tools/machine/internal/safetext"
	"github.com/machine-tools/machine/internal/sshclient"
)

// SetAddress gives a machine whose address is the user's to give (the generic driver's) the
// address its host has now: the record and the pinned host keys move to it, the host there must
// prove it is the same host (it presents the key pinned for the old address: nothing is trusted
// anew), and the engine is provisioned again with a certificate for the new address. When the host
// there is not the machine's (another key, no answer), the record is left as it was.
func (h *Host) SetAddress(ctx context.Context, addr string, progress func(string)) (*ProvisionResult, error) {
	rd, ok := h.Driver.(drivers.Readdresser)
	if !ok {
		return nil, fmt.Errorf("machine %q: the %s driver finds its host's address itself (every command that reaches the machine follows a new one): set-address is for generic machines", h.Name, h.DriverName)
	}
	if err := checkAddress(addr); err != nil {
		return nil, err
	}
	if h.SSH.Alias != "" {
		return nil, fmt.Errorf("machine %q is reached through Host %s of %s: change its HostName there, then run `machine provision %s`", h.Name, h.SSH.Alias, h.SSH.ConfigFile, h.Name)
	}
	old := h.IP()
	if addr == old {
		return nil, fmt.Errorf("machine %q is at %s already", h.Name, addr)
	}
	// What is put back should the host there not be this machine's.
	saved, err := h.api.Store.Load(h.Name)
	if err != nil {
		return nil, err
	}
	known, err := os.ReadFile(h.KnownHostsPath())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	undo := func(cause error) error {
		if known != nil {
			if werr := fsutil.WriteFileAtomic(h.KnownHostsPath(), known, 0o600); werr != nil {
				return errors.Join(cause, werr)
			}
		}
		if serr := h.api.Store.Save(saved); serr != nil {
			return errors.Join(cause, serr)
		}
		return cause
	}
	moved := known
	if !h.SSH.InsecureHostKey {
		port := strconv.Itoa(h.SSH.Port)
		if moved, err = movedKnownHosts(known, knownhosts.Normalize(net.JoinHostPort(old, port)), knownhosts.Normalize(net.JoinHostPort(addr, port))); err != nil {
			return nil, fmt.Errorf("machine %q: %w", h.Name, err)
		}
	}
	if err := rd.SetAddress(addr); err != nil {
		return nil, err
	}
	h.SetIP(addr)
	if err := fsutil.WriteFileAtomic(h.KnownHostsPath(), moved, 0o600); err != nil {
		return nil, undo(err)
	}
	if err := h.Save(); err != nil {
		return nil, undo(err)
	}
	if progress != nil {
		progress(fmt.Sprintf("its host is at %s now (was %s): checking that it is the same host (its pinned key), then a certificate for the new address", addr, old))
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	c, err := h.Dial(dctx)
	cancel()
	if err != nil {
		if ke := (*sshclient.HostKeyChangedError)(nil); errors.As(err, &ke) && !ke.Hop {
			return nil, undo(fmt.Errorf("machine %q: the host at %s is not this machine's (it offers SSH host key %s, not the %s pinned for %s): the record still has %s", h.Name, addr, ke.Got, ke.Want, old, old))
		}
		return nil, undo(fmt.Errorf("machine %q: reaching it at %s: %w; the record still has %s", h.Name, addr, err, old))
	}
	c.Close()
	// The same host, at its new address: the record keeps it from here on.
	return h.Reprovision(ctx, ProvisionOptions{ReissueCert: true, Progress: progress})
}

// checkAddress refuses an address that could not be a host's (empty, control characters, spaces).
func checkAddress(addr string) error {
	if addr == "" || strings.ContainsAny(addr, " \t") || safetext.Printable(addr) != addr {
		return fmt.Errorf("%q is not a host's address: give an IP address or a host name", addr)
	}
	return nil
}

// movedKnownHosts is a known_hosts file whose lines for host from are for host to instead (the
// same keys); lines for other hosts (jump hosts) are kept as they are.
func movedKnownHosts(known []byte, from, to string) ([]byte, error) {
	var out bytes.Buffer
	n := 0
	for _, line := range bytes.SplitAfter(known, []byte("\n")) {
		fields := bytes.Fields(line)
		if len(fields) >= 3 && string(fields[0]) == from {
			out.WriteString(to + " " + string(bytes.Join(fields[1:], []byte(" "))) + "\n")
			n++
			continue
		}
		out.Write(line)
	}
	if n == 0 {
		return nil, fmt.Errorf("no host key is pinned for %s: provision it at its old address first, or remove it and create it again", from)
	}
	return out.Bytes(), nil
}
