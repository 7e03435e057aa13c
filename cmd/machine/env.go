package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/machine-tools/machine/internal/shellenv"
)

var envNames = []string{"DOCKER_TLS_VERIFY", "DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_MACHINE_NAME"}

func envCommand() *cli.Command {
	return &cli.Command{
		Name:      "env",
		Usage:     "Print the commands that point the docker CLI at a machine",
		ArgsUsage: "NAME",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "shell", Usage: "the shell to print for: " + strings.Join(shellenv.Shells, ", ") + " (default: from $SHELL)"},
			&cli.BoolFlag{Name: "unset", Aliases: []string{"u"}, Usage: "print the commands that unset the variables"},
			&cli.BoolFlag{Name: "no-proxy", Usage: "add the machine's address to NO_PROXY"},
		},
		Action: func(c *cli.Context) error {
			shell := c.String("shell")
			var err error
			if shell == "" {
				shell, err = shellenv.Detect(os.Getenv("SHELL"))
			} else {
				shell, err = shellenv.Normalize(shell)
			}
			if err != nil {
				return err
			}
			cmdLine := "machine env"
			if c.Bool("unset") {
				if c.NArg() != 0 {
					return fmt.Errorf("env --unset takes no machine name")
				}
				names := append([]string{}, envNames...)
				if c.Bool("no-proxy") {
					v, _ := noProxyVar()
					names = append(names, v)
				}
				fmt.Fprint(c.App.Writer, shellenv.RenderUnset(shell, names, cmdLine+" -u"))
				return nil
			}
			name, err := oneName(c)
			if err != nil {
				return err
			}
			a, err := api(c)
			if err != nil {
				return err
			}
			h, err := a.Load(name)
			if err != nil {
				return err
			}
			if h.SSH.Host == "" {
				return fmt.Errorf("machine %q has no address: its create did not finish (remove it with `machine rm -f %s`)", name, name)
			}
			vars := []shellenv.Var{
				{Name: "DOCKER_TLS_VERIFY", Value: "1"},
				{Name: "DOCKER_HOST", Value: h.URL()},
				{Name: "DOCKER_CERT_PATH", Value: h.StorePath()},
				{Name: "DOCKER_MACHINE_NAME", Value: name},
			}
			if c.Bool("no-proxy") {
				k, v := noProxyVar()
				switch {
				case v == "":
					v = h.IP()
				case !containsItem(v, h.IP()):
					v += "," + h.IP()
				}
				vars = append(vars, shellenv.Var{Name: k, Value: v})
			}
			if shell != "bash" && shell != "zsh" && shell != "sh" {
				cmdLine += " --shell " + shell
			}
			fmt.Fprint(c.App.Writer, shellenv.Render(shell, vars, cmdLine+" "+name))
			return nil
		},
	}
}

func noProxyVar() (string, string) {
	if v := os.Getenv("no_proxy"); v != "" {
		return "no_proxy", v
	}
	return "NO_PROXY", os.Getenv("NO_PROXY")
}

func containsItem(list, item string) bool {
	for _, x := range strings.Split(list, ",") {
		if strings.TrimSpace(x) == item {
			return true
		}
	}
	return false
}
