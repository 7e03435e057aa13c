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
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/machine-tools/machine/internal/sshclient/sshtest"
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

// TestDialFinalErrorsReturnAtOnce: a known_hosts that is missing or garbage, or a host name that
// does not exist, cannot be fixed by retrying: Dial says so at once, not at its deadline.
func TestDialFinalErrorsReturnAtOnce(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	signer, _ := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(make([]byte, 32)))
	_, portStr, _ := net.SplitHostPort(sshtest.Server(t, signer))
	port, _ := strconv.Atoi(portStr)
	dir := t.TempDir()
	key := filepath.Join(dir, "id")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := ssh.MarshalPrivateKey(priv, "")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("this is not\x00 a known_hosts file @@@\n|1|x|y ssh-ed25519 !!!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]Config{
		"missing":      {Host: "127.0.0.1", Port: port, KnownHosts: filepath.Join(dir, "nosuch")},
		"garbage":      {Host: "127.0.0.1", Port: port, KnownHosts: garbage},
		"no such host": {Host: "nosuch.invalid", Port: port, KnownHosts: garbage},
	} {
		c.Machine, c.User, c.KeyPath = "m", "root", key
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		start := time.Now()
		_, err := Dial(ctx, c)
		cancel()
		if err == nil || !Permanent(err) || time.Since(start) > 5*time.Second {
			t.Errorf("%s: %v after %s (permanent: %v)", name, err, time.Since(start), Permanent(err))
		}
	}
}

// TestJumpErrorsNameTheHop: a jump host that refuses the connection is named in the error, and
// nothing is retried past it as if the target had failed.
func TestJumpErrorsNameTheHop(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	key := filepath.Join(dir, "id")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := ssh.MarshalPrivateKey(priv, "")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Machine: "web1", Host: "10.20.0.11", Port: 22, User: "root", KeyPath: key, KnownHosts: filepath.Join(dir, "known_hosts"), Pin: true,
		Jumps: []Config{{Host: "127.0.0.1", Port: closed, User: "ops", KeyPath: key}}}
	_, err = DialOnce(context.Background(), cfg)
	want := "jump host ops@127.0.0.1:" + strconv.Itoa(closed) + ": "
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("want %q… connection refused, got %v", want, err)
	}
}
