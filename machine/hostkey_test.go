package machine

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/internal/sshclient"
	"github.com/machine-tools/machine/internal/sshclient/sshtest"
)

// keyedDriver is a fake driver that, as the container driver does, knows its host's key
// before the first SSH connection.
type keyedDriver struct {
	fakeDriver
	key string
}

func (d *keyedDriver) HostKeys(ctx context.Context) ([]string, error) { return []string{d.key}, nil }

func newSigner(t *testing.T) ssh.Signer {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestHostKeyKnownBeforeFirstContact: a driver that reads its host's keys from the host itself
// gets them pinned before the first connection: a host that presents another key is refused
// at once (no trust on first use), and one that presents its own is let through.
func TestHostKeyKnownBeforeFirstContact(t *testing.T) {
	real, other := newSigner(t), newSigner(t)
	addr := sshtest.Server(t, real)
	for _, tc := range []struct {
		name    string
		known   ssh.Signer
		refused bool
	}{{"impostor", other, true}, {"itself", real, false}} {
		var last *keyedDriver
		reg := drivers.Registry{{Name: "keyed", SSHWait: 3e9, New: func() drivers.Driver {
			last = &keyedDriver{fakeDriver: fakeDriver{Addr: addr}, key: string(ssh.MarshalAuthorizedKey(tc.known.PublicKey()))}
			return last
		}}}
		a := openTest(t, reg)
		_, err := a.Create(t.Context(), "k1", CreateOptions{Driver: "keyed"})
		var hke *sshclient.HostKeyChangedError
		if got := errors.As(err, &hke); got != tc.refused {
			t.Errorf("%s: refused=%v (want %v): %v", tc.name, got, tc.refused, err)
		}
		if err == nil {
			t.Fatalf("%s: a host without sessions cannot be provisioned", tc.name)
		}
		if !tc.refused && !strings.Contains(err.Error(), "provisioning") {
			t.Errorf("%s: the connection should have been let through to provisioning: %v", tc.name, err)
		}
		if _, err := os.Stat(a.Store.Root + "/machines/k1"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: the failed create left its record", tc.name)
		}
	}
}
