// Package sshclient is the SSH transport: dialing with retries up to a deadline, host keys pinned
// in a known_hosts file per machine, one connection reused for all of a host's commands, and
// files uploaded over SFTP.
package sshclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/term"

	"github.com/machine-tools/machine/internal/fsutil"
	"github.com/machine-tools/machine/internal/runner"
)

// Config says how to reach and trust one host.
type Config struct {
	Machine string // the machine's name, for error messages
	Host    string
	Port    int
	User    string
	// KeyPath is the private key file; when empty, or when UseAgent is set, the keys of the
	// ssh-agent at $SSH_AUTH_SOCK are offered too.
	KeyPath  string
	UseAgent bool
	// KnownHosts is the file that pins the host key. With Pin set, an absent entry is trusted and
	// written (first contact at create); otherwise the key must match.
	KnownHosts string
	Pin        bool
	// Insecure skips host key checks. Only an explicit user flag sets it.
	Insecure bool
	Timeout  time.Duration // per connection attempt; 10 s when zero
	// KeepAlive asks the server this often whether it is there (ServerAliveInterval); 0: never.
	KeepAlive time.Duration
	// Jumps are the jump hosts, in order, that the connection goes through (ProxyJump). They
	// share the target's KnownHosts, Pin and Insecure.
	Jumps []Config

	hop bool // a jump host of Machine (messages name it so)
}

// Addr is host:port.
func (c Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// HostKeyChangedError is a host whose key differs from the pinned one.
type HostKeyChangedError struct {
	Machine, Addr, Want, Got string
	Hop                      bool   // Addr is a jump host on the way to Machine
	User                     string // who logs in there (named for a jump host)
}

func (e *HostKeyChangedError) Error() string {
	if e.Hop {
		return fmt.Sprintf("jump host %s@%s: its SSH host key changed (pinned %s, offered %s), on the way to machine %q: if the jump host was rebuilt on purpose, trust its new key with `machine trust-host-key %s`",
			e.User, e.Addr, e.Want, e.Got, e.Machine, e.Machine)
	}
	return fmt.Sprintf("the SSH host key of machine %q at %s changed (pinned %s, offered %s): if the host was rebuilt on purpose, trust the new key with `machine trust-host-key %s`",
		e.Machine, e.Addr, e.Want, e.Got, e.Machine)
}

// AuthError is a host that refused every key offered.
type AuthError struct {
	User, Addr, KeyPath string
	Err                 error
}

func (e *AuthError) Error() string {
	key := "the ssh-agent's keys"
	if e.KeyPath != "" {
		key = e.KeyPath
	}
	return fmt.Sprintf("SSH to %s@%s refused the key %s: authorize its public key in ~%s/.ssh/authorized_keys on the host, or pass the right key (%v)",
		e.User, e.Addr, key, e.User, e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

func (c Config) authMethods() ([]ssh.AuthMethod, func(), error) {
	var signers []ssh.Signer
	if c.KeyPath != "" {
		b, err := os.ReadFile(c.KeyPath)
		if err != nil {
			return nil, nil, fmt.Errorf("reading the SSH key: %w", err)
		}
		s, err := ssh.ParsePrivateKey(b)
		if err != nil {
			var pp *ssh.PassphraseMissingError
			if errors.As(err, &pp) {
				return nil, nil, fmt.Errorf("the SSH key %s has a passphrase: load it into ssh-agent (ssh-add %s) and leave the key flag out", c.KeyPath, c.KeyPath)
			}
			return nil, nil, fmt.Errorf("parsing the SSH key %s: %w", c.KeyPath, err)
		}
		signers = append(signers, s)
	}
	closer := func() {}
	if c.KeyPath == "" || c.UseAgent {
		if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
			if conn, err := net.Dial("unix", sock); err == nil {
				ag := agent.NewClient(conn)
				if ss, err := ag.Signers(); err == nil {
					signers = append(signers, ss...)
				}
				closer = func() { conn.Close() }
			}
		}
	}
	if len(signers) == 0 {
		return nil, closer, ErrNoKey
	}
	return []ssh.AuthMethod{ssh.PublicKeys(signers...)}, closer, nil
}

func (c Config) hostKeyCallback() (ssh.HostKeyCallback, error) {
	if c.Insecure {
		return ssh.InsecureIgnoreHostKey(), nil // #nosec: only behind the user's explicit flag
	}
	if c.KnownHosts == "" {
		return nil, errors.New("no known_hosts file for the machine: cannot verify its host key")
	}
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		if _, err := os.Stat(c.KnownHosts); errors.Is(err, os.ErrNotExist) {
			if !c.Pin {
				return &NoPinError{fmt.Errorf("machine %q has no pinned host key (%s is missing): trust the host with `machine trust-host-key %s`", c.Machine, c.KnownHosts, c.Machine)}
			}
			return PinHostKey(c.KnownHosts, hostname, key)
		}
		cb, err := knownhosts.New(c.KnownHosts)
		if err != nil {
			return &NoPinError{fmt.Errorf("machine %q: its pinned host keys cannot be read (%v): if the host is the one you made, pin its key again with `machine trust-host-key %s`", c.Machine, err, c.Machine)}
		}
		err = cb(hostname, remote, key)
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			if len(ke.Want) > 0 {
				return &HostKeyChangedError{Machine: c.Machine, Addr: hostname, Want: ssh.FingerprintSHA256(ke.Want[0].Key), Got: ssh.FingerprintSHA256(key), Hop: c.hop, User: c.User}
			}
			if c.Pin {
				return PinHostKey(c.KnownHosts, hostname, key)
			}
			return &NoPinError{fmt.Errorf("machine %q: no pinned host key for %s (its address changed?): trust the host with `machine trust-host-key %s`", c.Machine, hostname, c.Machine)}
		}
		return err
	}, nil
}

