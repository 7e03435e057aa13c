package generic

import (
	"time"

	"github.com/machine-tools/machine/drivers"
)

// Registration is the generic driver's entry in a registry: its options (docker-machine's
// names, environment variables and defaults) and the facts of its hosts.
func Registration() drivers.Registration {
	return drivers.Registration{
		Name: Name, Usage: "an existing host reached over SSH", New: New,
		Options: []drivers.Option{
			{Name: "ip-address", EnvVar: "GENERIC_IP_ADDRESS", Default: "", Usage: "the host's IP address or name",
				Set: drivers.Field(func(d *Driver, v string) { d.IPAddress = v })},
			{Name: "ssh-user", EnvVar: "GENERIC_SSH_USER", Default: "root", Usage: "the SSH user (not root: passwordless sudo)",
				Set: func(s *drivers.Settings, v any) error {
					s.Driver.(*Driver).SSHUser = v.(string)
					s.SSHUser = v.(string)
					return nil
				}},
			{Name: "ssh-key", EnvVar: "GENERIC_SSH_KEY", Default: "", Path: true, Usage: "the SSH private key (default: the ssh-agent)",
				Set: drivers.Setter(func(s *drivers.Settings, v string) { s.SSHKey = v })},
			{Name: "ssh-port", EnvVar: "GENERIC_SSH_PORT", Default: 22, Usage: "the SSH port",
				Set: drivers.Field(func(d *Driver, v int) { d.SSHPort = v })},
			{Name: "ssh-config", EnvVar: "GENERIC_SSH_CONFIG", Default: "", Path: true, Usage: "an ssh_config file: --generic-ip-address is a Host alias in it (HostName, User, Port, IdentityFile, ProxyJump, UserKnownHostsFile)",
				Set: func(s *drivers.Settings, v any) error { return applySSHConfig(s, v.(string)) }},
			{Name: "ssh-proxy-jump", EnvVar: "GENERIC_SSH_PROXY_JUMP", Default: "", Usage: "jump hosts to go through, as ssh -J: [user@]host[:port], comma-separated",
				Set: func(s *drivers.Settings, v any) error { return applyProxyJump(s, v.(string)) }},
			{Name: "ssh-host-key", EnvVar: "GENERIC_SSH_HOST_KEY", Default: "", Usage: "the host's SSH public key (or a file of it), pinned before the first connection",
				Set: func(s *drivers.Settings, v any) error { return applyHostKey(s, v.(string)) }},
			{Name: "engine-port", EnvVar: "GENERIC_ENGINE_PORT", Default: 2376, Usage: "the engine's TLS port",
				Set: drivers.Setter(func(s *drivers.Settings, v int) { s.EnginePort = v })},
		},
		SSHWait:        30 * time.Second,
		RestartOverSSH: true,
		UserKey:        true,
	}
}
