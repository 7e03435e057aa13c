package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/machine-tools/machine/drivers/container"
	"github.com/machine-tools/machine/images"
	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm"
)

// createOptionNames lists `machine create`'s flags that start with prefix, without it.
func createOptionNames(prefix string) []string {
	var out []string
	for _, f := range createCommand().Flags {
		name := f.Names()[0]
		if strings.HasPrefix(name, prefix+"-") {
			out = append(out, strings.TrimPrefix(name, prefix+"-"))
		}
	}
	return out
}

func loadCluster(c *cli.Context) (*swarm.Cluster, error) {
	path := c.String("file")
	if path == "" {
		return nil, fmt.Errorf("name the cluster file with -f FILE (see docs/cluster-file.md)")
	}
	cl, err := swarm.LoadCluster(path)
	if err != nil {
		return nil, err
	}
	if err := cl.Validate(registry().Names(), createOptionNames, createOptionNames("engine")); err != nil {
		return nil, fmt.Errorf("the cluster file has errors:\n%w", err)
	}
	return cl, nil
}

// nodeCreateArgs is the `machine create` command line for a node of the cluster.
func nodeCreateArgs(c *cli.Context, cl *swarm.Cluster, n swarm.ClusterNode) []string {
	d := cl.DriverName(n)
	opts := swarm.Options{}
	if d == cl.Driver {
		for k, v := range cl.DriverOptions {
			opts[k] = v
		}
	}
	for k, v := range n.DriverOptions {
		opts[k] = v
	}
	args := []string{"machine", "--storage-path", c.String("storage-path")}
	if c.Bool("debug") {
		args = append(args, "--debug")
	}
	args = append(args, "create", "--driver", d)
	args = append(args, opts.Flags(d)...)
	args = append(args, cl.Engine.Flags("engine")...)
	return append(args, n.Name)
}

func upHooks(c *cli.Context, a *machine.API, cl *swarm.Cluster) swarm.UpHooks {
	return swarm.UpHooks{
		Exists: a.Store.Exists,
		Create: func(ctx context.Context, n swarm.ClusterNode) error {
			// The very same code as `machine create`, with the file's options as its flags.
			app := newApp(nil, c.App.ErrWriter, c.App.ErrWriter)
			quiet(app)
			return app.RunContext(ctx, nodeCreateArgs(c, cl, n))
		},
		Open: func(name string) (*swarm.Node, error) {
			h, err := a.Load(name)
			if err != nil {
				return nil, err
			}
			return swarm.Open(h)
		},
		Local: func() (images.Target, error) {
			d := &container.Driver{EngineHost: localEngine()}
			cli, err := d.Client()
			return images.Target{Name: "local", Client: cli}, err
		},
		Progress: func(node, msg string) { progress(c, node)(msg) },
		Warn:     func(msg string) { fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", msg) },
	}
}

// quiet takes help, version and completion out of an app that runs beside others in this process:
// urfave/cli keeps their flags and the help command in package variables that every run writes to.
func quiet(app *cli.App) {
	app.HideHelp, app.HideHelpCommand, app.HideVersion, app.EnableBashCompletion = true, true, true, false
	var hide func([]*cli.Command)
	hide = func(cs []*cli.Command) {
		for _, c := range cs {
			c.HideHelp, c.HideHelpCommand = true, true
			hide(c.Subcommands)
		}
	}
	hide(app.Commands)
}

func localEngine() string {
	if h := os.Getenv("MACHINE_CONTAINER_ENGINE_HOST"); h != "" {
		return h
	}
	return container.DefaultEngineHost
}

func swarmUpCommand() *cli.Command {
	return &cli.Command{
		Name: "up", Usage: "Create what is missing and bring a cluster file's swarm up (again: changes nothing)",
		Flags: []cli.Flag{&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "the cluster file"}},
		Action: func(c *cli.Context) error {
			cl, err := loadCluster(c)
			if err != nil {
				return err
			}
			a, err := api(c)
			if err != nil {
				return err
			}
			if err := swarm.Up(c.Context, cl, upHooks(c, a, cl)); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "cluster %s is up: %d manager(s), %d worker(s) (machine swarm status %s)\n", cl.Name, len(cl.Managers()), len(cl.Workers()), cl.Managers()[0].Name)
			return nil
		},
	}
}

func swarmDownCommand() *cli.Command {
	return &cli.Command{
		Name: "down", Usage: "Take a cluster file's nodes out of the swarm (workers first, managers last) and remove them",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "the cluster file"},
			&cli.BoolFlag{Name: "keep-machines", Usage: "leave the swarm but keep the machines"},
		},
		Action: func(c *cli.Context) error {
			cl, err := loadCluster(c)
			if err != nil {
				return err
			}
			a, err := api(c)
			if err != nil {
				return err
			}
			hooks := swarm.DownHooks{
				Exists:   a.Store.Exists,
				Open:     upHooks(c, a, cl).Open,
				Progress: func(node, msg string) { progress(c, node)(msg) },
			}
			if !c.Bool("keep-machines") {
				hooks.Remove = func(ctx context.Context, name string) error { return a.Remove(ctx, name, false) }
			}
			if err := swarm.Down(c.Context, cl, hooks); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "cluster %s is down\n", cl.Name)
			return nil
		},
	}
}
