package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/machine-tools/machine/machine"
	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

func sshCommand() *cli.Command {
	return &cli.Command{
		Name:            "ssh",
		Usage:           "Run a command on a machine, or open a shell on it",
		ArgsUsage:       "NAME [COMMAND...]",
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "-help") {
				fmt.Fprintf(c.App.Writer, "Usage: %s ssh [NAME] [SSH-OPTIONS] [--] [COMMAND...]\n\n%s.\nWith no NAME, the machine named default. Words after NAME go to ssh(1): leading options\nrun OpenSSH's client with the machine's key and pinned host key; --native-ssh keeps the\nbuilt-in client.\n", c.App.Name, c.Command.Usage)
				return nil
			}
			a, err := api(c)
			if err != nil {
				return err
			}
			name := defaultMachine
			if len(args) > 0 {
				name, args = args[0], args[1:]
			} else if !a.Exists(defaultMachine) {
				return fmt.Errorf("%w: %s ssh NAME [COMMAND...]", errNoDefault, c.App.Name)
			}
			h, err := a.Load(name)
			if err != nil {
				return err
			}
			if h.SSH.Host == "" {
				return fmt.Errorf("machine %q has no address: its create did not finish", h.Name)
			}
			if err := h.Running(c.Context); err != nil {
				return fmt.Errorf("Error: Cannot run SSH command: Host %q is not running (%v)", h.Name, err)
			}
			// As docker-machine: what follows the name goes to ssh(1), so `--` ends its options
			// and leading options are ssh(1)'s: those run OpenSSH's client with the machine's key
			// and pinned host key (--native-ssh: the built-in client, which takes no options).
			if len(args) > 0 && args[0] == "--" {
				args = args[1:]
			} else if len(args) > 0 && strings.HasPrefix(args[0], "-") && !c.Bool("native-ssh") {
				return externalSSH(c, h, args)
			}
			dctx, cancel := context.WithTimeout(c.Context, 20*time.Second)
			cl, err := h.Dial(dctx)
			cancel()
			if err != nil {
				return err
			}
			defer cl.Close()
			if len(args) > 0 {
				// Like ssh(1): the words are joined into the remote command line.
				code, err := cl.Exec(c.Context, strings.Join(args, " "), os.Stdin, c.App.Writer, c.App.ErrWriter)
				if err != nil {
					return err
				}
				if code != 0 {
					return exitError{code}
				}
				return nil
			}
			return interactive(c, cl.Conn())
		},
	}
}

// externalSSH runs OpenSSH's client with the user's ssh(1) options and command after the
// machine's own settings; its exit status is passed through.
func externalSSH(c *cli.Context, h *machine.Host, args []string) error {
	bin, err := exec.LookPath("ssh")
	if err != nil {
		return fmt.Errorf("ssh(1) options (%s) need OpenSSH's ssh on PATH: install openssh-client, or pass the command after `--`", args[0])
	}
	argv := append([]string{"-F", "/dev/null"}, h.OpenSSHOptions()...)
	argv = append(append(argv, h.SSHDestination()), args...)
	cmd := exec.CommandContext(c.Context, bin, argv...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.App.Reader, c.App.Writer, c.App.ErrWriter
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return exitError{ee.ExitCode()}
		}
		return err
	}
	return nil
}

func interactive(c *cli.Context, conn *ssh.Client) error {
	s, err := conn.NewSession()
	if err != nil {
		return err
	}
	defer s.Close()
	s.Stdin, s.Stdout, s.Stderr = os.Stdin, os.Stdout, os.Stderr
	fd := int(os.Stdin.Fd())
	if term.IsTerminal(fd) {
		w, hgt, err := term.GetSize(fd)
		if err != nil {
			w, hgt = 80, 24
		}
		t := os.Getenv("TERM")
		if t == "" {
			t = "xterm"
		}
		if err := s.RequestPty(t, hgt, w, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
			return err
		}
		old, err := term.MakeRaw(fd)
		if err != nil {
			return err
		}
		defer term.Restore(fd, old)
	}
	if err := s.Shell(); err != nil {
		return err
	}
	if err := s.Wait(); err != nil {
		if ee, ok := err.(*ssh.ExitError); ok {
			return exitError{ee.ExitStatus()}
		}
		return err
	}
	return nil
}
