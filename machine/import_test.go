package machine

import "testing"

// TestImportSSHPort: a docker-machine VirtualBox machine is reached on 22 at its host-only
// address (its SSHPort is the NAT forward on 127.0.0.1); others keep their port.
func TestImportSSHPort(t *testing.T) {
	var c dmConfig
	c.DriverName, c.Driver.IPAddress, c.Driver.SSHPort = "virtualbox", "192.168.99.100", 53211
	if p := importSSHPort(c); p != 22 {
		t.Errorf("virtualbox: %d", p)
	}
	c.DriverName, c.Driver.SSHPort = "generic", 2222
	if p := importSSHPort(c); p != 2222 {
		t.Errorf("generic: %d", p)
	}
	c.Driver.SSHPort = 0
	if p := importSSHPort(c); p != 22 {
		t.Errorf("no port: %d", p)
	}
}
