// Package sshtest is an in-process SSH server for tests: it presents a given host key, lets any
// client key in and refuses every channel (no sessions).
package sshtest

import (
	"net"
	"testing"

	"golang.org/x/crypto/ssh"
)

// Server listens on loopback until the test ends and returns its address.
func Server(t testing.TB, hostKey ssh.Signer) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) { return nil, nil }}
	cfg.AddHostKey(hostKey)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				_, chans, reqs, err := ssh.NewServerConn(c, cfg)
				if err != nil {
					c.Close()
					return
				}
				go ssh.DiscardRequests(reqs)
				for ch := range chans {
					_ = ch.Reject(ssh.Prohibited, "no sessions here")
				}
			}()
		}
	}()
	return l.Addr().String()
}
