package cidata

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/machine-tools/machine/internal/cidata/cidatatest"
)

// TestISOReadBack: the ISO holds the user-data with the key, read back by a real tool.
func TestISOReadBack(t *testing.T) {
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyForTheTest machine-vm1"
	iso, err := Seed("vm1", "debian", key, "vm1-1")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cidata.iso")
	if err := os.WriteFile(p, iso, 0o644); err != nil {
		t.Fatal(err)
	}
	cidatatest.Check(t, p, key)
}
