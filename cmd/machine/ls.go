package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/internal/store"
	"github.com/machine-tools/machine/machine"
)

// lsRow is one machine in `machine ls`; its fields are what --format templates use.
type lsRow struct {
	Name          string
	Active        string
	ActiveHost    bool
	DriverName    string
	State         string
	URL           string
	Swarm         string
	DockerVersion string
	Error         string
	ResponseTime  string
	Labels        []string `json:"-"`
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
	tmpl, err := template.New("ls").Funcs(template.FuncMap{"json": func(v any) string { b, _ := json.Marshal(v); return string(b) }}).Parse(format + "\n")
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

// checkAll asks every machine at once; each answer is bounded by timeout, so the whole listing
// takes about one timeout, not the sum of them.
func checkAll(ctx context.Context, a *machine.API, names []string, timeout time.Duration, quick bool) []lsRow {
	rows := make([]lsRow, len(names))
	var wg sync.WaitGroup
	active := os.Getenv("DOCKER_HOST")
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			done := make(chan lsRow, 1)
			go func() { done <- checkOne(cctx, a, n, active, quick) }()
			select {
			case r := <-done:
				rows[i] = r
			case <-cctx.Done():
				rows[i] = lsRow{Name: n, Active: "-", State: "Timeout", Error: fmt.Sprintf("no answer within %s", timeout)}
				if h, err := a.Load(n); err == nil {
					rows[i].DriverName, rows[i].URL = h.DriverName, h.URL()
				}
			}
		}()
	}
	wg.Wait()
	return rows
}

func checkOne(ctx context.Context, a *machine.API, name, activeHost string, quick bool) lsRow {
	start := time.Now()
	r := lsRow{Name: name, Active: "-"}
	h, err := a.Load(name)
	if err != nil {
		r.State, r.Error = "Error", err.Error()
		return r
	}
	r.DriverName = h.DriverName
	r.Labels = h.Engine.Labels
	if h.SSH.Host != "" {
		r.URL = h.URL()
	}
	if r.URL != "" && r.URL == activeHost {
		r.Active, r.ActiveHost = "*", true
	}
	if h.State == store.StateCreating || h.State == store.StateFailed || h.Driver == nil {
		r.State = "Error"
		r.Error = "create did not finish: remove with `machine rm -f " + name + "`"
		if h.LastError != "" {
			r.Error = h.LastError
		}
		return r
	}
	if quick {
		return r
	}
	st, err := h.Driver.State(ctx)
	r.State = string(st)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	if st == drivers.NotFound {
		r.Error = "its host no longer exists: remove the record with `machine rm -f " + name + "`"
		return r
	}
	if st != drivers.Running {
		r.ResponseTime = time.Since(start).Round(time.Millisecond).String()
		return r
	}
	if ip, changed := h.AddressChanged(ctx); changed {
		r.Error = fmt.Sprintf("address changed from %s to %s: run `machine regenerate-certs -f %s`", h.IP(), ip, name)
		return r
	}
	cli, err := h.Docker()
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer cli.Close()
	v, err := cli.ServerVersion(ctx)
	if err != nil {
		r.DockerVersion = "Unknown"
		r.Error = fmt.Sprintf("Unable to query docker version: %v", err)
		return r
	}
	r.DockerVersion = "v" + v.Version
	if info, err := cli.Info(ctx); err == nil && info.Swarm.LocalNodeState == "active" {
		r.Swarm = "worker"
		if info.Swarm.ControlAvailable {
			r.Swarm = "manager"
		}
	}
	r.ResponseTime = time.Since(start).Round(time.Millisecond).String()
	return r
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
