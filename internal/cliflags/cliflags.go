// Package cliflags is the command-line plumbing machine's CLI shares: flags made from option
// tables, flags after arguments, refused flags, one-line usage errors. It knows urfave/cli and
// nothing of machines.
package cliflags

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// Option is an option of a table (drivers.Opt's fields that make its flag).
type Option struct {
	Name, EnvVar, Usage string
	// Default's type is the flag's: string, int, bool, time.Duration or []string.
	Default any
}

// Name is an option's flag: --PREFIX-NAME (--NAME without a prefix).
func Name(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "-" + name
}

// FromOptions makes the flags of an option table; usage gets usagePrefix in front.
func FromOptions(prefix, usagePrefix string, opts []Option) []cli.Flag {
	var out []cli.Flag
	for _, o := range opts {
		name, usage := Name(prefix, o.Name), usagePrefix+o.Usage
		var env []string
		if o.EnvVar != "" {
			env = []string{o.EnvVar}
		}
		switch d := o.Default.(type) {
		case string:
			out = append(out, &cli.StringFlag{Name: name, EnvVars: env, Value: d, Usage: usage})
		case int:
			out = append(out, &cli.IntFlag{Name: name, EnvVars: env, Value: d, Usage: usage})
		case bool:
			out = append(out, &cli.BoolFlag{Name: name, EnvVars: env, Value: d, Usage: usage})
		case time.Duration:
			out = append(out, &cli.DurationFlag{Name: name, EnvVars: env, Value: d, Usage: usage})
		case []string:
			out = append(out, &cli.StringSliceFlag{Name: name, EnvVars: env, Usage: usage})
		default:
			panic("option " + o.Name + ": no flag for its type")
		}
	}
	return out
}

// Given are the options of a table that were given as flags (or their environment variables),
// by name without the prefix and typed: what the lifecycle API takes.
func Given(c *cli.Context, prefix string, opts []Option) map[string]any {
	out := map[string]any{}
	for _, o := range opts {
		name := Name(prefix, o.Name)
		if !c.IsSet(name) {
			continue
		}
		switch o.Default.(type) {
		case string:
			out[o.Name] = c.String(name)
		case int:
			out[o.Name] = c.Int(name)
		case bool:
			out[o.Name] = c.Bool(name)
		case time.Duration:
			out[o.Name] = c.Duration(name)
		case []string:
			out[o.Name] = c.StringSlice(name)
		}
	}
	return out
}

// Refused is a flag that is accepted by the parser but refused when given, with the reason:
// hidden from help. A boolean one takes no value; env, when not empty, refuses the environment
// variable too.
func Refused(name string, boolean bool, env, why string) cli.Flag {
	fail := fmt.Errorf("--%s is not supported: %s", name, why)
	var envs []string
	if env != "" {
		envs = []string{env}
	}
	if boolean {
		return &cli.BoolFlag{Name: name, EnvVars: envs, Hidden: true, Action: func(*cli.Context, bool) error { return fail }}
	}
	return &cli.StringSliceFlag{Name: name, EnvVars: envs, Hidden: true, Action: func(*cli.Context, []string) error { return fail }}
}

// OneLineUsageErrors makes a bad flag one line with the way to the help, not the help itself,
// for the app and every command under it.
func OneLineUsageErrors(app *cli.App) {
	app.OnUsageError = func(c *cli.Context, err error, _ bool) error {
		return fmt.Errorf("%v: see `%s --help`", err, c.App.Name)
	}
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, cmd := range cmds {
			full := prefix + " " + cmd.Name
			cmd.OnUsageError = func(c *cli.Context, err error, _ bool) error {
				return fmt.Errorf("%v: see `%s%s --help`", err, c.App.Name, full)
			}
			walk(full, cmd.Subcommands)
		}
	}
	walk("", app.Commands)
}

// Hoist moves the flags that follow a command's arguments in front of them, as docker's CLI
// takes them (`swarm status M --format json`) and docker-machine's own parsing of `rm NAME -y`
// did (urfave/cli stops at the first argument). A flag's value moves with it; `--` ends the
// flags; a command that parses no flags (SkipFlagParsing) is left as it is.
func Hoist(app *cli.App, args []string) []string {
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
		case strings.HasPrefix(a, "-") && a != "-" && named(flags, a) != nil:
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

// named is the flag of flags that arg (-x, --xy, --xy=v) names.
func named(flags []cli.Flag, arg string) cli.Flag {
	name := strings.TrimLeft(strings.SplitN(arg, "=", 2)[0], "-")
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			return f
		}
	}
	return nil
}

// takesValue: the flag named by arg is followed by its value (all but booleans).
func takesValue(flags []cli.Flag, arg string) bool {
	f := named(flags, arg)
	if f == nil {
		return false
	}
	_, isBool := f.(*cli.BoolFlag)
	return !isBool
}
