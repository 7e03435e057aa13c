package container_test

import (
	"os"
	"testing"

	"github.com/machine-tools/machine/provision"
)

// The built-in image carries the provisioner's docker.service drop-in for the default engine
// options, so that provisioning a fresh host changes no unit (and reloads none). It must be
// byte for byte what the provisioner writes, or every create pays the reload again.
func TestRecipeDropInIsTheProvisioners(t *testing.T) {
	got, err := os.ReadFile("recipe/docker-10-machine.conf")
	if err != nil {
		t.Fatal(err)
	}
	want := provision.SystemdUnit(provision.HostFacts{Init: provision.Systemd, DockerdPath: "/usr/sbin/dockerd"}, provision.Spec{})
	if string(got) != string(want) {
		t.Fatalf("recipe/docker-10-machine.conf differs from the provisioner's drop-in:\n%s\nwant:\n%s", got, want)
	}
}
