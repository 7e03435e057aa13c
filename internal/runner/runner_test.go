package runner

import (
	"os/exec"
	"strings"
	"testing"
)

func TestQuoteRoundTrip(t *testing.T) {
	argv := []string{"printf", "%s|", "plain", "two words", "it's", `"dq"`, "$HOME", "`id`", "", "a\nb", "*"}
	out, err := exec.Command("sh", "-c", Quote(argv...)).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join(argv[2:], "|") + "|"
	if string(out) != want {
		t.Fatalf("sh read %q, want %q", out, want)
	}
}

func TestCommandErrorRedacts(t *testing.T) {
	e := &CommandError{Host: "n1", Argv: []string{"docker", "login", "-p", "s3cret"}, ExitCode: 1, Stderr: []byte("denied"), Redact: true}
	if strings.Contains(e.Error(), "s3cret") {
		t.Fatalf("secret in %q", e.Error())
	}
	e.Redact = false
	if !strings.Contains(e.Error(), "exit status 1: denied") || !strings.Contains(e.Error(), "on n1") {
		t.Fatalf("unexpected %q", e.Error())
	}
}
