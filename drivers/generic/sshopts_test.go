package generic

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/machine-tools/machine/drivers"
	"golang.org/x/crypto/ssh"
)

func pubLine(t *testing.T) (ssh.PublicKey, string) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// TestKnownLines: a user's known_hosts gives the keys it already trusts for the host and its
// jump hosts, by plain or hashed name and on a non-standard port; @cert-authority lines are kept
// as they are; @revoked and other hosts' lines are not taken.
func TestKnownLines(t *testing.T) {
	_, web := pubLine(t)
	_, bastion := pubLine(t)
	_, ca := pubLine(t)
	_, other := pubLine(t)
	_, revoked := pubLine(t)
	salt := []byte("0123456789abcdefghij")
	m := hmac.New(sha1.New, salt)
	m.Write([]byte("[bastion.example]:2222"))
	hashed := "|1|" + base64.StdEncoding.EncodeToString(salt) + "|" + base64.StdEncoding.EncodeToString(m.Sum(nil))
	file := filepath.Join(t.TempDir(), "known_hosts")
	text := strings.Join([]string{
		"10.0.0.5,web1 " + web,
		hashed + " " + bastion,
		"@cert-authority *.example " + ca,
		"@revoked 10.0.0.5 " + revoked,
		"10.0.0.6 " + other,
	}, "\n") + "\n"
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(knownLines(file, []string{hostPort("10.0.0.5", 22), hostPort("bastion.example", 2222)}), "\n")
	for _, want := range []string{"10.0.0.5 " + web, "[bastion.example]:2222 " + bastion, "@cert-authority *.example " + ca} {
		if !strings.Contains(got, want) {
			t.Errorf("want %q in:\n%s", want, got)
		}
	}
	for _, no := range []string{revoked, other} {
		if strings.Contains(got, no) {
			t.Errorf("%q taken:\n%s", no, got)
		}
	}
}

// TestHostKeyGivenBeforehand: --generic-ssh-host-key takes a key, a .pub file or known_hosts
// lines, and pins it for the host's address and port; anything else is refused.
func TestHostKeyGivenBeforehand(t *testing.T) {
	_, key := pubLine(t)
	dir := t.TempDir()
	pub := filepath.Join(dir, "host.pub")
	known := filepath.Join(dir, "known")
	_ = os.WriteFile(pub, []byte(key+" root@web1\n"), 0o644)
	_ = os.WriteFile(known, []byte("web1,10.0.0.5 "+key+"\n"), 0o644)
	for _, v := range []string{key, pub, known} {
		s := &drivers.Settings{Driver: &Driver{IPAddress: "10.0.0.5", SSHPort: 2222}}
		if err := applyHostKey(s, v); err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if len(s.SSHHostKeys) != 1 || s.SSHHostKeys[0] != "[10.0.0.5]:2222 "+key {
			t.Errorf("%s: pinned %q", v, s.SSHHostKeys)
		}
	}
	for _, bad := range []string{"ssh-ed25519 notbase64", filepath.Join(dir, "nosuch"), "hello world"} {
		s := &drivers.Settings{Driver: &Driver{IPAddress: "10.0.0.5", SSHPort: 22}}
		if err := applyHostKey(s, bad); err == nil || !strings.Contains(err.Error(), "--generic-ssh-host-key") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
