package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/machine-tools/machine/internal/cliflags"
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
	refused := func(name, env, why string) cli.Flag { return cliflags.Refused(name, false, env, why) }
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

// classicSwarmFlags are docker-machine's classic-swarm flags of create: classic swarm is gone
// from Docker; machine makes swarm-mode swarms.
func classicSwarmFlags() []cli.Flag {
	const why = "it configured classic swarm, which Docker no longer has: create the machines, then `machine swarm init` / `swarm join`, or a cluster file with `machine swarm up -f` (docs/cluster-file.md)"
	var out []cli.Flag
	for _, f := range []string{"swarm", "swarm-master", "swarm-experimental", "swarm-discovery=", "swarm-host=", "swarm-addr=", "swarm-image=", "swarm-strategy=", "swarm-opt=", "swarm-join-opt="} {
		name, value := strings.CutSuffix(f, "=")
		out = append(out, cliflags.Refused(name, !value, "", why))
	}
	return out
}
