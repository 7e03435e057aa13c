// Package generic is the driver for a host that already exists and answers SSH: it makes nothing
// and removes nothing; the provisioner does all the work.
package generic

import (
	"context"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/internal/sshclient"
)

// Name is the driver's name.
const Name = "generic"

// Driver is an existing host.
type Driver struct {
	IPAddress string `json:"IPAddress"`
	SSHUser   string `json:"SSHUser"`
	SSHPort   int    `json:"SSHPort"`

	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// SetDialer makes State reach the host through the machine's jump hosts (drivers.Tunneled).
func (d *Driver) SetDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) {
	d.dial = dial
}

// New returns a driver with docker-machine's defaults.
func New() drivers.Driver { return &Driver{SSHUser: "root", SSHPort: 22} }

// DriverName implements drivers.Driver.
func (d *Driver) DriverName() string { return Name }

// Validate checks the flags before anything is made.
func (d *Driver) Validate(ctx context.Context, name string) error {
	if d.IPAddress == "" {
		return errors.New("the generic driver needs the host's address: pass --generic-ip-address")
	}
	if d.SSHPort <= 0 || d.SSHPort > 65535 {
		return errors.New("--generic-ssh-port must be between 1 and 65535")
	}
	return nil
}

// SetAddress records the host's new address (drivers.Readdresser).
func (d *Driver) SetAddress(addr string) error {
	if addr == "" {
		return errors.New("give the host's new address")
	}
	d.IPAddress = addr
	return nil
}

// Create makes nothing: the host exists.
func (d *Driver) Create(ctx context.Context, spec drivers.CreateSpec) error { return nil }

// Remove removes nothing from the host.
func (d *Driver) Remove(ctx context.Context) error { return nil }

// State is Running when the host's SSH port answers.
func (d *Driver) State(ctx context.Context) (drivers.State, error) {
	dial := (&net.Dialer{Timeout: 5 * time.Second}).DialContext
	if d.dial != nil {
		dial = d.dial
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := dial(ctx, "tcp", net.JoinHostPort(d.IPAddress, strconv.Itoa(d.SSHPort)))
	if err != nil {
		if sshclient.Permanent(err) { // a jump host refused: its key changed, or ours
			return drivers.Error, err
		}
		return drivers.Stopped, nil
	}
	c.Close()
	return drivers.Running, nil
}

// Endpoint is the configured address.
func (d *Driver) Endpoint(ctx context.Context) (drivers.Endpoint, error) {
	return drivers.Endpoint{IP: d.IPAddress, SSHPort: d.SSHPort, SSHUser: d.SSHUser, Addresses: []string{d.IPAddress}}, nil
}
