package sshclient

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// A server that accepts and then says nothing (an sshd still starting, a port proxy in front of
// a host that is not up yet) holds one attempt for the attempt's timeout only: Dial retries
// within its context instead of waiting on the first connection for all of it.
func TestDialRetriesASilentServer(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			defer c.Close() // silent: never sends the SSH banner
		}
	}()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Machine: "m", Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, User: "root", KeyPath: key, Insecure: true, Timeout: 200 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := Dial(ctx, cfg); err == nil {
		t.Fatal("a silent server should not give a connection")
	}
	if n := accepted.Load(); n < 3 {
		t.Fatalf("Dial made %d connection(s) in 2 s with a 200 ms attempt timeout: a silent attempt held it up", n)
	}
}

// Without any key there is nothing to retry for: Dial says so at once.
func TestDialWithoutAKey(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := Dial(ctx, Config{Machine: "m", Host: "127.0.0.1", Port: 1, User: "root", Insecure: true})
	if !errors.Is(err, ErrNoKey) || ctx.Err() != nil {
		t.Fatalf("want ErrNoKey before the deadline, got %v (ctx %v)", err, ctx.Err())
	}
}
