package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/machine-tools/machine/internal/format"
	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm"
	"github.com/machine-tools/machine/swarm/cluster"
)

// printResults prints each node's result (failures are in err), then returns err.
func printResults(c *cli.Context, order []string, res map[string]string, err error) error {
	for _, n := range order {
		if msg, ok := res[n]; ok && !strings.HasPrefix(msg, "failed: ") {
			fmt.Fprintf(c.App.Writer, "(%s) %s\n", n, msg)
		}
	}
	return err
}

func swarmCommand() *cli.Command {
	return &cli.Command{
		Name:  "swarm",
		Usage: "Make machines a Docker swarm (swarm mode)",
		Subcommands: []*cli.Command{
			swarmUpCommand(),
			swarmPlanCommand(),
			swarmDownCommand(),
			swarmBackupCommand(),
			swarmRestoreCommand(),
			swarmRecoverCommand(),
			swarmUnlockCommand(),
			swarmUnlockKeyCommand(),
			swarmRotateCACommand(),
			swarmRebalanceCommand(),
			onNode("init", "Start a swarm with a machine as its first manager", []cli.Flag{
				&cli.StringFlag{Name: "advertise-addr", Usage: "address or interface to advertise (default: the machine's address)"},
				&cli.StringFlag{Name: "listen-addr", Usage: "listen address (default 0.0.0.0:2377)"},
				&cli.StringFlag{Name: "data-path-addr", Usage: "address or interface for data traffic"},
				&cli.BoolFlag{Name: "autolock", Usage: "lock managers' keys at rest"},
			}, func(c *cli.Context, node *swarm.Node) error {
				msg, err := swarm.Init(c.Context, node, swarm.InitOptions{
					AdvertiseAddr: c.String("advertise-addr"), ListenAddr: c.String("listen-addr"),
					DataPathAddr: c.String("data-path-addr"), Autolock: c.Bool("autolock"),
				})
				if err == nil && c.Bool("autolock") {
					if _, aerr := swarm.UnlockKey(c.Context, node, false); aerr != nil { // kept, not printed
						return fmt.Errorf("%s; but its unlock key could not be kept: %w (`docker swarm unlock-key` through machine env %s shows it)", msg, aerr, node.Name)
					}
					msg += ": its unlock key is kept in the store (`machine swarm unlock-key " + node.Name + "` prints it)"
				}
				return sayResult(c, node.Name)(msg, err)
			}),
			{
				Name: "join", Usage: "Join machines to a manager's swarm (workers at once, managers one by one)", ArgsUsage: "NODE...",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "manager", Usage: "a manager of the swarm (required)"},
					&cli.StringFlag{Name: "role", Value: "worker", Usage: "worker or manager"},
					&cli.StringFlag{Name: "advertise-addr", Usage: "address or interface each joiner advertises (default: the address it reaches the manager from)"},
					&cli.StringFlag{Name: "listen-addr", Usage: "listen address (default 0.0.0.0:2377)"},
					&cli.BoolFlag{Name: "local", Usage: "the engine of this computer joins (DOCKER_HOST, or the default socket), advertising the address it reaches the manager from"},
				},
				Action: withAPI(func(c *cli.Context, a *machine.API) error {
					mname := c.String("manager")
					if mname == "" {
						return fmt.Errorf("swarm join needs --manager NAME: the machine whose swarm the nodes join")
					}
					role, err := cluster.ParseRole(c.String("role"))
					if err != nil {
						return fmt.Errorf("--%w", err)
					}
					if c.Bool("local") && c.NArg() > 0 {
						return fmt.Errorf("swarm join --local takes no machine names: the local engine joins")
					} else if c.Bool("local") {
						return sayResult(c, "local")(swarm.JoinLocal(c.Context, a, mname, role))
					}
					ns, err := argNames(c)
					if err != nil {
						return err
					}
					res, err := swarm.JoinMachines(c.Context, a, mname, ns, swarm.JoinOptions{
						Role: role, AdvertiseAddr: c.String("advertise-addr"), ListenAddr: c.String("listen-addr"),
						Progress: nodeProgress(c),
					})
					return printResults(c, ns, res, err)
				}),
			},
			{
				Name: "leave", Usage: "Take machines out of their swarm (demoted first, then removed from the node list)", ArgsUsage: "NODE...",
				Flags: []cli.Flag{&cli.StringFlag{Name: "manager", Usage: "a manager that removes the nodes from its list (default: found among your machines)"},
					&cli.BoolFlag{Name: "local", Usage: "the engine of this computer leaves (what `swarm join --local` made)"}},
				Action: withAPI(func(c *cli.Context, a *machine.API) error {
					if c.Bool("local") {
						return sayResult(c, "local")(swarm.LeaveLocal(c.Context, a, c.String("manager")))
					}
					ns, err := argNames(c)
					if err != nil {
						return err
					}
					res, err := swarm.LeaveMachines(c.Context, a, ns, c.String("manager"))
					return printResults(c, ns, res, err)
				}),
			},
			managerReport("status", "List a swarm's nodes as a manager sees them", "json for scripts: quorum, leader, nodes (with their swarm certificates' expiry), engine version skew",
				func(c *cli.Context, a *machine.API, name string, asJSON bool) error {
					rep, err := swarm.StatusReport(c.Context, a, name, true)
					if err != nil {
						return err
					}
					if asJSON {
						return format.JSON(c.App.Writer, rep, "  ")
					}
					return rep.WriteTable(c.App.Writer)
				}),
			managerReport("check", "Check the ports a swarm needs between a manager and every other node (2377/tcp, 7946/tcp+udp, 4789/udp)", "json for scripts",
				func(c *cli.Context, a *machine.API, name string, asJSON bool) error {
					res, err := swarm.Check(c.Context, a, name)
					if err != nil {
						return err
					}
					if asJSON {
						err = format.JSON(c.App.Writer, res, "  ")
					} else {
						err = res.WriteLines(c.App.Writer, name)
					}
					return errors.Join(err, res.Err(name))
				}),
			onNode("rotate-tokens", "Give the swarm new join tokens (the old ones stop working)", nil, func(c *cli.Context, node *swarm.Node) error {
				if err := swarm.RotateTokens(c.Context, node); err != nil {
					return err
				}
				return say(c, "(%s) new worker and manager join tokens: the old ones no longer join", node.Name)
			}),
			onNode("join-token", "Print a swarm's join token (a secret: shown only here)",
				[]cli.Flag{&cli.StringFlag{Name: "role", Value: "worker", Usage: "worker or manager"}},
				func(c *cli.Context, node *swarm.Node) error {
					role, err := cluster.ParseRole(c.String("role"))
					if err != nil {
						return fmt.Errorf("--%w", err)
					}
					return sayResult(c, "")(swarm.JoinToken(c.Context, node, role))
				}),
		},
	}
}

