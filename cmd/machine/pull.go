package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

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
			names, err := swarm.SelectNodes(c.Context, a, c.StringSlice("nodes"), c.String("swarm"))
			if err != nil {
				return err
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
			d, err := swarm.Distribute(c.Context, a, c.Args().Slice(), swarm.DistributeOptions{
				Nodes: names, FromLocal: c.Bool("from-local"), From: c.String("from"),
				Username: c.String("username"), Password: password, Progress: lines.say,
			})
			all, notes := d.Results, d.Notes
			lines.wait()
			if err != nil && len(all) == 0 {
				return err
			}
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
			return err
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
