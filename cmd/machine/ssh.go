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
			if err := h.Running(c.Context); errors.Is(err, machine.ErrNotRunning) {
				return fmt.Errorf("Error: Cannot run SSH command: Host %q is not running (%v)", h.Name, err)
			} else if err != nil {
				return err
			}
			// As docker-machine: what follows the name goes to ssh(1), so `--` ends its options
			// and leading options are ssh(1)'s: those run OpenSSH's client with the machine's key
			// and pinned host key (--native-ssh: the built-in client, which takes no options).
			if len(args) > 0 && args[0] == "--" {
				args = args[1:]
			} else if len(args) > 0 && strings.HasPrefix(args[0], "-") && !c.Bool("native-ssh") {
				cmd, err := h.SSHCommand(c.Context, args...)
				if err != nil {
					return err
				}
				cmd.Stdin, cmd.Stdout, cmd.Stderr = c.App.Reader, c.App.Writer, c.App.ErrWriter
				var ee *exec.ExitError
				if err := cmd.Run(); errors.As(err, &ee) {
					return exitError{ee.ExitCode()}
				} else if err != nil {
					return err
				}
				return nil
			}
			dctx, cancel := context.WithTimeout(c.Context, 20*time.Second)
			cl, err := h.Dial(dctx)
			cancel()
			if err != nil {
				return err
			}
			defer cl.Close()
			code := 0
			if len(args) > 0 { // like ssh(1): the words are joined into the remote command line
				code, err = cl.Exec(c.Context, strings.Join(args, " "), os.Stdin, c.App.Writer, c.App.ErrWriter)
			} else {
				code, err = cl.Shell(os.Stdin, os.Stdout, os.Stderr)
			}
			if err == nil && code != 0 {
				return exitError{code}
			}
			return err
		},
	}
}