// PinHostKey makes key the only trusted key of hostname in the known_hosts file; other hosts'
// lines (a machine's jump hosts) stay.
func PinHostKey(file, hostname string, key ssh.PublicKey) error {
	pinMu.Lock()
	defer pinMu.Unlock()
	host := knownhosts.Normalize(hostname)
	var keep []string
	if b, err := os.ReadFile(file); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && !slices.Contains(strings.Split(f[0], ","), host) {
				keep = append(keep, l)
			}
		}
	}
	keep = append(keep, knownhosts.Line([]string{host}, key))
	return fsutil.WriteFileAtomic(file, []byte(strings.Join(keep, "\n")+"\n"), 0o600)
}

var pinMu sync.Mutex

// Client is one SSH connection to a host, shared by all its commands.
type Client struct {
	cfg    Config
	conn   *ssh.Client
	mu     sync.Mutex
	sftp   *sftp.Client
	closer func()
	// sessions bounds the commands running at once on the connection: OpenSSH's sshd refuses a
	// connection's eleventh session (MaxSessions 10, the SFTP subsystem and a shell included).
	sessions chan struct{}
}

// MaxSessions is how many commands run at once on one connection; more wait their turn.
const MaxSessions = 8

// DialOnce makes one connection attempt (through the jump hosts, when there are some).
func DialOnce(ctx context.Context, cfg Config) (*Client, error) {
	_, closer, err := cfg.authMethods() // no key: nothing to dial for
	if err != nil {
		return nil, err
	}
	closer()
	var via *ssh.Client
	release := func() {}
	if len(cfg.Jumps) > 0 {
		if via, release, err = viaChain(ctx, cfg.hops()); err != nil {
			return nil, err
		}
	}
	nc, err := dialTCP(ctx, via, cfg.Addr(), cfg.timeout())
	if err == nil {
		var conn *ssh.Client
		if conn, err = handshake(ctx, nc, cfg); err == nil {
			return &Client{cfg: cfg, conn: conn, closer: release, sessions: make(chan struct{}, MaxSessions)}, nil
		}
	}
	release()
	if len(cfg.Jumps) > 0 {
		return nil, fmt.Errorf("machine %s at %s via jump host %s: %w", cfg.Machine, cfg.Addr(), cfg.Jumps[len(cfg.Jumps)-1].Label(), err)
	}
	return nil, err
}

