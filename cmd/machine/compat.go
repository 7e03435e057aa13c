package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// docker-machine 0.16's own errors, word for word (scripts grep for them); a fix follows them.
var (
	errNoDefault          = errors.New(`Error: No machine name(s) specified and no "default" machine exists`)
	errNoMachineSpecified = errors.New("Error: Expected to get one or more machine names as arguments")
	errExpectedOne        = errors.New("Error: Expected one machine name as an argument")
	errNoMachineName      = errors.New("Error: No machine name specified")
)

// defaultMachine is the machine a command without a name acts on, as in docker-machine.
const defaultMachine = "default"

// progName is the name the binary was called by (argv[0]): machine, or docker-machine through
// a link.
func progName(argv0 string) string {
	if n := filepath.Base(argv0); n != "" && n != "." && n != "/" {
		return n
	}
	return "machine"
}

// asDockerMachine: called as docker-machine, errors are printed as docker-machine printed them
// (no "machine: " prefix), so that scripts matching the line's start still match.
func asDockerMachine(name string) bool { return strings.HasPrefix(name, "docker-machine") }

// oneName returns the command's one machine name: the argument, or "default" when none is given
// and that machine exists.
func oneName(c *cli.Context) (string, error) {
	switch c.NArg() {
	case 0:
		a, err := api(c)
		if err != nil {
			return "", err
		}
		if a.Exists(defaultMachine) {
			return defaultMachine, nil
		}
		return "", fmt.Errorf("%w: name one (`%s ls` lists them), or create one named default", errNoDefault, c.App.Name)
	case 1:
		return c.Args().First(), nil
	}
	return "", fmt.Errorf("%w: %s %s NAME (got %s)", errExpectedOne, c.App.Name, c.Command.Name, strings.Join(c.Args().Slice(), " "))
}

// names returns the command's machine names: the arguments, or "default" as oneName does.
func names(c *cli.Context) ([]string, error) {
	if c.NArg() == 0 {
		n, err := oneName(c)
		if err != nil {
			return nil, err
		}
		return []string{n}, nil
	}
	return c.Args().Slice(), nil
}

// argNames are the command's machine names, one at least (no "default" stands in).
func argNames(c *cli.Context) ([]string, error) {
	if c.NArg() == 0 {
		return nil, fmt.Errorf("%w: %s %s NAME...", errNoMachineSpecified, c.App.Name, c.Command.FullName())
	}
	return c.Args().Slice(), nil
}

// hoistFlags moves the flags that follow a command's arguments in front of them, as docker's
// CLI takes them (`swarm status M --format json`) and docker-machine's own parsing of `rm NAME -y`
// did (urfave/cli stops at the first argument). A flag's value moves with it; `--` ends the
// flags; ssh, whose words after the name are ssh(1)'s, is left as it is.
func hoistFlags(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	cmds, flags := app.Commands, app.Flags
	i := 1
	var cmd *cli.Command
	for ; i < len(args); i++ { // the command path, past the global flags
		a := args[i]
		if strings.HasPrefix(a, "-") {
			if takesValue(flags, a) && !strings.Contains(a, "=") {
				i++
			}
			continue
		}
		var next *cli.Command
		for _, c := range cmds {
			if c.HasName(a) {
				next = c
			}
		}
		if next == nil {
			break
		}
		cmd, cmds, flags = next, next.Subcommands, next.Flags
	}
	if cmd == nil || cmd.SkipFlagParsing {
		return args
	}
	var moved, rest []string
	for j := i; j < len(args); j++ {
		a := args[j]
		switch {
		case a == "--":
			rest = append(rest, args[j:]...)
			j = len(args)
		case strings.HasPrefix(a, "-") && a != "-" && known(flags, a):
			moved = append(moved, a)
			if takesValue(flags, a) && !strings.Contains(a, "=") && j+1 < len(args) {
				moved = append(moved, args[j+1])
				j++
			}
		default:
			rest = append(rest, a)
		}
	}
	out := append(slices.Clone(args[:i]), moved...)
	return append(out, rest...)
}

