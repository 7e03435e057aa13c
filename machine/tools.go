package machine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Stdio is where a program run for a machine reads and writes (a terminal for a shell).
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
}

// RunSSH runs what docker-machine's `ssh NAME ARGS...` ran and returns the remote exit status: the
// words after the name go to ssh(1), so `--` ends its options and leading options are ssh(1)'s.
// Those run OpenSSH's client with the machine's key and pinned host key; otherwise (and always
// with native) the built-in client runs the words as one command line, or a shell when there
// are none.
func (h *Host) RunSSH(ctx context.Context, args []string, native bool, stdio Stdio) (int, error) {
	if err := h.NeedsSSH(); err != nil {
		return 0, err
	}
	if h.SSH.Host == "" {
		return 0, fmt.Errorf("machine %q has no address: its create did not finish", h.Name)
	}
	if err := h.Running(ctx); errors.Is(err, ErrNotRunning) {
		return 0, fmt.Errorf("Error: Cannot run SSH command: Host %q is not running (%v)", h.Name, err)
	} else if err != nil {
		return 0, err
	}
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	} else if len(args) > 0 && strings.HasPrefix(args[0], "-") && !native {
		cmd, err := h.SSHCommand(ctx, args...)
		if err != nil {
			return 0, err
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.In, stdio.Out, stdio.Err
		var ee *exec.ExitError
		if err := cmd.Run(); errors.As(err, &ee) {
			return ee.ExitCode(), nil
		} else if err != nil {
			return 0, err
		}
		return 0, nil
	}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	cl, err := h.Dial(dctx)
	cancel()
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	if len(args) > 0 { // like ssh(1): the words are joined into the remote command line
		return cl.Exec(ctx, strings.Join(args, " "), stdio.In, stdio.Out, stdio.Err)
	}
	in, inOK := stdio.In.(*os.File)
	out, outOK := stdio.Out.(*os.File)
	errf, errOK := stdio.Err.(*os.File)
	if !inOK || !outOK || !errOK {
		return 0, errors.New("a shell needs a terminal: give the command to run after the name")
	}
	return cl.Shell(in, out, errf)
}

// Mount mounts the machine's path at mountpoint (made if missing) with sshfs, over the machine's
// key and pinned host key.
func (h *Host) Mount(ctx context.Context, path, mountpoint string, stdio Stdio) error {
	bin, err := exec.LookPath("sshfs")
	if err != nil {
		return errors.New("mount needs sshfs on this computer: install it (apt-get install sshfs)")
	}
	if err := h.Running(ctx); err != nil {
		return err
	}
	if err := os.MkdirAll(mountpoint, 0o755); err != nil {
		return err
	}
	return runTool(ctx, stdio, bin, h.SSHFSArgv(path, mountpoint)...)
}

// Unmount undoes Mount (fusermount3, or fusermount).
func Unmount(ctx context.Context, mountpoint string, stdio Stdio) error {
	bin, err := exec.LookPath("fusermount3")
	if err != nil {
		bin = "fusermount"
	}
	return runTool(ctx, stdio, bin, "-u", mountpoint)
}

// Rsync copies between this computer and one machine with rsync (RsyncArgv), sending only the
// differences.
func (a *API) Rsync(ctx context.Context, srcs []CopySpec, dst CopySpec, quiet bool, stdio Stdio) error {
	if _, err := exec.LookPath("rsync"); err != nil {
		return errors.New("-d needs rsync on this computer and on the machine: install it (apt-get install rsync), or copy without -d")
	}
	name, argv, err := a.RsyncArgv(srcs, dst, quiet)
	if err != nil {
		return err
	}
	if err := runTool(ctx, stdio, "rsync", argv...); err != nil {
		return fmt.Errorf("rsync to %s failed (%v): is rsync installed on the machine? (machine ssh %s apt-get install -y rsync)", name, errors.Unwrap(err), name)
	}
	return nil
}

// runTool runs a helper program, with its output passed through and its failure explained.
func runTool(ctx context.Context, stdio Stdio, bin string, argv ...string) error {
	cmd := exec.CommandContext(ctx, bin, argv...)
	cmd.Stdout, cmd.Stderr = stdio.Out, stdio.Err
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", bin, strings.Join(argv[:min(2, len(argv))], " "), err)
	}
	return nil
}