func isAuthFailure(err error) bool {
	return err != nil && bytes.Contains([]byte(err.Error()), []byte("unable to authenticate"))
}

// ErrNoKey: neither a key file nor an agent offers a key.
var ErrNoKey = errors.New("no SSH key: pass one with the key flag, or load one into ssh-agent")

// NoPinError is a host whose key cannot be checked: nothing pinned for it, or the pinned keys
// cannot be read. Retrying does not help.
type NoPinError struct{ Err error }

func (e *NoPinError) Error() string { return e.Err.Error() }
func (e *NoPinError) Unwrap() error { return e.Err }

// Permanent reports whether retrying a dial cannot help: the host's key changed or cannot be
// checked, the key was refused, there is no key, or the address names no host.
func Permanent(err error) bool {
	var hke *HostKeyChangedError
	var ae *AuthError
	var np *NoPinError
	var dns *net.DNSError
	return errors.As(err, &hke) || errors.As(err, &ae) || errors.As(err, &np) || errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrNoKey) ||
		(errors.As(err, &dns) && dns.IsNotFound)
}

// Dial connects, retrying with backoff until ctx ends; it returns the last real error.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	delay := 100 * time.Millisecond
	var last error
	for {
		c, err := DialOnce(ctx, cfg)
		if err == nil {
			return c, nil
		}
		if Permanent(err) {
			return nil, err
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("SSH to %s@%s did not answer in time: %w", cfg.User, cfg.Addr(), last)
		case <-time.After(delay):
		}
		if delay < time.Second {
			delay = delay * 3 / 2
		}
	}
}

// Close closes the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.sftp != nil {
		c.sftp.Close()
	}
	c.mu.Unlock()
	err := c.conn.Close()
	c.closer()
	return err
}

// Conn is the underlying connection, for interactive sessions.
func (c *Client) Conn() *ssh.Client { return c.conn }

// Config returns the settings the client was made with.
func (c *Client) Config() Config { return c.cfg }

