package sshclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Jump hosts (ProxyJump): one SSH client per hop, shared by every connection of this process
// that goes through the same chain, and each hop's host key checked against the machine's
// known_hosts as the target's is.

// Label is user@host:port, as errors name a host.
func (c Config) Label() string { return c.User + "@" + c.Addr() }

// hopKey identifies a chain up to and including hop i: who logs in where, with which key, and
// which file pins the keys.
func hopKey(hops []Config, i int) string {
	var b strings.Builder
	for _, h := range hops[:i+1] {
		fmt.Fprintf(&b, "%s|%s|%s|%v|%v;", h.Label(), h.KeyPath, h.KnownHosts, h.Insecure, h.UseAgent)
	}
	return b.String()
}

type pooled struct {
	conn *ssh.Client
	refs int
}

var pool = struct {
	sync.Mutex
	m map[string]*pooled
}{m: map[string]*pooled{}}

// viaChain returns the client of the chain's last hop, dialing the hops not yet connected;
// release gives the chain back (a hop closes when nothing uses it).
func viaChain(ctx context.Context, hops []Config) (*ssh.Client, func(), error) {
	var held []string
	release := func() {
		pool.Lock()
		defer pool.Unlock()
		for _, k := range held {
			if p := pool.m[k]; p != nil {
				if p.refs--; p.refs <= 0 {
					delete(pool.m, k)
					p.conn.Close()
				}
			}
		}
	}
	var prev *ssh.Client
	for i, hop := range hops {
		k := hopKey(hops, i)
		pool.Lock()
		p := pool.m[k]
		if p != nil {
			p.refs++
			held = append(held, k)
		}
		pool.Unlock()
		if p == nil {
			conn, err := dialHop(ctx, prev, hop)
			if err != nil {
				release()
				var hke *HostKeyChangedError
				if errors.As(err, &hke) { // it names the jump host already
					return nil, nil, hke
				}
				if i > 0 {
					return nil, nil, fmt.Errorf("jump host %s via %s: %w", hop.Label(), hops[i-1].Label(), err)
				}
				return nil, nil, fmt.Errorf("jump host %s: %w", hop.Label(), err)
			}
			pool.Lock()
			if q := pool.m[k]; q != nil { // another dial won: use it
				conn.Close()
				p = q
			} else {
				p = &pooled{conn: conn}
				pool.m[k] = p
				go func() { // a hop that died leaves the pool
					_ = conn.Wait()
					pool.Lock()
					if pool.m[k] != nil && pool.m[k].conn == conn {
						delete(pool.m, k)
					}
					pool.Unlock()
				}()
			}
			p.refs++
			held = append(held, k)
			pool.Unlock()
		}
		prev = p.conn
	}
	return prev, release, nil
}

// dialHop connects to hop, directly (prev nil) or through prev, and logs in.
func dialHop(ctx context.Context, prev *ssh.Client, hop Config) (*ssh.Client, error) {
	nc, err := dialTCP(ctx, prev, hop.Addr(), hop.timeout())
	if err != nil {
		return nil, err
	}
	return handshake(ctx, nc, hop)
}

func (c Config) timeout() time.Duration {
	if c.Timeout == 0 {
		return 10 * time.Second
	}
	return c.Timeout
}

