package main

import (
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/machine-tools/machine/internal/format"
	"github.com/machine-tools/machine/machine"
)

var lsHeaders = map[string]string{
	"Name": "NAME", "Active": "ACTIVE", "ActiveHost": "ACTIVE", "DriverName": "DRIVER", "State": "STATE",
	"URL": "URL", "Swarm": "SWARM", "DockerVersion": "DOCKER", "Error": "ERRORS", "ResponseTime": "RESPONSE",
}

const lsDefaultFormat = "table {{.Name}}\t{{.Active}}\t{{.DriverName}}\t{{.State}}\t{{.URL}}\t{{.Swarm}}\t{{.DockerVersion}}\t{{.Error}}"

func lsCommand() *cli.Command {
	return &cli.Command{
		Name:  "ls",
		Usage: "List machines, checking each at the same time",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print names only"},
			&cli.StringSliceFlag{Name: "filter", Usage: "keep machines that match: driver=NAME, state=Running, name=NAME, label=key=value (repeatable)"},
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "a Go template (`table` prefix for columns), or json"},
			&cli.IntFlag{Name: "timeout", Aliases: []string{"t"}, Value: 10, Usage: "seconds to wait for each machine; all are asked at once"},
		},
		Action: withAPI(func(c *cli.Context, a *machine.API) error {
			filter, err := machine.ParseFilter(c.StringSlice("filter"))
			if err != nil {
				return err
			}
			all, err := a.Store.List()
			if err != nil {
				return err
			}
			machine.SortNatural(all) // docker-machine's order: web2 before web10
			rows := a.Survey(c.Context, all, time.Duration(c.Int("timeout"))*time.Second, c.Bool("quiet") && !filter.NeedsState())
			machine.MarkActive(rows, os.Getenv("DOCKER_HOST"))
			var kept []machine.Status
			for _, r := range rows {
				if filter.Match(r) {
					kept = append(kept, r)
				}
			}
			if c.Bool("quiet") {
				return format.Rows(c.Context, c.App.Writer, "{{.Name}}", "", nil, kept)
			}
			return format.Rows(c.Context, c.App.Writer, c.String("format"), lsDefaultFormat, lsHeaders, kept)
		}),
	}
}
