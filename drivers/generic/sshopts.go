package generic

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/internal/sshconfig"
	"github.com/machine-tools/machine/internal/store"
)

// applySSHConfig resolves the host's address (an alias) through an ssh_config file: HostName,
// Port and User where the flags left their defaults, the first IdentityFile that exists when no
// key was given, ProxyJump, timeouts, and the keys that UserKnownHostsFile already trusts.
func applySSHConfig(s *drivers.Settings, path string) error {
	if path == "" {
		return nil
	}
	d := s.Driver.(*Driver)
	if d.IPAddress == "" {
		return fmt.Errorf("--generic-ssh-config needs the Host alias to look up: pass it as --generic-ip-address")
	}
	f, err := sshconfig.Load(path)
	if err != nil {
		return err
	}
	r, err := f.Resolve(d.IPAddress)
	if err != nil {
		return err
	}
	abs, _ := filepath.Abs(path)
	s.SSH.Alias, s.SSH.ConfigFile = d.IPAddress, abs
	d.IPAddress = r.HostName
	if d.SSHPort == 22 {
		d.SSHPort = r.Port
	}
	if r.User != "" && s.SSHUser == "root" {
		d.SSHUser, s.SSHUser = r.User, r.User
	}
	if s.SSHKey == "" {
		s.SSHKey = firstFile(r.IdentityFiles)
	}
	s.SSH.ConnectTimeout = int(r.ConnectTimeout.Seconds())
	s.SSH.ServerAliveInterval = int(r.ServerAliveInterval.Seconds())
	s.SSH.Jumps = hops(r.ProxyJump, d.SSHUser)
	files := r.KnownHostsFiles
	if len(files) == 0 {
		home, _ := os.UserHomeDir()
		files = []string{filepath.Join(home, ".ssh", "known_hosts")}
	}
	hosts := []string{hostPort(d.IPAddress, d.SSHPort)}
	for _, j := range s.SSH.Jumps {
		hosts = append(hosts, hostPort(j.Host, j.Port))
	}
	for _, kf := range files {
		s.SSHHostKeys = append(s.SSHHostKeys, knownLines(kf, hosts)...)
	}
	return nil
}

// applyProxyJump sets the jump hosts of --generic-ssh-proxy-jump (over a file's ProxyJump),
// each resolved through the ssh_config file when one was given.
func applyProxyJump(s *drivers.Settings, spec string) error {
	if spec == "" {
		return nil
	}
	var f *sshconfig.File
	if s.SSH.ConfigFile != "" {
		var err error
		if f, err = sshconfig.Load(s.SSH.ConfigFile); err != nil {
			return err
		}
	}
	jumps, err := f.Jumps(spec, 0)
	if err != nil {
		return fmt.Errorf("--generic-ssh-proxy-jump: %w", err)
	}
	s.SSH.Jumps = hops(jumps, s.Driver.(*Driver).SSHUser)
	return nil
}

// applyHostKey pins a key given beforehand: an authorized_keys-format key, or a file of them
// (a .pub file, or known_hosts lines).
func applyHostKey(s *drivers.Settings, v string) error {
	if v == "" {
		return nil
	}
	text := v
	if !strings.Contains(v, " ") {
		b, err := os.ReadFile(v)
		if err != nil {
			return fmt.Errorf("--generic-ssh-host-key: give the host's public key (ssh-ed25519 AAAA...) or a file with it: %w", err)
		}
		text = string(b)
	}
	d := s.Driver.(*Driver)
	host := hostPort(d.IPAddress, d.SSHPort)
	n := 0
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && !strings.Contains(f[0], "ssh-") && !strings.Contains(f[0], "ecdsa-") {
			f = f[1:] // a known_hosts line: its hosts first
		}
		if len(f) < 2 {
			continue
		}
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.Join(f, " ")))
		if err != nil {
			return fmt.Errorf("--generic-ssh-host-key: %q is not a public key: %w", strings.Join(f[:2], " "), err)
		}
		s.SSHHostKeys = append(s.SSHHostKeys, knownhosts.Line([]string{host}, key))
		n++
	}
	if n == 0 {
		return fmt.Errorf("--generic-ssh-host-key: no public key in %q", v)
	}
	return nil
}

func hops(in []sshconfig.Hop, defUser string) []store.Hop {
	var out []store.Hop
	for _, h := range in {
		u := h.User
		if u == "" {
			u = defUser
		}
		out = append(out, store.Hop{Alias: h.Alias, Host: h.Host, Port: h.Port, User: u, KeyPath: firstFile(h.IdentityFiles)})
	}
	return out
}

func firstFile(paths []string) string {
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// hostPort is a host as known_hosts names it: host for port 22, [host]:port otherwise.
func hostPort(host string, port int) string {
	return knownhosts.Normalize(net.JoinHostPort(host, strconv.Itoa(port)))
}

// knownLines are the lines of a known_hosts file that trust one of hosts (plain or hashed
// names), rewritten for that host alone, and its @cert-authority lines as they are (their host
// patterns are matched when a host presents a certificate); @revoked lines are left out.
func knownLines(file string, hosts []string) []string {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var out []string
	for len(b) > 0 {
		marker, names, key, _, rest, err := ssh.ParseKnownHosts(b)
		if err != nil {
			break
		}
		b = rest
		if marker == "cert-authority" {
			out = append(out, "@cert-authority "+strings.Join(names, ",")+" "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))))
			continue
		}
		if marker != "" {
			continue
		}
		for _, h := range hosts {
			if matchesHost(names, h) {
				out = append(out, knownhosts.Line([]string{h}, key))
			}
		}
	}
	return out
}

func matchesHost(names []string, host string) bool {
	for _, n := range names {
		if n == host {
			return true
		}
		// |1|salt|hash: HMAC-SHA1 of the host name keyed by the salt (ssh-keygen -H).
		if p := strings.Split(n, "|"); len(p) == 4 && p[1] == "1" {
			salt, err1 := base64.StdEncoding.DecodeString(p[2])
			sum, err2 := base64.StdEncoding.DecodeString(p[3])
			if err1 == nil && err2 == nil {
				m := hmac.New(sha1.New, salt)
				m.Write([]byte(host))
				if hmac.Equal(m.Sum(nil), sum) {
					return true
				}
			}
		}
	}
	return false
}
