// Package runnertest is a recording fake of runner.Runner for unit tests: commands are matched
// against rules (argv matchers with replies), files uploaded are kept in memory, and in strict
// mode a command that no rule matches, or an upload that is not allowed, fails the test.
package runnertest

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/machine-tools/machine/internal/runner"
)

// Matcher says whether a rule applies to argv.
type Matcher func(argv []string) bool

// Prefix matches an argv that starts with words.
func Prefix(words ...string) Matcher {
	return func(argv []string) bool { return len(argv) >= len(words) && slices.Equal(argv[:len(words)], words) }
}

// Exactly matches that argv only.
func Exactly(words ...string) Matcher {
	return func(argv []string) bool { return slices.Equal(argv, words) }
}

// Contains matches an argv one of whose words contains s (a shell script's text, say).
func Contains(s string) Matcher {
	return func(argv []string) bool {
		for _, a := range argv {
			if strings.Contains(a, s) {
				return true
			}
		}
		return false
	}
}

// Reply answers a matched command.
type Reply func(f *Fake, argv []string, stdin io.Reader) ([]byte, error)

// Output replies with out and success.
func Output(out string) Reply {
	return func(*Fake, []string, io.Reader) ([]byte, error) { return []byte(out), nil }
}

// Fail replies as a command that exits with code and prints stderr.
func Fail(code int, stderr string) Reply {
	return func(_ *Fake, argv []string, _ io.Reader) ([]byte, error) {
		return nil, &runner.CommandError{Argv: argv, ExitCode: code, Stderr: []byte(stderr)}
	}
}

type rule struct {
	name  string
	match Matcher
	reply Reply
}

// Fake is the recording runner. The zero value is lenient; New makes a strict one.
type Fake struct {
	t      testing.TB
	Strict bool
	// AllowUpload: uploads are taken (kept in Files); otherwise a strict Fake fails on one.
	AllowUpload bool

	mu      sync.Mutex
	rules   []rule
	Files   map[string][]byte
	Modes   map[string]os.FileMode // of the files uploaded
	Calls   [][]string
	Uploads []string
}

// New returns a strict Fake reporting to t.
func New(t testing.TB) *Fake { return &Fake{t: t, Strict: true, Files: map[string][]byte{}} }

// On adds a rule; the first rule that matches a command answers it.
func (f *Fake) On(name string, m Matcher, r Reply) *Fake {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, rule{name, m, r})
	return f
}

// Reset forgets what was received (the rules and files stay): for a second run.
func (f *Fake) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls, f.Uploads = nil, nil
}

// Run implements runner.Runner.
func (f *Fake) Run(ctx context.Context, stdin io.Reader, argv ...string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.Calls = append(f.Calls, slices.Clone(argv))
	rules := slices.Clone(f.rules)
	f.mu.Unlock()
	for _, r := range rules {
		if r.match(argv) {
			return r.reply(f, argv, stdin)
		}
	}
	if f.Strict && f.t != nil {
		f.t.Errorf("runnertest: unexpected command %s", runner.Quote(argv...))
	}
	return nil, &runner.CommandError{Argv: argv, ExitCode: 127, Stderr: []byte("runnertest: no rule for this command")}
}

// Upload implements runner.Runner.
func (f *Fake) Upload(ctx context.Context, path string, data []byte, mode os.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Uploads = append(f.Uploads, path)
	if !f.AllowUpload && f.Strict && f.t != nil {
		f.t.Errorf("runnertest: unexpected upload of %s (%d bytes, mode %04o)", path, len(data), mode.Perm())
		return fmt.Errorf("runnertest: upload of %s not allowed", path)
	}
	if f.Files == nil {
		f.Files = map[string][]byte{}
	}
	f.Files[path] = slices.Clone(data)
	if f.Modes == nil {
		f.Modes = map[string]os.FileMode{}
	}
	f.Modes[path] = mode.Perm()
	return nil
}

// Received says whether a command matching m was run.
func (f *Fake) Received(m Matcher) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.Calls {
		if m(c) {
			return true
		}
	}
	return false
}

// File returns an uploaded (or pre-set) file's content.
func (f *Fake) File(path string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.Files[path]
	return b, ok
}