// flagNamed is the flag of flags that arg (-x, --xy, --xy=v) names.
func flagNamed(flags []cli.Flag, arg string) cli.Flag {
	name := strings.TrimLeft(strings.SplitN(arg, "=", 2)[0], "-")
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			return f
		}
	}
	return nil
}

func known(flags []cli.Flag, arg string) bool { return flagNamed(flags, arg) != nil }

// takesValue: the flag named by arg is followed by its value (all but booleans).
func takesValue(flags []cli.Flag, arg string) bool {
	f := flagNamed(flags, arg)
	if f == nil {
		return false
	}
	_, isBool := f.(*cli.BoolFlag)
	return !isBool
}

// appHelp is docker-machine's help layout: its Usage line and description first.
const appHelp = `Usage: {{.Name}} [OPTIONS] COMMAND [arg...]

Create and manage machines running Docker.

{{.Usage}}

Version: {{.Version}}

Options:
{{range .VisibleFlags}}  {{.}}
{{end}}
Commands:
{{range .VisibleCommands}}  {{join .Names ", "}}{{"\t"}}{{.Usage}}
{{end}}
Run '{{.Name}} COMMAND --help' for more information on a command.
`

// globalCompatFlags are docker-machine's global flags that machine accepts for its scripts.
func globalCompatFlags() []cli.Flag {
	refused := func(name, env, why string) cli.Flag {
		return &cli.StringFlag{Name: name, EnvVars: []string{env}, Hidden: true, Usage: why,
			Action: func(*cli.Context, string) error {
				return fmt.Errorf("--%s is not supported: %s", name, why)
			}}
	}
	return []cli.Flag{
		&cli.BoolFlag{Name: "native-ssh", EnvVars: []string{"MACHINE_NATIVE_SSH"}, Usage: "use the built-in SSH client for ssh even when ssh(1) options are given"},
		&cli.StringFlag{Name: "github-api-token", EnvVars: []string{"MACHINE_GITHUB_API_TOKEN"}, Hidden: true, Usage: "accepted for docker-machine scripts (nothing is fetched from GitHub)"},
		&cli.StringFlag{Name: "bugsnag-api-token", EnvVars: []string{"MACHINE_BUGSNAG_API_TOKEN"}, Hidden: true, Usage: "accepted for docker-machine scripts (no crash reports are sent)"},
		refused("tls-ca-cert", "MACHINE_TLS_CA_CERT", "machine keeps its own CA in the store (see docs/security.md); import docker-machine's machines with `machine import-docker-machine`"),
		refused("tls-ca-key", "MACHINE_TLS_CA_KEY", "machine keeps its own CA in the store (see docs/security.md)"),
		refused("tls-client-cert", "MACHINE_TLS_CLIENT_CERT", "machine keeps its own client certificate in the store (see docs/security.md)"),
		refused("tls-client-key", "MACHINE_TLS_CLIENT_KEY", "machine keeps its own client key in the store (see docs/security.md)"),
	}
}

// refusedFlag is a docker-machine flag that machine does not take: giving it is an error with
// the reason (hidden from help).
func refusedFlag(name string, boolean bool, why string) cli.Flag {
	fail := fmt.Errorf("--%s is not supported: %s", name, why)
	if boolean {
		return &cli.BoolFlag{Name: name, Hidden: true, Action: func(*cli.Context, bool) error { return fail }}
	}
	return &cli.StringSliceFlag{Name: name, Hidden: true, Action: func(*cli.Context, []string) error { return fail }}
}

// classicSwarmFlags are docker-machine's classic-swarm flags of create: classic swarm is gone
// from Docker; machine makes swarm-mode swarms.
func classicSwarmFlags() []cli.Flag {
	const why = "it configured classic swarm, which Docker no longer has: create the machines, then `machine swarm init` / `swarm join`, or a cluster file with `machine swarm up -f` (docs/cluster-file.md)"
	var out []cli.Flag
	for _, b := range []string{"swarm", "swarm-master", "swarm-experimental"} {
		out = append(out, refusedFlag(b, true, why))
	}
	for _, s := range []string{"swarm-discovery", "swarm-host", "swarm-addr", "swarm-image", "swarm-strategy", "swarm-opt", "swarm-join-opt"} {
		out = append(out, refusedFlag(s, false, why))
	}
	return out
}
