// Package runner is the one way the provisioner and the swarm layer run commands on a host.
// A Runner takes argv slices, never shell strings; files travel with Upload, never inside a
// command line. The SSH client implements it; Sudo wraps one for non-root users.
package runner

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
)

// Runner runs commands and places files on one host.
type Runner interface {
	// Run runs argv with stdin (may be nil) and returns its standard output. A command that
	// exits non-zero returns a *CommandError holding argv, the exit code and the output.
	Run(ctx context.Context, stdin io.Reader, argv ...string) ([]byte, error)
	// Upload writes data to path on the host with mode, replacing the file atomically.
	Upload(ctx context.Context, path string, data []byte, mode os.FileMode) error
}

// CommandError is a command that ran and failed.
type CommandError struct {
	Host     string
	Argv     []string
	ExitCode int
	Stdout   []byte
	Stderr   []byte
	Redact   bool // the argv holds a secret: don't print it
}

func (e *CommandError) Error() string {
	cmd := Quote(e.Argv...)
	if e.Redact {
		cmd = e.Argv[0] + " [arguments redacted]"
	}
	msg := strings.TrimSpace(string(e.Stderr))
	if msg == "" {
		msg = strings.TrimSpace(string(e.Stdout))
	}
	if i := strings.LastIndex(msg, "\n"); i >= 0 && len(msg) > 2000 {
		msg = "..." + msg[len(msg)-2000:]
	}
	where := ""
	if e.Host != "" {
		where = " on " + e.Host
	}
	if msg == "" {
		return fmt.Sprintf("%s%s: exit status %d", cmd, where, e.ExitCode)
	}
	return fmt.Sprintf("%s%s: exit status %d: %s", cmd, where, e.ExitCode, msg)
}

// Quote joins argv into one POSIX shell word list, quoting each word that needs it.
// It is used only where a remote shell is unavoidable (SSH's exec request takes a string).
func Quote(argv ...string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(quoteWord(a))
	}
	return b.String()
}

func quoteWord(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,@%+", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// Sudo runs every command through `sudo -n` and places files as root, for users other than root.
type Sudo struct{ R Runner }

// Run runs argv as root.
func (s Sudo) Run(ctx context.Context, stdin io.Reader, argv ...string) ([]byte, error) {
	return s.R.Run(ctx, stdin, append([]string{"sudo", "-n", "--"}, argv...)...)
}

// Upload sends data through sudo's standard input to a temporary file beside path, sets its
// mode and renames it into place, so the content never appears in a command line.
func (s Sudo) Upload(ctx context.Context, path string, data []byte, mode os.FileMode) error {
	tmp := path + ".machine-tmp"
	if _, err := s.Run(ctx, bytes.NewReader(data), "sh", "-c", `umask 077 && cat > "$1" && chmod "$2" "$1" && mv -f "$1" "$3"`,
		"sh", tmp, fmt.Sprintf("%04o", mode.Perm()), path); err != nil {
		return err
	}
	return nil
}
