package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/machine-tools/machine/images"
	"github.com/machine-tools/machine/internal/format"
	bars "github.com/machine-tools/machine/internal/progress"
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
			lines := bars.NewNodeLines(c.App.ErrWriter, names, !c.Bool("json"), nodeProgress(c))
			d, err := distribute(c, a, names, images.DistributeOptions{Username: c.String("username"), Password: password, Progress: lines.Say})
			all, notes := d.Results, d.Notes
			lines.Wait()
			if err != nil && len(all) == 0 {
				return err
			}
			for _, n := range notes {
				fmt.Fprintln(c.App.ErrWriter, n)
			}
			if c.Bool("json") {
				return errors.Join(format.JSON(c.App.Writer, all, "  "), err)
			}
			var rows [][]string
			for _, r := range all {
				rows = append(rows, []string{r.Node, r.Image, r.ShortID(), r.Digest, r.Result()})
			}
			return errors.Join(format.Table(c.App.Writer, []string{"NODE", "IMAGE", "ID", "DIGEST", "RESULT"}, rows), err)
		},
	}
}

// distribute opens the nodes' engines and the source's (the local engine's for --from-local, a
// machine's for --from) and puts the images on every node.
func distribute(c *cli.Context, a *machine.API, names []string, o images.DistributeOptions) (images.Distribution, error) {
	nodes, done, err := swarm.OpenNodes(a, names)
	if err != nil {
		return images.Distribution{}, err
	}
	defer done()
	var targets []images.Target
	for _, n := range nodes {
		targets = append(targets, images.Target{Name: n.Name, Client: n.Docker})
	}
	switch {
	case c.String("from") != "":
		src, err := swarm.OpenNode(a, c.String("from"))
		if err != nil {
			return images.Distribution{}, err
		}
		defer src.Close()
		o.Source, o.SourceName = src.Docker, c.String("from")
	case c.Bool("from-local"):
		local, err := swarm.LocalEngine()
		if err != nil {
			return images.Distribution{}, err
		}
		defer local.Client.Close()
		o.Source, o.SourceName = local.Client, "the local engine"
	}
	return images.Distribute(c.Context, targets, c.Args().Slice(), o)
}
