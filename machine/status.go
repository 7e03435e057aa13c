package machine

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"

	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/internal/fanout"
	"github.com/machine-tools/machine/internal/store"
)

// Status is a machine as `machine ls` shows it: its record and what its driver and engine say
// now.
type Status struct {
	Name          string
	DriverName    string
	State         string // the driver's state, "Error" for a create that did not finish, "Timeout"
	URL           string
	Swarm         string // manager, worker, or empty
	DockerVersion string
	Error         string
	ResponseTime  string
	Labels        []string `json:"-"` // the engine's labels
	Active        string   // "*" for the machine DOCKER_HOST points at (MarkActive), else "-"
	ActiveHost    bool

	dockerHost string // what `env` points DOCKER_HOST at (a tunnel for machines behind jump hosts)
}

// MarkActive marks the machine whose URL is dockerHost (DOCKER_HOST) as the active one.
func MarkActive(rows []Status, dockerHost string) {
	for i := range rows {
		rows[i].Active, rows[i].ActiveHost = "-", false
		if dockerHost != "" && (rows[i].URL == dockerHost || rows[i].dockerHost == dockerHost) {
			rows[i].Active, rows[i].ActiveHost = "*", true
		}
	}
}

// Filter keeps the machines that match, for each key given, one of its values (ls --filter), as
// docker-machine 0.16 matched them: driver and state ignoring case, name a regular expression
// (unanchored: name=web matches web1), label KEY=VALUE (the value ignoring case) among the
// engine's labels, and swarm (manager or worker).
type Filter map[string][]string

