package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm"
)

// managersNamed are the machines a command about a swarm's managers is for: the cluster file's
// managers (-f) or the names given.
func managersNamed(c *cli.Context) ([]string, *machine.API, error) {
	if c.String("file") != "" {
		if c.NArg() > 0 {
			return nil, nil, fmt.Errorf("give -f FILE or machine names, not both")
		}
		cl, a, err := loadClusterAPI(c)
		if err != nil {
			return nil, nil, err
		}
		var names []string
		for _, m := range cl.Managers() {
			if a.Exists(m.Name) {
				names = append(names, m.Name)
			}
		}
		if len(names) == 0 {
			return nil, nil, fmt.Errorf("no manager of %s is a machine yet: `machine swarm up -f %s` makes them", cl.Name, c.String("file"))
		}
		return names, a, nil
	}
	ns, err := argNames(c)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (or -f FILE: the cluster file's managers)", err)
	}
	a, err := api(c)
	return ns, a, err
}

// liveManagerNamed is the first of the managers named (-f FILE or names) that answers as one,
// open (the caller closes it).
func liveManagerNamed(c *cli.Context) (*swarm.Node, error) {
	names, a, err := managersNamed(c)
	if err != nil {
		return nil, err
	}
	return swarm.FindManager(c.Context, a, names)
}

func swarmUnlockCommand() *cli.Command {
	return &cli.Command{
		Name: "unlock", Usage: "Unlock the managers that autolock locked (their engine restarted), with the key the store keeps", ArgsUsage: "[MANAGER...]",
		Flags: []cli.Flag{fileFlag,
			&cli.StringFlag{Name: "unlock-key-file", Usage: "a file holding the unlock key, when the store keeps none (it is kept then)"},
		},
		Action: func(c *cli.Context) error {
			names, a, err := managersNamed(c)
			if err != nil {
				return err
			}
			key := ""
			if f := c.String("unlock-key-file"); f != "" {
				b, err := os.ReadFile(f)
				if err != nil {
					return fmt.Errorf("--unlock-key-file: %w", err)
				}
				key = strings.TrimSpace(string(b))
			}
			res, err := swarm.Unlock(c.Context, a, names, key)
			return printResults(c, names, res, err)
		},
	}
}

func swarmUnlockKeyCommand() *cli.Command {
	return &cli.Command{
		Name: "unlock-key", Usage: "Print the swarm's unlock key (autolock), kept in the store; --rotate: a new one first", ArgsUsage: "[MANAGER]",
		Flags: []cli.Flag{fileFlag,
			&cli.BoolFlag{Name: "rotate", Usage: "a new key replaces the old one, which stops working once every manager has the new one"},
		},
		Action: func(c *cli.Context) error {
			m, err := liveManagerNamed(c)
			if err != nil {
				return err
			}
			defer m.Close()
			key, err := swarm.UnlockKey(c.Context, m, c.Bool("rotate"))
			if err != nil {
				return err
			}
			if key == "" {
				return fmt.Errorf("the swarm of %s has autolock off: there is no unlock key (`autolock: true` under swarm: in the cluster file turns it on)", m.Name)
			}
			if _, err := fmt.Fprintln(c.App.Writer, key); err != nil {
				return err
			}
			if c.Bool("rotate") {
				fmt.Fprintln(c.App.ErrWriter, "the old key is kept in the store beside the new one until every manager has the new one (the next `swarm up` or `unlock-key` checks)")
			}
			return nil
		},
	}
}

func swarmRotateCACommand() *cli.Command {
	return &cli.Command{
		Name: "rotate-ca", Usage: "Give the swarm a new root CA, and wait until every node holds a certificate it issued", ArgsUsage: "[MANAGER]",
		Flags: []cli.Flag{fileFlag},
		Action: func(c *cli.Context) error {
			m, err := liveManagerNamed(c)
			if err != nil {
				return err
			}
			defer m.Close()
			total := 0
			say := progress(c, m.Name)
			if err := swarm.RotateCA(c.Context, m, func(done, n int) {
				total = n
				say(fmt.Sprintf("%d of %d nodes hold a certificate of the new root CA", done, n))
			}); err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.App.Writer, "(%s) the swarm has a new root CA: all %d nodes hold a certificate it issued\n", m.Name, total)
			return err
		},
	}
}

func swarmRebalanceCommand() *cli.Command {
	return &cli.Command{
		Name: "rebalance", Usage: "Spread replicated services' tasks again over the nodes they may run on (a skewed service redeployed, one at a time)", ArgsUsage: "[SERVICE...]",
		Flags: []cli.Flag{fileFlag,
			&cli.IntFlag{Name: "max-unavailable", Value: 1, Usage: "a service whose update replaces more tasks at once than this is refused"}},
		Action: func(c *cli.Context) error {
			if c.String("file") == "" {
				return fmt.Errorf("name the cluster file with -f FILE: its managers are asked")
			}
			cl, a, err := loadClusterAPI(c)
			if err != nil {
				return err
			}
			var names []string
			for _, m := range cl.Managers() {
				names = append(names, m.Name)
			}
			m, err := swarm.FindManager(c.Context, a, names)
			if err != nil {
				return err
			}
			defer m.Close()
			done, err := swarm.Rebalance(c.Context, m, c.Args().Slice(), c.Int("max-unavailable"), func(service, msg string) { progress(c, service)(msg) })
			if err != nil {
				return err
			}
			if len(done) == 0 {
				return say(c, "every replicated service is spread as evenly as it can be")
			}
			for _, s := range done {
				if err := say(c, "(%s) redeployed: it was %s", s.Service, s.Spread()); err != nil {
					return err
				}
			}
			return nil
		},
	}
}
