package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/machine-tools/machine/machine"
)

// lsRow is one machine in `machine ls`; its fields are what --format templates use.
type lsRow struct {
	machine.Status
	Active     string
	ActiveHost bool
}

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
		Action: func(c *cli.Context) error {
			a, err := api(c)
			if err != nil {
				return err
			}
			filters, err := parseFilters(c.StringSlice("filter"))
			if err != nil {
				return err
			}
			all, err := a.Store.List()
			if err != nil {
				return err
			}
			quick := c.Bool("quiet") && !filters.needState()
			rows := checkAll(c.Context, a, all, time.Duration(c.Int("timeout"))*time.Second, quick)
			var kept []lsRow
			for _, r := range rows {
				if filters.match(r) {
					kept = append(kept, r)
				}
			}
			if c.Bool("quiet") {
				for _, r := range kept {
					fmt.Fprintln(c.App.Writer, r.Name)
				}
				return nil
			}
			return printRows(c.App.Writer, c.String("format"), kept)
		},
	}
}

func printRows(w io.Writer, format string, rows []lsRow) error {
	if format == "json" {
		if rows == nil {
			rows = []lsRow{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	if format == "" {
		format = lsDefaultFormat
	}
	table := strings.HasPrefix(format, "table")
	format = strings.TrimPrefix(format, "table")
	format = strings.TrimLeft(format, " ")
	tmpl, err := template.New("ls").Funcs(templateFuncs).Parse(format + "\n")
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	out := w
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
		out = tw
		if err := tmpl.Execute(out, lsHeaders); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
	}
	for _, r := range rows {
		if err := tmpl.Execute(out, r); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// checkAll asks every machine at once (machine.API.Survey) and marks the active one.
func checkAll(ctx context.Context, a *machine.API, names []string, timeout time.Duration, quick bool) []lsRow {
	active := os.Getenv("DOCKER_HOST")
	var rows []lsRow
	for _, st := range a.Survey(ctx, names, timeout, quick) {
		r := lsRow{Status: st, Active: "-"}
		if st.URL != "" && st.URL == active {
			r.Active, r.ActiveHost = "*", true
		}
		rows = append(rows, r)
	}
	return rows
}

type lsFilters map[string][]string

func parseFilters(in []string) (lsFilters, error) {
	f := lsFilters{}
	for _, x := range in {
		k, v, ok := strings.Cut(x, "=")
		k = strings.ToLower(k)
		if !ok || (k != "driver" && k != "state" && k != "name" && k != "label" && k != "swarm") {
			return nil, fmt.Errorf("--filter %q: use driver=NAME, state=STATE, name=NAME, label=KEY=VALUE or swarm=manager|worker", x)
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

func (f lsFilters) needState() bool { return len(f["state"]) > 0 || len(f["swarm"]) > 0 }

func (f lsFilters) match(r lsRow) bool {
	for k, vals := range f {
		ok := false
		for _, v := range vals {
			switch k {
			case "driver":
				ok = ok || strings.EqualFold(r.DriverName, v)
			case "state":
				ok = ok || strings.EqualFold(r.State, v)
			case "name":
				ok = ok || r.Name == v
			case "swarm":
				ok = ok || strings.EqualFold(r.Swarm, v)
			case "label":
				for _, l := range r.Labels {
					ok = ok || l == v
				}
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
