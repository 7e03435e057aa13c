package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/machine-tools/machine/internal/cliflags"
	"github.com/machine-tools/machine/internal/shellenv"
	"github.com/machine-tools/machine/machine"
)

func envCommand() *cli.Command {
	return &cli.Command{
		Name:      "env",
		Usage:     "Print the commands that point the docker CLI at a machine",
		ArgsUsage: "NAME",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "shell", Usage: "the shell to print for: " + strings.Join(shellenv.Shells, ", ") + " (default: from $SHELL)"},
			&cli.BoolFlag{Name: "unset", Aliases: []string{"u"}, Usage: "print the commands that unset the variables"},
			&cli.BoolFlag{Name: "no-proxy", Usage: "add the machine's address to NO_PROXY"},
			cliflags.Refused("swarm", true, "", "it pointed at classic swarm's master, which Docker no longer has; point the docker CLI at a swarm-mode manager with `env MANAGER`"),
		},
		Action: func(c *cli.Context) error {
			shell, err := shellenv.Choose(c.String("shell"), os.Getenv("SHELL"))
			if err != nil {
				return err
			}
			if c.Bool("unset") {
				if c.NArg() != 0 {
					return fmt.Errorf("Error: Expected no machine name when the -u flag is present: %s env -u", c.App.Name)
				}
				_, err := fmt.Fprint(c.App.Writer, shellenv.RenderUnset(shell, machine.UnsetNames(c.Bool("no-proxy")), "machine env -u"))
				return err
			}
			h, err := loadOne(c)
			if err != nil {
				return err
			}
			if err := h.Running(c.Context); err != nil {
				return fmt.Errorf("Error checking TLS connection: %w", err)
			}
			if err := h.Refresh(c.Context, progress(c, h.Name)); err != nil {
				return fmt.Errorf("Error checking TLS connection: its host is at another address now, and following it failed: %w", err)
			}
			vars, err := h.EnvVars(c.Bool("no-proxy"))
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(c.App.Writer, shellenv.Render(shell, vars, shellenv.EnvCommand(shell, h.Name)))
			return err
		},
	}
}
