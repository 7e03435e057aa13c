// Package none is docker-machine's none driver: an engine that machine did not make, recorded by
// its URL. There is no SSH to it, so nothing on it is provisioned: env, url, ls, inspect and rm
// (of the record only) work; its engine must already trust the store's CA (an engine that
// machine provisioned from this store, reached another way).
package none

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/machine-tools/machine/drivers"
)

// Name is the driver's name.
const Name = "none"

// Driver is an engine by its URL.
type Driver struct {
	URL string `json:"URL"`
}

// New returns an empty driver.
func New() drivers.Driver { return &Driver{} }

// Registration is the none driver's entry: one option, --url, named as docker-machine named it.
func Registration() drivers.Registration {
	return drivers.Registration{Name: Name, Usage: "an engine machine did not make, by its URL (no SSH: nothing is provisioned)", New: New,
		NoSSH: true, BareFlags: true,
		Options: []drivers.Option{{Name: "url", Default: "", Usage: "none: the engine's URL, tcp://HOST:PORT",
			Set: drivers.Field(func(d *Driver, v string) { d.URL = v })}}}
}

// DriverName implements drivers.Driver.
func (d *Driver) DriverName() string { return Name }

func (d *Driver) hostPort() (string, int, error) {
	u, err := url.Parse(d.URL)
	if err != nil || u.Scheme != "tcp" || u.Hostname() == "" || u.Port() == "" {
		return "", 0, fmt.Errorf("the none driver needs the engine's URL as tcp://HOST:PORT (--url), not %q", d.URL)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("the engine's URL %q has no valid port", d.URL)
	}
	return u.Hostname(), port, nil
}

// Validate checks the URL before anything is recorded.
func (d *Driver) Validate(ctx context.Context, name string) error {
	_, _, err := d.hostPort()
	return err
}

// Create makes nothing: the engine exists.
func (d *Driver) Create(ctx context.Context, spec drivers.CreateSpec) error { return nil }

// Remove removes nothing: the engine is not machine's.
func (d *Driver) Remove(ctx context.Context) error { return nil }

// State is Running when the engine's port answers.
func (d *Driver) State(ctx context.Context) (drivers.State, error) {
	host, port, err := d.hostPort()
	if err != nil {
		return drivers.Error, err
	}
	c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return drivers.Stopped, nil
	}
	c.Close()
	return drivers.Running, nil
}

// Endpoint is the engine's host and port (no SSH).
func (d *Driver) Endpoint(ctx context.Context) (drivers.Endpoint, error) {
	host, port, err := d.hostPort()
	return drivers.Endpoint{IP: host, EnginePort: port}, err
}
