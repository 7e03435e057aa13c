package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/docker/docker/client"
	"github.com/urfave/cli/v2"

	"github.com/machine-tools/machine/images"
	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm"
)

func pullCommand() *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "Put images on many machines at once: pulled from a registry, or streamed from the local engine",
		ArgsUsage: "IMAGE...",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "nodes", Usage: "machines, comma-separated or repeated"},
			&cli.StringFlag{Name: "swarm", Usage: "every node of the swarm this manager belongs to"},
			&cli.BoolFlag{Name: "from-local", Usage: "no registry: stream the image from the local engine (read once)"},
			&cli.StringFlag{Name: "from", Usage: "no registry: stream the image from this machine's engine (read once)"},
			&cli.StringFlag{Name: "username", Usage: "registry user (default: the Docker config's credentials)"},
			&cli.BoolFlag{Name: "password-stdin", Usage: "read the registry password from standard input"},
			&cli.BoolFlag{Name: "json", Usage: "print the results as JSON"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return errors.New("pull needs an image: machine pull --nodes a,b IMAGE")
			}
			a, err := api(c)
			if err != nil {
				return err
			}
			names, err := selectNodes(c, a)
			if err != nil {
				return err
			}
			nodes, done, err := swarm.OpenNodes(a, names)
			if err != nil {
				return err
			}
			defer done()
			var targets []images.Target
			for _, n := range nodes {
				targets = append(targets, images.Target{Name: n.Name, Client: n.Docker})
			}
			password := ""
			if c.Bool("password-stdin") {
				b, err := io.ReadAll(c.App.Reader)
				if err != nil {
					return err
				}
				password = strings.TrimRight(string(b), "\r\n")
			}
			var lines *nodeLines
			if c.Bool("json") {
				lines = &nodeLines{plain: func(node, msg string) { progress(c, node)(msg) }}
			} else {
				lines = newNodeLines(c.App.ErrWriter, names, func(node, msg string) { progress(c, node)(msg) })
			}
			prog := lines.say
			var all []images.Result
			var notes []string // printed once the live lines are done
			var errs []error
			for _, ref := range c.Args().Slice() {
				var res []images.Result
				if c.Bool("from-local") || c.String("from") != "" {
					src, closeSrc, err := sideLoadSource(c, a)
					if err != nil {
						return err
					}
					var stats images.SideLoadStats
					res, stats, err = images.SideLoad(c.Context, src, ref, targets, prog)
					closeSrc()
					if stats.Targets > 0 {
						from := "the local engine"
						if m := c.String("from"); m != "" {
							from = m
						}
						notes = append(notes, fmt.Sprintf("%s: read %d bytes once from %s for %d node(s)", ref, stats.BytesRead, from, stats.Targets))
					}
					if err != nil {
						errs = append(errs, fmt.Errorf("%s: %w", ref, err))
					}
				} else {
					auth, err := registryAuth(c, ref, password)
					if err != nil {
						return err
					}
					res, err = images.Pull(c.Context, ref, targets, images.PullOptions{Auth: auth, Progress: prog})
					if err != nil {
						errs = append(errs, fmt.Errorf("%s: %w", ref, err))
					}
				}
				all = append(all, res...)
			}
			lines.wait()
			for _, n := range notes {
				fmt.Fprintln(c.App.ErrWriter, n)
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				if err := enc.Encode(all); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(c.App.Writer, 0, 8, 3, ' ', 0)
				fmt.Fprintln(tw, "NODE\tIMAGE\tID\tDIGEST\tRESULT")
				for _, r := range all {
					result := "ok"
					switch {
					case r.Error != "":
						result = "failed: " + r.Error
					case r.Skipped:
						result = "skipped (has it)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Node, r.Image, shortID(r.ID), r.Digest, result)
				}
				tw.Flush()
			}
			if len(errs) > 0 {
				return fmt.Errorf("not every node has every image: %w", errors.Join(errs...))
			}
			return nil
		},
	}
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func registryAuth(c *cli.Context, ref, password string) (string, error) {
	reg := images.RegistryOf(ref)
	if u := c.String("username"); u != "" {
		if password == "" {
			return "", errors.New("--username needs --password-stdin (a password is never taken on the command line)")
		}
		return images.EncodeAuth(u, password, reg)
	}
	return images.ConfigAuth(reg)
}

// selectNodes turns --nodes or --swarm into machine names.
func selectNodes(c *cli.Context, a *machine.API) ([]string, error) {
	var names []string
	for _, v := range c.StringSlice("nodes") {
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
	}
	m := c.String("swarm")
	switch {
	case len(names) > 0 && m != "":
		return nil, errors.New("use --nodes or --swarm, not both")
	case len(names) > 0:
		return names, nil
	case m == "":
		return nil, errors.New("name the machines with --nodes a,b,c or --swarm MANAGER")
	}
	return swarm.Members(c.Context, a, m)
}

// sideLoadSource is the engine a side-load reads from: the local one, or a machine's.
func sideLoadSource(c *cli.Context, a *machine.API) (client.APIClient, func(), error) {
	if m := c.String("from"); m != "" {
		h, err := a.Load(m)
		if err != nil {
			return nil, nil, err
		}
		cli, err := h.Docker()
		if err != nil {
			return nil, nil, err
		}
		return cli, func() { cli.Close() }, nil
	}
	local, err := swarm.LocalEngine()
	if err != nil {
		return nil, nil, err
	}
	return local.Client, func() { local.Client.Close() }, nil
}
