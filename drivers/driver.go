// Package drivers defines what a driver is: the small interface that makes, finds and removes a
// host, and the optional abilities (start/stop, kill, restart) that some drivers have. A driver
// knows nothing of the CLI, of TLS or of Docker's configuration: the provisioner does that over
// SSH for every driver alike.
package drivers

import (
	"context"
	"errors"
	"net"

	"github.com/machine-tools/machine/internal/imagecache"
)

// State is a host's state as its driver sees it.
type State string

// The states, named as docker-machine printed them.
const (
	Running  State = "Running"
	Stopped  State = "Stopped"
	Paused   State = "Paused"
	Starting State = "Starting"
	Stopping State = "Stopping"
	Error    State = "Error"
	NotFound State = "NotFound" // the driver finds no host for the machine
)

// ErrNotSupported is an ability the driver lacks.
var ErrNotSupported = errors.New("not supported by this driver")

// CreateSpec is what a driver gets to make a host.
type CreateSpec struct {
	Name string
	// AuthorizedKey is the public key (authorized_keys line) to let in as the SSH user, for
	// drivers that place it (the generic driver's host already has one).
	AuthorizedKey string
	// Progress hears short status lines.
	Progress func(string)
	// Download, when set, wraps an image download to show its progress.
	Download imagecache.Progress
	// Record saves the driver's settings in the machine's record. A driver calls it once it has
	// named what it will make and before it makes it, so that `machine rm -f` finds all of it
	// whatever stops the create (a SIGKILL included).
	Record func() error
	// Owner is the store the machine belongs to: drivers that label what they make put it
	// beside the machine's name, so that leftovers are found by their labels and never another
	// store's machine of the same name.
	Owner string
}

// Endpoint is how a host is reached.
type Endpoint struct {
	IP        string   // the machine's address: SSH, the engine's TLS port and the certificate
	SSHHost   string   // where SSH is reached, when not at IP (a port forward on 127.0.0.1)
	SSHPort   int      // 22 unless the driver forwards it
	SSHUser   string   // the user the driver's hosts log in as
	Addresses []string // every address of the host, for the certificate's SANs
	// SSHKeyPath is the private key that logs in, where the driver made or took one itself (a
	// plug-in's); "" for machine's own key.
	SSHKeyPath string
	// EnginePort is the engine's TLS port where the driver knows it (none: its URL's).
	EnginePort int
}

// Driver makes and manages hosts of one kind. Its exported fields are its configuration, saved
// with the machine as JSON.
type Driver interface {
	// Name is the driver's registered name.
	DriverName() string
	// Create makes the host; when it fails, Remove cleans up whatever it made.
	Create(ctx context.Context, spec CreateSpec) error
	// Remove deletes the host and what the driver made for it; a host already gone is no error.
	Remove(ctx context.Context) error
	// State asks the host's state now.
	State(ctx context.Context) (State, error)
	// Endpoint says how the host is reached now.
	Endpoint(ctx context.Context) (Endpoint, error)
}

// Validator is a driver that can check its configuration before anything is made.
type Validator interface {
	Validate(ctx context.Context, name string) error
}

// Starter can start and stop its hosts.
type Starter interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// Killer can stop a host at once.
type Killer interface {
	Kill(ctx context.Context) error
}

// Restarter restarts a host in its own way (otherwise Stop then Start).
type Restarter interface {
	Restart(ctx context.Context) error
}

// GuestRunner runs a command (an argv, not a shell string) on the host over SSH and returns its
// output.
type GuestRunner func(ctx context.Context, argv ...string) (string, error)

// AddressProber is a driver that learns the host's address from inside it once SSH answers
// (the VirtualBox driver: the host-only NIC's DHCP address, matched by its MAC). The host layer
// calls it after the first SSH connection and after every start, then reads Endpoint again.
type AddressProber interface {
	ProbeAddress(ctx context.Context, run GuestRunner) error
}

// BootChecker is a driver that can tell, while SSH is awaited after a create, that the host will
// not come up (a host container that exited): the wait ends at once, with the driver's reason.
type BootChecker interface {
	CheckBoot(ctx context.Context) error
}

// Tunneled is a driver whose own checks of the host (State) must go where machine's SSH goes:
// through the machine's jump hosts. Machine gives it the dialer when the machine has some.
type Tunneled interface {
	SetDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error))
}

// HostKeyReader is a driver that reads its host's SSH public keys from the host itself, not
// over SSH (the container driver, through the engine): machine pins them before the first
// connection, so that no key is trusted on first use. HostKeys waits, within ctx, until the host
// has made its keys; it returns authorized_keys lines (none: the driver could not tell).
type HostKeyReader interface {
	HostKeys(ctx context.Context) ([]string, error)
}

// Readdresser is a driver whose host's address is the user's to give, not the driver's to find
// (generic): SetAddress records a new one (`machine set-address`).
type Readdresser interface {
	SetAddress(addr string) error
}

// Describer adds driver facts to `machine inspect`.
type Describer interface {
	Describe(ctx context.Context) map[string]any
}
