// Package machine is the machine lifecycle as a Go API: a store of machines with its own CA,
// the drivers that make hosts, and what is done to a machine (create, provision, start, stop,
// restart, kill, remove) and with it (SSH, a TLS Docker client). The machine CLI is a thin layer
// over it, and Go programs (CI jobs, tests) build hosts and swarms with it the same way:
//
//	api, err := machine.Open(machine.DefaultStorePath())
//	h, err := api.Create(ctx, "n1", machine.CreateOptions{Driver: "container"})
//	defer api.Remove(context.WithoutCancel(ctx), "n1", true)
//	cli, err := h.Docker() // a client.APIClient over verified TLS
//
// The package swarm forms swarms of such machines; see docs/library.md.
package machine

import (
	"context"
	"io"
	"log/slog"

	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/drivers/container"
	"github.com/machine-tools/machine/drivers/generic"
	"github.com/machine-tools/machine/drivers/libvirt"
	"github.com/machine-tools/machine/drivers/none"
	"github.com/machine-tools/machine/drivers/virtualbox"
	"github.com/machine-tools/machine/internal/fanout"
	"github.com/machine-tools/machine/internal/store"
)

// API is a store of machines with the drivers that make them: what every operation shares.
type API struct {
	Store   *store.Store
	Drivers drivers.Registry
	Log     *slog.Logger
}

// log is the API's logger; an API made without Open logs nothing.
func (a *API) log() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return a.Log
}

// OpenOption tunes Open.
type OpenOption func(*API)

// WithLogger logs to l (default: nothing below warnings, to stderr's usual place: discarded).
func WithLogger(l *slog.Logger) OpenOption { return func(a *API) { a.Log = l } }

// WithDrivers replaces the built-in drivers (tests register fakes).
func WithDrivers(r drivers.Registry) OpenOption { return func(a *API) { a.Drivers = r } }

// Open opens (making it when missing) the store at path, with its CA, and the built-in drivers.
func Open(path string, opts ...OpenOption) (*API, error) {
	st, err := store.Open(path)
	if err != nil {
		return nil, err
	}
	a := &API{Store: st, Drivers: Drivers(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, o := range opts {
		o(a)
	}
	return a, nil
}

// DefaultStorePath is where the CLI keeps machines: $MACHINE_STORAGE_PATH, or ~/.machine.
func DefaultStorePath() string { return store.DefaultRoot() }

// Drivers lists the built-in drivers, in the order help shows them.
func Drivers() drivers.Registry {
	return drivers.Registry{container.Registration(), generic.Registration(), libvirt.Registration(), virtualbox.Registration(), none.Registration()}
}

// List names the machines of the store, sorted.
func (a *API) List() ([]string, error) { return a.Store.List() }

// Exists says whether the store has a machine of that name.
func (a *API) Exists(name string) bool { return a.Store.Exists(name) }

// Result is what was done to one machine: a note for its user, or the error.
type Result struct {
	Name, Note string
	Err        error
}

// Each runs f on every named machine at once and returns a result per
// name, in their order; a machine not started before ctx ended has ctx's error.
func (a *API) Each(ctx context.Context, names []string, f func(ctx context.Context, h *Host) (string, error)) []Result {
	notes, errs := fanout.Map(ctx, names, 0, func(ctx context.Context, n string) (string, error) {
		h, err := a.Load(n)
		if err != nil {
			return "", err
		}
		return f(ctx, h)
	})
	out := make([]Result, len(names))
	for i, n := range names {
		out[i] = Result{Name: n, Note: notes[i], Err: errs[i]}
	}
	return out
}
