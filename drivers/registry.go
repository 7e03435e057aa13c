package drivers

import (
	"fmt"
	"strings"
	"time"
)

// Registration ties a driver's name to its constructor, its options and the facts about its
// hosts that the lifecycle needs. Behaviour stays in the small interfaces of driver.go; what is
// only a fact is data here.
type Registration struct {
	Name  string
	Usage string
	New   func() Driver
	// Options are the driver's options (flags --NAME-OPTION, cluster-file driver-options).
	Options []Option
	// SSHWait is how long SSH may take to answer once the host is made (0: 2 minutes).
	SSHWait time.Duration
	// EngineWait is how long the engine may take to answer after a start (0: 90 s): emulated
	// VMs boot in minutes.
	EngineWait time.Duration
	// RestartOverSSH: a restart is a reboot over SSH (the host is not the driver's to
	// power-cycle).
	RestartOverSSH bool
	// UserKey: the host exists already and the user's own key (or ssh-agent) logs in; no key is
	// made for it.
	UserKey bool
	// Plugin: a docker-machine driver plug-in. Its options are its flags as it names them (no
	// --NAME- in front), and it makes or takes the host's SSH key itself (Endpoint.SSHKeyPath).
	Plugin bool
	// BareFlags: its options are flags without --NAME- in front (docker-machine's none: --url;
	// plug-ins name their flags themselves).
	BareFlags bool
	// NoSSH: the host is not machine's to reach over SSH (none): nothing is provisioned, and
	// commands that need SSH say so.
	NoSSH bool
}

// FlagPrefix is what the driver's options have in front as flags ("" for BareFlags).
func (r Registration) FlagPrefix() string {
	if r.BareFlags {
		return ""
	}
	return r.Name
}

// DefaultSSHWait and DefaultEngineWait apply where a registration gives no figure.
const (
	DefaultSSHWait    = 2 * time.Minute
	DefaultEngineWait = 90 * time.Second
)

// SSHWaitOrDefault is SSHWait, or the default.
func (r Registration) SSHWaitOrDefault() time.Duration {
	if r.SSHWait > 0 {
		return r.SSHWait
	}
	return DefaultSSHWait
}

// EngineWaitOrDefault is EngineWait, or the default.
func (r Registration) EngineWaitOrDefault() time.Duration {
	if r.EngineWait > 0 {
		return r.EngineWait
	}
	return DefaultEngineWait
}

// Registry is an ordered list of drivers; the CLI fills it explicitly.
type Registry []Registration

// Get finds a driver by name.
func (r Registry) Get(name string) (Registration, error) {
	for _, reg := range r {
		if reg.Name == name {
			return reg, nil
		}
	}
	return Registration{}, fmt.Errorf("Driver %q not found: use one of %s (see `machine create --help`)", name, strings.Join(r.Names(), ", "))
}

// Names lists the drivers in order.
func (r Registry) Names() []string {
	var n []string
	for _, reg := range r {
		n = append(n, reg.Name)
	}
	return n
}