// managerReport is a command over a manager (by name) that prints a table, or JSON.
func managerReport(name, usage, formatUsage string, act func(c *cli.Context, a *machine.API, manager string, asJSON bool) error) *cli.Command {
	return &cli.Command{Name: name, Usage: usage, ArgsUsage: "MANAGER",
		Flags: []cli.Flag{&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: formatUsage}},
		Action: func(c *cli.Context) error {
			if err := format.OneOf(c.String("format"), "json"); err != nil {
				return err
			}
			m, err := oneName(c)
			if err != nil {
				return err
			}
			a, err := api(c)
			if err != nil {
				return err
			}
			return act(c, a, m, c.String("format") == "json")
		}}
}

// onNode is a command over the engine of its one machine argument (a manager).
func onNode(name, usage string, flags []cli.Flag, act func(c *cli.Context, node *swarm.Node) error) *cli.Command {
	cmd := oneMachine(name, usage, flags, func(c *cli.Context, h *machine.Host) error {
		node, err := swarm.Open(h)
		if err != nil {
			return err
		}
		defer node.Close()
		return act(c, node)
	})
	cmd.ArgsUsage = "MANAGER"
	return cmd
}

// sayResult prints a result as "(name) msg" (msg alone for no name), or returns the error.
func sayResult(c *cli.Context, name string) func(msg string, err error) error {
	return func(msg string, err error) error {
		if err != nil {
			return err
		} else if name == "" {
			return say(c, "%s", msg)
		}
		return say(c, "(%s) %s", name, msg)
	}
}
