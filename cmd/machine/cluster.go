package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/machine-tools/machine/internal/fanout"
	"github.com/machine-tools/machine/internal/format"
	bars "github.com/machine-tools/machine/internal/progress"
	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm"
	"github.com/machine-tools/machine/swarm/cluster"
)

// loadClusterAPI is the cluster file of -f, checked, and the store.
func loadClusterAPI(c *cli.Context) (*cluster.Cluster, *machine.API, error) {
	if c.String("file") == "" {
		return nil, nil, fmt.Errorf("name the cluster file with -f FILE (see docs/cluster-file.md)")
	}
	cl, err := cluster.Load(c.String("file"))
	if err != nil {
		return nil, nil, err
	}
	a, err := api(c)
	return cl, a, err
}

// fileFlag names the cluster file.
var fileFlag = &cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "the cluster file"}

func upOptions(c *cli.Context) swarm.UpOptions {
	o := swarm.UpOptions{
		Parallel:       c.Int("parallel"),
		Prune:          c.Bool("prune"),
		DownFor:        c.Duration("down-for"),
		MaxUnavailable: c.Int("max-unavailable"),
		OnPlan:         func(plan []swarm.Change) { swarm.WritePlan(c.App.ErrWriter, plan) },
		Progress:       nodeProgress(c),
		Warn:           func(msg string) { fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", msg) },
	}
	o.Download, _ = bars.ByteBar(c.App.ErrWriter, 0) // each bar ends at its stream's end
	return o
}

// downForFlag: how long a node gone for good must have been down before --prune removes its entry.
var downForFlag = &cli.DurationFlag{Name: "down-for", Value: time.Hour, Usage: "with --prune: remove the entries of nodes that are down, not in the file and no machine, once down this long"}

// parallelFlag bounds the creates that run at once.
var parallelFlag = &cli.IntFlag{Name: "parallel", EnvVars: []string{fanout.EnvParallel}, Usage: "how many machines to make, and workers to join, at once (default: 4 per CPU core, at most 32)"}

func swarmUpCommand() *cli.Command {
	return &cli.Command{
		Name: "up", Usage: "Create what is missing and bring a cluster file's swarm up (again: changes nothing)",
		Flags: []cli.Flag{fileFlag, parallelFlag,
			&cli.BoolFlag{Name: "prune", Usage: "also drain, remove from the swarm and delete the nodes that the file no longer has"}, downForFlag,
			&cli.IntFlag{Name: "max-unavailable", Value: 1, Usage: "how many workers may be out at once during rolling changes (managers: one at a time)"}},
		Action: func(c *cli.Context) error {
			if _, err := fanout.ParseLimit(c.Int("parallel")); err != nil {
				return err
			}
			cl, a, err := loadClusterAPI(c)
			if err != nil {
				return err
			}
			if err := swarm.Up(c.Context, a, cl, upOptions(c)); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "cluster %s is up: %d manager(s), %d worker(s) (machine swarm status %s)\n", cl.Name, len(cl.Managers()), len(cl.Workers()), cl.Managers()[0].Name)
			return nil
		},
	}
}

func swarmPlanCommand() *cli.Command {
	return &cli.Command{
		Name: "plan", Usage: "Print what `swarm up` would change, in the order it would (exit 0: nothing, 2: changes)",
		Flags: []cli.Flag{
			fileFlag,
			&cli.BoolFlag{Name: "prune", Usage: "plan the removal of nodes the file no longer has"}, downForFlag,
			&cli.StringFlag{Name: "format", Usage: "json for scripts"},
		},
		Action: func(c *cli.Context) error {
			if err := format.OneOf(c.String("format"), "json"); err != nil {
				return err
			}
			cl, a, err := loadClusterAPI(c)
			if err != nil {
				return err
			}
			obs, via, err := swarm.Observe(c.Context, a, cl)
			if via != nil {
				via.Close()
			}
			if err != nil {
				return fmt.Errorf("reading the live cluster: %w", err)
			}
			if err := obs.Complete(); err != nil {
				return err
			}
			plan, err := swarm.Plan(cl, obs, swarm.PlanOptions{Prune: c.Bool("prune"), DownFor: c.Duration("down-for")})
			if err != nil {
				return err
			}
			if c.String("format") == "json" {
				if plan == nil {
					plan = []swarm.Change{}
				}
				if err := format.JSON(c.App.Writer, plan, "  "); err != nil {
					return err
				}
			} else {
				for _, ch := range plan {
					fmt.Fprintln(c.App.Writer, ch)
				}
			}
			if swarm.Changes(plan) {
				return exitError{2}
			}
			return nil
		},
	}
}

func swarmDownCommand() *cli.Command {
	return &cli.Command{
		Name: "down", Usage: "Take a cluster file's nodes out of the swarm (workers first, managers last) and remove them",
		Flags: []cli.Flag{
			fileFlag,
			&cli.BoolFlag{Name: "keep-machines", Usage: "leave the swarm but keep the machines"},
			&cli.BoolFlag{Name: "force", Usage: "also when the swarm has nodes the file does not name (they are left in a swarm without managers)"},
		},
		Action: func(c *cli.Context) error {
			cl, a, err := loadClusterAPI(c)
			if err != nil {
				return err
			}
			opts := swarm.DownOptions{
				KeepMachines: c.Bool("keep-machines"),
				Force:        c.Bool("force"),
				Progress:     nodeProgress(c),
			}
			if err := swarm.Down(c.Context, a, cl, opts); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "cluster %s is down\n", cl.Name)
			return nil
		},
	}
}