// ParseFilter reads KEY=VALUE filters.
func ParseFilter(in []string) (Filter, error) {
	f := Filter{}
	for _, x := range in {
		k, v, ok := strings.Cut(x, "=")
		k = strings.ToLower(k)
		switch {
		case !ok:
			return nil, fmt.Errorf("Unsupported filter syntax: --filter %q: use KEY=VALUE, e.g. driver=NAME, state=STATE, name=REGEXP, label=KEY=VALUE or swarm=manager|worker", x)
		case k != "driver" && k != "state" && k != "name" && k != "label" && k != "swarm":
			return nil, fmt.Errorf("Unsupported filter key '%s': use driver=NAME, state=STATE, name=REGEXP, label=KEY=VALUE or swarm=manager|worker", k)
		case k == "name":
			if _, err := regexp.Compile(v); err != nil {
				return nil, fmt.Errorf("--filter name=%s is not a regular expression (%v): name matches machine names by one, e.g. name=^web", v, err)
			}
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

// hasLabel: labels (KEY=VALUE) hold want's key with its value, ignoring the value's case.
func hasLabel(labels []string, want string) bool {
	wk, wv, _ := strings.Cut(want, "=")
	for _, l := range labels {
		if k, v, _ := strings.Cut(l, "="); k == wk && strings.EqualFold(v, wv) {
			return true
		}
	}
	return false
}

// NeedsState tells whether matching needs the machines asked (not just their records read).
func (f Filter) NeedsState() bool { return len(f["state"]) > 0 || len(f["swarm"]) > 0 }

// Match tells whether s is kept.
func (f Filter) Match(s Status) bool {
	for k, vals := range f {
		ok := false
		for _, v := range vals {
			switch k {
			case "driver":
				ok = ok || strings.EqualFold(s.DriverName, v)
			case "state":
				ok = ok || strings.EqualFold(s.State, v)
			case "name":
				ok = ok || regexp.MustCompile(v).MatchString(s.Name) // checked by ParseFilter
			case "swarm":
				ok = ok || strings.EqualFold(s.Swarm, v)
			case "label":
				ok = ok || hasLabel(s.Labels, v)
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// Survey asks every machine at once, all within one deadline, timeout (0: 10 s) from its start:
// the whole survey takes at most about one timeout, however many machines there are (with
// 1,000, the last goroutines start most of a second after the first on two cores). With quick,
// only the records are read.
func (a *API) Survey(ctx context.Context, names []string, timeout time.Duration, quick bool) []Status {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	deadline := time.Now().Add(timeout)
	out, _ := fanout.Map(ctx, names, 0, func(ctx context.Context, n string) (Status, error) {
		cctx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		// The record is read once, first: a machine that does not answer is listed from it
		// at once when its time is up (1,000 records read again then took a second).
		h, err := a.Load(n)
		if err != nil {
			return Status{Name: n, State: "Error", Error: err.Error()}, nil
		}
		done := make(chan Status, 1)
		go func() { done <- a.status(cctx, h, quick) }()
		select {
		case r := <-done:
			return r, nil
		case <-cctx.Done():
			return Status{Name: n, State: "Timeout", Error: fmt.Sprintf("no answer within %s", timeout), DriverName: h.DriverName, URL: h.URL()}, nil
		}
	})
	for i, n := range names {
		if out[i].Name == "" { // not asked: ctx ended first
			out[i] = Status{Name: n, State: "Timeout", Error: ctx.Err().Error()}
		}
	}
	return out
}

func (a *API) status(ctx context.Context, h *Host, quick bool) Status {
	start := time.Now()
	name := h.Name
	r := Status{Name: name}
	r.DriverName = h.DriverName
	r.Labels = h.Engine.Labels
	if h.SSH.Host != "" {
		r.URL, r.dockerHost = h.URL(), h.DockerHost()
	}
	if h.State == store.StateCreating {
		if _, busy := a.Store.CreateUnderWay(name); busy {
			r.State = "Creating" // its create is running in another process
			return r
		}
		// Not under way now: either it died, or it finished between the load and the question
		// (it saves its last state before it lets go). Read the record again to tell which.
		if again, err := a.Load(name); err == nil {
			h = again
			r.Labels = h.Engine.Labels
			if h.SSH.Host != "" {
				r.URL, r.dockerHost = h.URL(), h.DockerHost()
			}
		}
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
	cli, err := h.Docker()
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer cli.Close()
	// The version and the swarm role (100 machines are asked at once, each engine maybe busy)
	// from /_ping, the engine's cheapest answer, and /swarm where /_ping does not name the role;
	// /info, which holds both too, only when neither says.
	version, role, err := pingState(ctx, cli, h.URL())
	if err == nil && version == "" {
		var info system.Info
		if info, err = cli.Info(ctx); err == nil {
			version, role = info.ServerVersion, ""
			if info.Swarm.LocalNodeState == "active" {
				role = "worker"
				if info.Swarm.ControlAvailable {
					role = "manager"
				}
			}
		}
	}
	if err != nil {
		// Its host may answer at another address now (asked only then: the driver's answer
		// costs a request of its own).
		if ip, changed := h.AddressChanged(ctx); changed {
			r.Error = fmt.Sprintf("address changed from %s to %s: run `machine regenerate-certs -f %s`", h.IP(), ip, name)
			return r
		}
		r.DockerVersion = "Unknown"
		r.Error = fmt.Sprintf("Unable to query docker version: %v", err)
		return r
	}
	r.DockerVersion, r.Swarm = "v"+version, role
	r.ResponseTime = time.Since(start).Round(time.Millisecond).String()
	return r
}

// pingState asks an engine's /_ping: its version (the Server header, "Docker/20.10.24 (linux)")
// and its swarm role (the Swarm header, "active/manager", API 1.42 on). An engine whose /_ping
// does not name its swarm state (Docker 20.10, measured on 20.10.24) is asked /swarm, which
// tells it without forking anything, where /info runs `runc --version` and `docker-init
// --version` on the host every time (about 35 ms of the host's CPU, against 2.5 ms for /_ping,
// measured here): a manager answers it, a worker and a node in no swarm each refuse it with
// their own message. version "" when the engine does not say (the caller asks /info).
func pingState(ctx context.Context, cli *client.Client, engineURL string) (version, role string, err error) {
	u, err := url.Parse(engineURL)
	if err != nil {
		return "", "", err
	}
	get := func(path string) (*http.Response, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+u.Host+path, nil)
		if err != nil {
			return nil, nil, err
		}
		resp, err := cli.HTTPClient().Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return resp, body, err
	}
	resp, _, err := get("/_ping")
	if err != nil {
		return "", "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("/_ping: %s", resp.Status)
	}
	v, ok := strings.CutPrefix(resp.Header.Get("Server"), "Docker/")
	if !ok {
		return "", "", nil
	}
	v, _, _ = strings.Cut(v, " ")
	switch resp.Header.Get("Swarm") {
	case "active/manager":
		return v, "manager", nil
	case "active/worker":
		return v, "worker", nil
	case "":
	default: // inactive, locked, pending, error
		return v, "", nil
	}
	resp, body, err := get("/swarm")
	if err != nil {
		return "", "", err
	}
	if role, ok := swarmRole(resp.StatusCode, body); ok {
		return v, role, nil
	}
	return "", "", nil
}

// swarmRole reads an engine's answer to GET /swarm (Docker 20.10's words): a manager answers
// it; a worker and a node in no swarm are refused it each with its own message. ok false for
// any other answer (locked, a manager without a leader, an engine that words it otherwise).
func swarmRole(status int, body []byte) (role string, ok bool) {
	if status == http.StatusOK {
		return "manager", true
	}
	var e struct{ Message string }
	if status != http.StatusServiceUnavailable || json.Unmarshal(body, &e) != nil {
		return "", false
	}
	switch {
	case strings.Contains(e.Message, "Worker nodes can't be used"):
		return "worker", true
	case strings.Contains(e.Message, `Use "docker swarm init" or "docker swarm join"`):
		return "", true
	}
	return "", false
}

// SortNatural orders machine names as docker-machine's ls did: ignoring case, and runs of digits
// by their value (web2 before web10).
func SortNatural(names []string) {
	slices.SortStableFunc(names, func(a, b string) int { return naturalCompare(strings.ToLower(a), strings.ToLower(b)) })
}

func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitsPrefix(a), digitsPrefix(b)
		if da != "" && db != "" {
			na, nb := strings.TrimLeft(da, "0"), strings.TrimLeft(db, "0")
			if c := cmp.Compare(len(na), len(nb)); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digitsPrefix(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}
