// Package cidatatest reads a NoCloud "cidata" ISO back with a real tool (isoinfo, from Debian's
// genisoimage), for the tests of the drivers that make one.
package cidatatest

import (
	"os/exec"
	"strings"
	"testing"
)

// Check fails t unless the ISO at path is labelled cidata and holds meta-data and a
// #cloud-config user-data that lets key in.
func Check(t testing.TB, path, key string) {
	t.Helper()
	if _, err := exec.LookPath("isoinfo"); err != nil {
		t.Fatal("isoinfo (genisoimage) is needed: scripts/setup.sh installs it")
	}
	label, err := exec.Command("isoinfo", "-d", "-i", path).Output()
	if err != nil || !strings.Contains(string(label), "Volume id: cidata") {
		t.Fatalf("volume label of %s: %v\n%s", path, err, label)
	}
	for _, name := range []string{"user-data", "meta-data"} {
		out, err := exec.Command("isoinfo", "-i", path, "-x", "/"+name+";1").Output()
		if err != nil || len(out) == 0 {
			t.Fatalf("%s not readable from %s: %v", name, path, err)
		}
		if name == "user-data" && (!strings.HasPrefix(string(out), "#cloud-config") || !strings.Contains(string(out), key)) {
			t.Errorf("user-data: %q", out)
		}
	}
}
