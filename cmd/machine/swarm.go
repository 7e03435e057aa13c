package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/machine-tools/machine/swarm"
)

func printResults(c *cli.Context, order []string, res map[string]string) {
	for _, n := range order {
		if msg, ok := res[n]; ok && !strings.HasPrefix(msg, "failed: ") {
			fmt.Fprintf(c.App.Writer, "(%s) %s\n", n, msg)
		}
	}
}

func swarmCommand() *cli.Command {
	return &cli.Command{
		Name:  "swarm",
		Usage: "Make machines a Docker swarm (swarm mode)",
		Subcommands: []*cli.Command{
			swarmUpCommand(),
			swarmPlanCommand(),
			swarmDownCommand(),
			{
				Name: "init", Usage: "Start a swarm with a machine as its first manager", ArgsUsage: "MANAGER",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "advertise-addr", Usage: "address or interface to advertise (default: the machine's address)"},
					&cli.StringFlag{Name: "listen-addr", Usage: "listen address (default 0.0.0.0:2377)"},
					&cli.StringFlag{Name: "data-path-addr", Usage: "address or interface for data traffic"},
					&cli.BoolFlag{Name: "autolock", Usage: "lock managers' keys at rest"},
				},
				Action: func(c *cli.Context) error {
					node, done, err := openOne(c)
					if err != nil {
						return err
					}
					defer done()
					msg, err := swarm.Init(c.Context, node, swarm.InitOptions{
						AdvertiseAddr: c.String("advertise-addr"), ListenAddr: c.String("listen-addr"),
						DataPathAddr: c.String("data-path-addr"), Autolock: c.Bool("autolock"),
					})
					if err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "(%s) %s\n", node.Name, msg)
					return nil
				},
			},
			{
				Name: "join", Usage: "Join machines to a manager's swarm (workers at once, managers one by one)", ArgsUsage: "NODE...",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "manager", Usage: "a manager of the swarm (required)"},
					&cli.StringFlag{Name: "role", Value: "worker", Usage: "worker or manager"},
					&cli.StringFlag{Name: "advertise-addr", Usage: "address or interface each joiner advertises (default: the address it reaches the manager from)"},
					&cli.StringFlag{Name: "listen-addr", Usage: "listen address (default 0.0.0.0:2377)"},
					&cli.BoolFlag{Name: "local", Usage: "the engine of this computer joins (DOCKER_HOST, or the default socket), advertising the address it reaches the manager from"},
				},
				Action: func(c *cli.Context) error {
					mname := c.String("manager")
					if mname == "" {
						return fmt.Errorf("swarm join needs --manager NAME: the machine whose swarm the nodes join")
					}
					if c.Bool("local") {
						if c.NArg() > 0 {
							return fmt.Errorf("swarm join --local takes no machine names: the local engine joins")
						}
						a, err := api(c)
						if err != nil {
							return err
						}
						return printLocal(c)(swarm.JoinLocal(c.Context, a, mname, c.String("role")))
					}
					ns, err := argNames(c)
					if err != nil {
						return err
					}
					a, err := api(c)
					if err != nil {
						return err
					}
					all, done, err := swarm.OpenNodes(a, append([]string{mname}, ns...))
					if err != nil {
						return err
					}
					defer done()
					res, err := swarm.Join(c.Context, all[0], all[1:], swarm.JoinOptions{
						Role: c.String("role"), AdvertiseAddr: c.String("advertise-addr"), ListenAddr: c.String("listen-addr"),
						Progress: func(node, msg string) { progress(c, node)(msg) },
					})
					printResults(c, ns, res)
					return err
				},
			},
			{
				Name: "leave", Usage: "Take machines out of their swarm (demoted first, then removed from the node list)", ArgsUsage: "NODE...",
				Flags: []cli.Flag{&cli.StringFlag{Name: "manager", Usage: "a manager that removes the nodes from its list (default: found among your machines)"},
					&cli.BoolFlag{Name: "local", Usage: "the engine of this computer leaves (what `swarm join --local` made)"}},
				Action: func(c *cli.Context) error {
					a, err := api(c)
					if err != nil {
						return err
					}
					if c.Bool("local") {
						mname := c.String("manager")
						if mname == "" {
							mname = swarm.FindManager(c.Context, a, nil)
						}
						return printLocal(c)(swarm.LeaveLocal(c.Context, a, mname))
					}
					ns, err := argNames(c)
					if err != nil {
						return err
					}
					nodes, done, err := swarm.OpenNodes(a, ns)
					if err != nil {
						return err
					}
					defer done()
					var via *swarm.Node
					mname := c.String("manager")
					if mname == "" {
						mname = swarm.FindManager(c.Context, a, ns)
					}
					if mname != "" {
						m, mdone, err := swarm.OpenNodes(a, []string{mname})
						if err != nil {
							return err
						}
						defer mdone()
						via = m[0]
					}
					res, err := swarm.Leave(c.Context, nodes, via)
					printResults(c, ns, res)
					return err
				},
			},
			{
				Name: "status", Usage: "List a swarm's nodes as a manager sees them", ArgsUsage: "MANAGER",
				Flags: []cli.Flag{&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "json for scripts: quorum, leader, nodes (with their swarm certificates' expiry), engine version skew"}},
				Action: func(c *cli.Context) error {
					if f := c.String("format"); f != "" && f != "json" {
						return fmt.Errorf("--format %q: use json, or leave it out for the table", f)
					}
					node, done, err := openOne(c)
					if err != nil {
						return err
					}
					defer done()
					rows, err := swarm.Status(c.Context, node)
					if err != nil {
						return err
					}
					sort.Slice(rows, func(i, j int) bool { return rows[i].Hostname < rows[j].Hostname })
					rep := swarm.NewReport(rows)
					if c.String("format") == "json" {
						a, err := api(c)
						if err != nil {
							return err
						}
						swarm.CertExpiry(c.Context, a, rep.Nodes)
						enc := json.NewEncoder(c.App.Writer)
						enc.SetIndent("", "  ")
						return enc.Encode(rep)
					}
					defer func() {
						fmt.Fprintf(c.App.Writer, "managers: %d (%d answering, %d needed for quorum)", rep.Managers.Total, rep.Managers.Reachable, rep.Managers.Needed)
						if rep.Skew {
							fmt.Fprintf(c.App.Writer, "; engine versions differ: %s", strings.Join(rep.Versions, ", "))
						}
						fmt.Fprintln(c.App.Writer)
					}()
					tw := tabwriter.NewWriter(c.App.Writer, 0, 8, 3, ' ', 0)
					fmt.Fprintln(tw, "ID\tHOSTNAME\tROLE\tSTATUS\tAVAILABILITY\tMANAGER STATUS\tADDRESS\tENGINE")
					for _, r := range rows {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Hostname, r.Role, r.Status, r.Availability, r.ManagerStatus, r.Addr, r.EngineVersion)
					}
					return tw.Flush()
				},
			},
			{
				Name: "rotate-tokens", Usage: "Give the swarm new join tokens (the old ones stop working)", ArgsUsage: "MANAGER",
				Action: func(c *cli.Context) error {
					node, done, err := openOne(c)
					if err != nil {
						return err
					}
					defer done()
					if err := swarm.RotateTokens(c.Context, node); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "(%s) new worker and manager join tokens: the old ones no longer join\n", node.Name)
					return nil
				},
			},
			{
				Name: "join-token", Usage: "Print a swarm's join token (a secret: shown only here)", ArgsUsage: "MANAGER",
				Flags: []cli.Flag{&cli.StringFlag{Name: "role", Value: "worker", Usage: "worker or manager"}},
				Action: func(c *cli.Context) error {
					node, done, err := openOne(c)
					if err != nil {
						return err
					}
					defer done()
					tok, err := swarm.JoinToken(c.Context, node, c.String("role"))
					if err != nil {
						return err
					}
					fmt.Fprintln(c.App.Writer, tok)
					return nil
				},
			},
		},
	}
}

// openOne opens the engine of the command's one machine argument.
func openOne(c *cli.Context) (*swarm.Node, func(), error) {
	name, err := oneName(c)
	if err != nil {
		return nil, nil, err
	}
	a, err := api(c)
	if err != nil {
		return nil, nil, err
	}
	nodes, done, err := swarm.OpenNodes(a, []string{name})
	if err != nil {
		return nil, nil, err
	}
	return nodes[0], done, nil
}

// printLocal prints what happened to the local engine, or returns the error.
func printLocal(c *cli.Context) func(string, error) error {
	return func(msg string, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "(local) %s\n", msg)
		return nil
	}
}