// dialTCP opens a TCP connection to addr: from here, or from prev's host (direct-tcpip).
func dialTCP(ctx context.Context, prev *ssh.Client, addr string, timeout time.Duration) (net.Conn, error) {
	if prev == nil {
		d := net.Dialer{Timeout: timeout}
		return d.DialContext(ctx, "tcp", addr)
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return prev.DialContext(dctx, "tcp", addr)
}

// handshake logs in over nc; one attempt gets cfg's timeout, not all of ctx's time.
func handshake(ctx context.Context, nc net.Conn, cfg Config) (*ssh.Client, error) {
	auth, closer, err := cfg.authMethods()
	if err != nil {
		nc.Close()
		return nil, err
	}
	hk, err := cfg.hostKeyCallback()
	if err != nil {
		nc.Close()
		closer()
		return nil, err
	}
	dl := time.Now().Add(cfg.timeout())
	if cd, ok := ctx.Deadline(); ok && cd.Before(dl) {
		dl = cd
	}
	_ = nc.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Now()) })
	cc, chans, reqs, err := ssh.NewClientConn(nc, cfg.Addr(), &ssh.ClientConfig{
		User: cfg.User, Auth: auth, HostKeyCallback: hk, Timeout: cfg.timeout(),
		// Ask for the types that are pinned: a host with several keys could offer another.
		HostKeyAlgorithms: PinnedAlgorithms(cfg.KnownHosts, cfg.Addr()),
	})
	stop()
	closer()
	if err != nil {
		nc.Close()
		var hke *HostKeyChangedError
		if errors.As(err, &hke) {
			return nil, hke
		}
		if isAuthFailure(err) {
			return nil, &AuthError{User: cfg.User, Addr: cfg.Addr(), KeyPath: cfg.KeyPath, Err: err}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	conn := ssh.NewClient(cc, chans, reqs)
	if cfg.KeepAlive > 0 {
		go keepAlive(conn, cfg.KeepAlive)
	}
	return conn, nil
}

// keepAlive asks the server every interval, as ServerAliveInterval does; three unanswered asks
// close the connection.
func keepAlive(c *ssh.Client, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	missed := 0
	for range t.C {
		done := make(chan error, 1)
		go func() { _, _, err := c.SendRequest("keepalive@openssh.com", true, nil); done <- err }()
		select {
		case err := <-done:
			if err != nil {
				return // closed
			}
			missed = 0
		case <-time.After(interval):
			if missed++; missed >= 3 {
				c.Close()
				return
			}
		}
	}
}

// DialThrough opens a TCP connection to addr from the last jump host of cfg (cfg.Jumps), or from
// here when there is none: how machine reaches a host's engine that only its jump hosts reach.
// The chain stays up while the connection is open.
func DialThrough(ctx context.Context, cfg Config, addr string) (net.Conn, error) {
	if len(cfg.Jumps) == 0 {
		return dialTCP(ctx, nil, addr, cfg.timeout())
	}
	via, release, err := viaChain(ctx, cfg.hops())
	if err != nil {
		return nil, err
	}
	nc, err := dialTCP(ctx, via, addr, cfg.timeout())
	if err != nil {
		release()
		return nil, fmt.Errorf("%s via %s: %w", addr, cfg.Jumps[len(cfg.Jumps)-1].Label(), err)
	}
	return &releasingConn{Conn: nc, release: release}, nil
}

// hops are the jump hosts with what they inherit from the target's settings: its machine name
// (for messages), known_hosts file, pinning and insecurity.
func (c Config) hops() []Config {
	out := make([]Config, len(c.Jumps))
	for i, j := range c.Jumps {
		j.Machine = c.Machine
		j.KnownHosts, j.Pin, j.Insecure = c.KnownHosts, c.Pin, c.Insecure
		j.hop = true
		if j.Timeout == 0 {
			j.Timeout = c.Timeout
		}
		if j.KeepAlive == 0 {
			j.KeepAlive = c.KeepAlive
		}
		j.Jumps = nil
		out[i] = j
	}
	return out
}

// releasingConn gives its chain back when closed.
type releasingConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (r *releasingConn) Close() error {
	err := r.Conn.Close()
	r.once.Do(r.release)
	return err
}

// PinnedAlgorithms are the host key algorithms of the keys pinned for addr (host:port) in a
// known_hosts file, in its order; nil when none is pinned (any is accepted, to be pinned).
func PinnedAlgorithms(file, addr string) []string {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	host := knownhosts.Normalize(addr)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || !slices.Contains(strings.Split(f[0], ","), host) {
			continue
		}
		algs := []string{f[1]}
		if f[1] == ssh.KeyAlgoRSA {
			algs = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		}
		for _, a := range algs {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}
