package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/machine-tools/machine/machine"
)

func sshCommand() *cli.Command {
	return &cli.Command{
		Name:            "ssh",
		Usage:           "Run a command on a machine, or open a shell on it",
		ArgsUsage:       "NAME [COMMAND...]",
		SkipFlagParsing: true, // as docker-machine: what follows the name is ssh(1)'s
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "-help") {
				return say(c, "Usage: %s ssh [NAME] [SSH-OPTIONS] [--] [COMMAND...]\n\n%s.\nWith no NAME, the machine named default. Words after NAME go to ssh(1): leading options\nrun OpenSSH's client with the machine's key and pinned host key; --native-ssh keeps the\nbuilt-in client.", c.App.Name, c.Command.Usage)
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
			code, err := h.RunSSH(c.Context, args, c.Bool("native-ssh"), stdio(c))
			if err == nil && code != 0 {
				return exitError{code}
			}
			return err
		},
	}
}

// stdio is the command's standard streams.
func stdio(c *cli.Context) machine.Stdio {
	return machine.Stdio{In: c.App.Reader, Out: c.App.Writer, Err: c.App.ErrWriter}
}
