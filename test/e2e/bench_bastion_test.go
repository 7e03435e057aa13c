//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkBastion50Commands: 50 commands on a host behind a bastion, over one reused chained
// connection; with the bastion's connection shared and the host's made afresh each time (what
// many machines behind one bastion cost); and with both made afresh each time.
func BenchmarkBastion50Commands(b *testing.B) {
	e := benchEnv(b)
	nw := uniq("bench-bas-net")
	bastion := benchHost(b, e, uniq("bench-bas-b"), nw)
	target := benchHost(b, e, uniq("bench-bas-t"), nw)
	cfg := filepath.Join(b.TempDir(), "config")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("Host jump\n  HostName %s\n  User root\n  IdentityFile %s\n\nHost behind\n  HostName %s\n  User root\n  ProxyJump jump\n  IdentityFile %s\n",
		bastion.IP(), bastion.SSH.KeyPath, target.IP(), target.SSH.KeyPath)), 0o600); err != nil {
		b.Fatal(err)
	}
	name := uniq("bench-bas-g")
	if r := e.run("create", "-d", "generic", "--generic-ssh-config", cfg, "--generic-ip-address", "behind", name); r.code != 0 {
		b.Fatalf("create through the bastion: %s", r)
	}
	b.Cleanup(func() { e.run("rm", "-f", "-y", name) })
	h := loadHost(b, e, name)
	if len(h.SSH.Jumps) != 1 {
		b.Fatalf("jumps: %+v", h.SSH.Jumps)
	}
	ctx := context.Background()
	b.Run("reused", func(b *testing.B) {
		for b.Loop() {
			reusedCommands(b, h, 50)
		}
	})
	b.Run("bastion-shared", func(b *testing.B) {
		hold, err := h.Dial(ctx) // keeps the bastion's connection in the pool
		if err != nil {
			b.Fatal(err)
		}
		defer hold.Close()
		for b.Loop() {
			freshCommands(b, h, 50)
		}
	})
	b.Run("fresh-chain", func(b *testing.B) {
		for b.Loop() {
			freshCommands(b, h, 50)
		}
	})
}
