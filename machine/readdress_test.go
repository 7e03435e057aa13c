package machine

import (
	"strings"
	"testing"
)

func TestMovedKnownHosts(t *testing.T) {
	known := "10.0.0.5 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost\n[10.0.0.5]:2222 ssh-ed25519 AAAAOtherPort\n[jump.example]:22 ssh-rsa AAAAJump\n10.0.0.5 ecdsa-sha2-nistp256 AAAAEcdsa\n"
	got, err := movedKnownHosts([]byte(known), "10.0.0.5", "10.0.0.9")
	if err != nil {
		t.Fatal(err)
	}
	want := "10.0.0.9 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost\n[10.0.0.5]:2222 ssh-ed25519 AAAAOtherPort\n[jump.example]:22 ssh-rsa AAAAJump\n10.0.0.9 ecdsa-sha2-nistp256 AAAAEcdsa\n"
	if string(got) != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if _, err := movedKnownHosts([]byte(known), "10.0.0.6", "10.0.0.9"); err == nil || !strings.Contains(err.Error(), "no host key is pinned for 10.0.0.6") {
		t.Errorf("no key for the old address: %v", err)
	}
}

func TestCheckAddress(t *testing.T) {
	for _, ok := range []string{"10.0.0.9", "fd00::9", "host.example.com"} {
		if err := checkAddress(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "a\tb", "a\nb", "x\x1b[2J"} {
		if err := checkAddress(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
