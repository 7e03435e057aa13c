package main

import (
	"time"

	"github.com/urfave/cli/v2"

	"github.com/machine-tools/machine/drivers"
)

// flagName is an option's flag: --PREFIX-NAME.
func flagName(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "-" + name
}

// optionFlags makes the flags of an option table; usage gets usagePrefix in front.
func optionFlags[T any](prefix, usagePrefix string, opts []drivers.Opt[T]) []cli.Flag {
	var out []cli.Flag
	for _, o := range opts {
		name, usage := flagName(prefix, o.Name), usagePrefix+o.Usage
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

// givenOptions are the options of a table that were given as flags (or their environment
// variables), by name without the prefix: what the lifecycle API takes.
func givenOptions[T any](c *cli.Context, prefix string, opts []drivers.Opt[T]) map[string]any {
	out := map[string]any{}
	for _, o := range opts {
		name := flagName(prefix, o.Name)
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
