package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/drivers/container"
	"github.com/machine-tools/machine/drivers/plugin"
	"github.com/machine-tools/machine/internal/cliflags"
	bars "github.com/machine-tools/machine/internal/progress"
	"github.com/machine-tools/machine/internal/store"
	"github.com/machine-tools/machine/machine"
)

// table is an option table as its flags see it.
func table[T any](opts []drivers.Opt[T]) []cliflags.Option {
	out := make([]cliflags.Option, len(opts))
	for i, o := range opts {
		out[i] = cliflags.Option{Name: o.Name, EnvVar: o.EnvVar, Usage: o.Usage, Default: o.Default}
	}
	return out
}

func engineFlags() []cli.Flag {
	return append(cliflags.FromOptions("engine", "", table(machine.EngineOptionTable())),
		&cli.StringSliceFlag{Name: "tls-san", Usage: "an extra name or address for the engine's certificate (repeatable)"})
}

// driverFlags are every driver's options as flags: --DRIVER-OPTION.
func driverFlags() []cli.Flag {
	var out []cli.Flag
	for _, reg := range machine.Drivers() {
		out = append(out, cliflags.FromOptions(reg.FlagPrefix(), reg.Name+": ", table(reg.Options))...)
	}
	return out
}

func createCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "driver", Aliases: []string{"d"}, EnvVars: []string{"MACHINE_DRIVER"}, Usage: "the driver: container (default when a local Docker engine answers), generic, libvirt, virtualbox"},
		&cli.BoolFlag{Name: "insecure-skip-host-key-check", Usage: "do not pin or check the host's SSH key (unsafe: for throw-away hosts only)"},
		&cli.DurationFlag{Name: "ssh-wait", Value: 0, Usage: "how long to wait for SSH once the host is made (default: 30s for generic, 2m otherwise)"},
	}
	flags = append(flags, driverFlags()...)
	flags = append(flags, classicSwarmFlags()...)
	return &cli.Command{
		Name:      "create",
		Usage:     "Create a machine",
		ArgsUsage: "NAME",
		Flags:     append(flags, engineFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("%w: %s create [OPTIONS] NAME", errNoMachineName, c.App.Name)
			}
			if c.NArg() > 1 {
				return fmt.Errorf("Invalid command line. Found extra arguments %v: options go before the name (%s create [OPTIONS] NAME)", c.Args().Slice()[1:], c.App.Name)
			}
			name := c.Args().First()
			if err := store.ValidateName(name); err != nil {
				return err
			}
			a, err := api(c)
			if err != nil {
				return err
			}
			engine, err := machine.ParseEngineOptions(cliflags.Given(c, "engine", table(machine.EngineOptionTable())), func(n string) string { return "--engine-" + n })
			if err != nil {
				return err
			}
			opts := machine.CreateOptions{
				Driver:          c.String("driver"),
				Engine:          engine,
				TLSSANs:         c.StringSlice("tls-san"),
				InsecureHostKey: c.Bool("insecure-skip-host-key-check"),
				SSHWait:         c.Duration("ssh-wait"),
				Progress:        progress(c, name),
				OptionLabel:     func(d, o string) string { return "--" + cliflags.Name(d, o) },
			}
			opts.Download, _ = bars.ByteBar(c.App.ErrWriter, 0) // each bar ends at its stream's end
			// An unknown driver: Create says so.
			reg, err := a.Drivers.Get(cmp.Or(opts.Driver, container.Name))
			if p, ok := c.App.Metadata[pluginKey].(drivers.Registration); err != nil && ok && p.Name == opts.Driver {
				reg, err = p, nil // a plug-in's flags, named as it names them
			}
			if err == nil {
				opts.DriverOptions = cliflags.Given(c, reg.FlagPrefix(), table(reg.Options))
				opts.OptionLabel = func(_, o string) string { return "--" + cliflags.Name(reg.FlagPrefix(), o) }
			}
			start := time.Now()
			h, err := a.Create(c.Context, name, opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "(%s) ready in %s: %s\n", name, time.Since(start).Round(100*time.Millisecond), h.URL())
			fmt.Fprintf(c.App.ErrWriter, "To point your Docker client at it, run: eval \"$(machine env %s)\"\n", name)
			return nil
		},
	}
}

// pluginKey holds, in the app's metadata, the plug-in driver `create -d NAME` names.
const pluginKey = "plugin"

// withPluginFlags gives `create -d NAME` (and its --help) the flags of the docker-machine driver
// plug-in NAME when NAME is not built in: the plug-in is started once to tell them, and its flags
// replace any of the same name (a plug-in serving generic has --generic-ip-address too).
func withPluginFlags(ctx context.Context, app *cli.App, args []string) error {
	name := createDriverArg(args)
	if name == "" {
		return nil
	}
	if _, err := machine.Drivers().Get(name); err == nil {
		return nil
	}
	reg, err := plugin.Registration(ctx, name, "")
	if errors.Is(err, plugin.ErrNotFound) {
		return nil // create says so, with docker-machine's words
	}
	if err != nil {
		return err
	}
	for _, cmd := range app.Commands {
		if cmd.Name != "create" {
			continue
		}
		own := cliflags.FromOptions("", name+": ", table(reg.Options))
		taken := map[string]bool{}
		for _, f := range own {
			for _, n := range f.Names() {
				taken[n] = true
			}
		}
		kept := cmd.Flags[:0:0]
		for _, f := range cmd.Flags {
			if !slices.ContainsFunc(f.Names(), func(n string) bool { return taken[n] }) {
				kept = append(kept, f)
			}
		}
		cmd.Flags = append(kept, own...)
	}
	if app.Metadata == nil {
		app.Metadata = map[string]any{}
	}
	app.Metadata[pluginKey] = reg
	return nil
}

// createDriverArg is the driver a `create` command line names (-d NAME, --driver=NAME, or
// MACHINE_DRIVER), "" for any other command.
func createDriverArg(args []string) string {
	i := slices.Index(args, "create")
	if i < 0 {
		return ""
	}
	rest := args[i+1:]
	for j, a := range rest {
		if a == "--" {
			break
		}
		for _, f := range []string{"-d", "--driver", "-driver"} {
			if a == f && j+1 < len(rest) {
				return rest[j+1]
			}
			if v, ok := strings.CutPrefix(a, f+"="); ok {
				return v
			}
		}
	}
	return os.Getenv("MACHINE_DRIVER")
}
