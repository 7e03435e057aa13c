package cliflags

import (
	"io"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func app(flags ...cli.Flag) *cli.App {
	a := &cli.App{Name: "m", Writer: io.Discard, ErrWriter: io.Discard, ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{{Name: "c", Flags: flags, Action: func(*cli.Context) error { return nil }}}}
	OneLineUsageErrors(a)
	return a
}

// TestRefused: a refused flag parses, then fails with its reason; the environment variable too.
func TestRefused(t *testing.T) {
	a := app(Refused("old", true, "", "gone"), Refused("older", false, "M_OLDER", "gone too"))
	if err := a.Run([]string{"m", "c"}); err != nil {
		t.Fatalf("not given: %v", err)
	}
	if err := a.Run([]string{"m", "c", "--old"}); err == nil || err.Error() != "--old is not supported: gone" {
		t.Errorf("--old: %v", err)
	}
	t.Setenv("M_OLDER", "x")
	if err := a.Run([]string{"m", "c"}); err == nil || !strings.Contains(err.Error(), "--older is not supported: gone too") {
		t.Errorf("M_OLDER: %v", err)
	}
}

// TestUsageErrorIsOneLine: an unknown flag names the command's help.
func TestUsageErrorIsOneLine(t *testing.T) {
	err := app().Run([]string{"m", "c", "--nosuch"})
	if err == nil || err.Error() != "flag provided but not defined: -nosuch: see `m c --help`" {
		t.Errorf("got %v", err)
	}
}

// TestGivenOnlyWhatWasGiven: defaults are not given; values come back typed.
func TestGivenOnlyWhatWasGiven(t *testing.T) {
	opts := []Option{{Name: "n", Default: 1}, {Name: "s", Default: "d"}, {Name: "l", Default: []string(nil)}, {Name: "b", Default: false}}
	var got map[string]any
	a := &cli.App{Flags: FromOptions("p", "", opts), Action: func(c *cli.Context) error { got = Given(c, "p", opts); return nil }}
	if err := a.Run([]string{"m", "--p-n", "3", "--p-l", "a", "--p-l", "b"}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["n"] != 3 || strings.Join(got["l"].([]string), ",") != "a,b" {
		t.Errorf("given %v", got)
	}
}
