package drivers

import (
	"fmt"
	"strings"
)

// Registration ties a driver's name to its constructor.
type Registration struct {
	Name  string
	Usage string
	New   func() Driver
}

// Registry is an ordered list of drivers; the CLI fills it explicitly.
type Registry []Registration

// Get finds a driver by name.
func (r Registry) Get(name string) (Registration, error) {
	for _, reg := range r {
		if reg.Name == name {
			return reg, nil
		}
	}
	return Registration{}, fmt.Errorf("unknown driver %q: use one of %s (see `machine create --help`)", name, strings.Join(r.Names(), ", "))
}

// Names lists the drivers in order.
func (r Registry) Names() []string {
	var n []string
	for _, reg := range r {
		n = append(n, reg.Name)
	}
	return n
}