// Run runs argv on the host (see runner.Runner).
func (c *Client) Run(ctx context.Context, stdin io.Reader, argv ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	code, err := c.Exec(ctx, runner.Quote(argv...), stdin, &stdout, &stderr)
	if err != nil {
		return stdout.Bytes(), err
	}
	if code != 0 {
		return stdout.Bytes(), &runner.CommandError{Host: c.cfg.Machine, Argv: argv, ExitCode: code, Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	}
	return stdout.Bytes(), nil
}

// Exec runs a command line in a new session on the shared connection and returns its exit code.
func (c *Client) Exec(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	select {
	case c.sessions <- struct{}{}:
		defer func() { <-c.sessions }()
	case <-ctx.Done():
		return -1, ctx.Err()
	}
	s, err := c.newSession(ctx)
	if err != nil {
		return -1, fmt.Errorf("SSH session to %s: %w", c.cfg.Addr(), err)
	}
	defer s.Close()
	s.Stdin, s.Stdout, s.Stderr = stdin, stdout, stderr
	if err := s.Start(cmd); err != nil {
		return -1, err
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = s.Signal(ssh.SIGKILL)
		s.Close()
		return -1, ctx.Err()
	}
	if err == nil {
		return 0, nil
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		return ee.ExitStatus(), nil
	}
	var em *ssh.ExitMissingError
	if errors.As(err, &em) {
		return -1, fmt.Errorf("the command's connection to %s closed without an exit status", c.cfg.Addr())
	}
	return -1, err
}

// newSession opens a session. sshd frees a session's slot only when it has handled the close of
// the one before, which can come after the client's next open: a refused open ("open failed")
// is tried again for a second at most.
func (c *Client) newSession(ctx context.Context) (*ssh.Session, error) {
	for start := time.Now(); ; {
		s, err := c.conn.NewSession()
		var oce *ssh.OpenChannelError
		if err == nil || !errors.As(err, &oce) || oce.Reason != ssh.ConnectionFailed || time.Since(start) > time.Second {
			return s, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// SFTP returns the connection's SFTP client, opened once.
func (c *Client) SFTP() (*sftp.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sftp != nil {
		return c.sftp, nil
	}
	s, err := sftp.NewClient(c.conn)
	if err != nil {
		return nil, fmt.Errorf("SFTP on %s: %w", c.cfg.Addr(), err)
	}
	c.sftp = s
	return s, nil
}

// Upload writes data to p over SFTP through a temporary file and a rename.
func (c *Client) Upload(ctx context.Context, p string, data []byte, mode os.FileMode) error {
	s, err := c.SFTP()
	if err != nil {
		return err
	}
	tmp := path.Join(path.Dir(p), "."+path.Base(p)+".machine-tmp")
	f, err := s.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("uploading %s: %w", p, err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("uploading %s: %w", p, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("uploading %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("uploading %s: %w", p, err)
	}
	if err := s.PosixRename(tmp, p); err != nil {
		return fmt.Errorf("uploading %s: %w", p, err)
	}
	return ctx.Err()
}

// FetchHostKey connects without authenticating and returns the key the host offers.
func FetchHostKey(ctx context.Context, addr string) (ssh.PublicKey, error) {
	nc, err := dialTCP(ctx, nil, addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return offeredKey(nc, addr)
}

func offeredKey(nc net.Conn, addr string) (ssh.PublicKey, error) {
	defer nc.Close()
	var got ssh.PublicKey
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	_, _, _, err := ssh.NewClientConn(nc, addr, &ssh.ClientConfig{
		User: "machine-keyscan",
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			got = key
			return errors.New("host key read")
		},
	})
	if got == nil {
		return nil, err
	}
	return got, nil
}

// Pinned is a host key that TrustKeys pinned.
type Pinned struct {
	Addr string
	Key  ssh.PublicKey
}

// TrustKeys pins the keys that cfg's jump hosts and host offer now, hop by hop (each next hop
// is reached through the ones just pinned), in cfg.KnownHosts: after a host was rebuilt.
func TrustKeys(ctx context.Context, cfg Config) ([]Pinned, error) {
	hops := cfg.hops()
	var out []Pinned
	for i := 0; i <= len(hops); i++ {
		addr, label := cfg.Addr(), "machine "+cfg.Machine
		if i < len(hops) {
			addr, label = hops[i].Addr(), "jump host "+hops[i].Label()
		}
		var nc net.Conn
		var err error
		var release func()
		if i == 0 {
			nc, err = dialTCP(ctx, nil, addr, cfg.timeout())
		} else {
			var via *ssh.Client
			if via, release, err = viaChain(ctx, hops[:i]); err == nil {
				nc, err = dialTCP(ctx, via, addr, cfg.timeout())
			}
		}
		var key ssh.PublicKey
		if err == nil {
			key, err = offeredKey(nc, addr)
		}
		if release != nil {
			release()
		}
		if err == nil {
			err = PinHostKey(cfg.KnownHosts, addr, key)
		}
		if err != nil {
			return out, fmt.Errorf("reading the host key of %s at %s: %w", label, addr, err)
		}
		out = append(out, Pinned{Addr: addr, Key: key})
	}
	return out, nil
}

// Shell opens a login shell with the user's terminal (a pty of its size when stdin is one, raw
// mode while it runs) and returns the remote shell's exit status.
func (c *Client) Shell(stdin, stdout, stderr *os.File) (int, error) {
	s, err := c.conn.NewSession()
	if err != nil {
		return 0, err
	}
	defer s.Close()
	s.Stdin, s.Stdout, s.Stderr = stdin, stdout, stderr
	if fd := int(stdin.Fd()); term.IsTerminal(fd) {
		w, h, err := term.GetSize(fd)
		if err != nil {
			w, h = 80, 24
		}
		t := os.Getenv("TERM")
		if t == "" {
			t = "xterm"
		}
		if err := s.RequestPty(t, h, w, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
			return 0, err
		}
		old, err := term.MakeRaw(fd)
		if err != nil {
			return 0, err
		}
		defer term.Restore(fd, old)
	}
	if err := s.Shell(); err != nil {
		return 0, err
	}
	var ee *ssh.ExitError
	if err := s.Wait(); errors.As(err, &ee) {
		return ee.ExitStatus(), nil
	} else if err != nil {
		return 0, err
	}
	return 0, nil
}
