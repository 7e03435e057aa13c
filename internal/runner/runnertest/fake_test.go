package runnertest

import (
	"errors"
	"testing"

	"github.com/machine-tools/machine/internal/runner"
)

func TestRulesAndRecording(t *testing.T) {
	f := New(t).On("uname", Exactly("uname", "-s"), Output("Linux\n")).On("false", Prefix("false"), Fail(1, "no"))
	out, err := f.Run(t.Context(), nil, "uname", "-s")
	if err != nil || string(out) != "Linux\n" {
		t.Fatal(out, err)
	}
	_, err = f.Run(t.Context(), nil, "false", "x")
	var ce *runner.CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 1 {
		t.Fatal(err)
	}
	if !f.Received(Prefix("uname")) || f.Received(Prefix("reboot")) {
		t.Fatal(f.Calls)
	}
}

// TestStrictFailsOnTheUnexpected: strict mode reports a command without a rule and an upload
// that was not allowed (run against a recording testing.TB).
func TestStrictFailsOnTheUnexpected(t *testing.T) {
	rec := &recorder{TB: t}
	f := New(rec)
	_, _ = f.Run(t.Context(), nil, "rm", "-rf", "/")
	_ = f.Upload(t.Context(), "/etc/x", []byte("x"), 0o644)
	if len(rec.errs) != 2 {
		t.Fatalf("errors %q", rec.errs)
	}
}

type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, a ...any) { r.errs = append(r.errs, format) }
