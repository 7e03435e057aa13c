package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/machine-tools/machine/internal/shellenv"
	"github.com/machine-tools/machine/machine"
	"github.com/urfave/cli/v2"
)

func activeCommand() *cli.Command {
	return &cli.Command{
		Name: "active", Usage: "Print the machine that DOCKER_HOST points at",
		Flags: []cli.Flag{&cli.IntFlag{Name: "timeout", Aliases: []string{"t"}, Value: 10, Usage: "accepted for docker-machine scripts (active reads the store only)"}},
		Action: withAPI(func(c *cli.Context, a *machine.API) error {
			return sayResult(c, "")(a.Active(os.Getenv("DOCKER_HOST")))
		}),
	}
}

// completeMachines offers machine names (urfave's --generate-bash-completion).
func completeMachines(c *cli.Context) {
	a, err := api(c)
	if err != nil {
		return
	}
	names, _ := a.Store.List()
	for _, n := range names {
		fmt.Fprintln(c.App.Writer, n)
	}
}

func completionCommand() *cli.Command {
	return &cli.Command{
		Name: "completion", Usage: "Print a shell completion script: bash, zsh, fish or powershell", ArgsUsage: "SHELL",
		Action: func(c *cli.Context) error {
			shell := strings.ToLower(c.Args().First())
			if script, ok := shellenv.Completion(shell); ok {
				fmt.Fprint(c.App.Writer, script)
				return nil
			}
			switch shell {
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return err
				}
				fmt.Fprint(c.App.Writer, "# machine completion for fish: machine completion fish | source\n"+s)
				fmt.Fprintln(c.App.Writer, "complete -c machine -f -n '__fish_seen_subcommand_from env ssh ip url status inspect config provision regenerate-certs trust-host-key rm start stop restart kill context version' -a '(machine ls -q 2>/dev/null)'")
			default:
				return fmt.Errorf("completion for %q: use bash, zsh, fish or powershell", c.Args().First())
			}
			return nil
		},
	}
}

func importCommand() *cli.Command {
	home, _ := os.UserHomeDir()
	return &cli.Command{
		Name: "import-docker-machine", Usage: "Take over docker-machine's machines (as generic machines, with their certificates); its store is only read",
		Flags: []cli.Flag{&cli.StringFlag{Name: "from", Value: home + "/.docker/machine", EnvVars: []string{"DOCKER_MACHINE_STORAGE_PATH"}, Usage: "docker-machine's store"}},
		Action: withAPI(func(c *cli.Context, a *machine.API) error {
			res, err := a.ImportDockerMachine(c.Context, c.String("from"))
			if err == nil && len(res) == 0 {
				err = fmt.Errorf("no machines in %s", c.String("from"))
			}
			if err != nil {
				return err
			}
			return report(c, "import", res)
		}),
	}
}
