package swarm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/machine-tools/machine/machine"
)

// members maps the swarm's nodes (as the manager lists them) to machines of the store, by
// address or host name.
func members(ctx context.Context, a *machine.API, manager string) ([]string, error) {
	m, err := OpenNode(a, manager)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	rows, err := Status(ctx, m)
	if err != nil {
		return nil, err
	}
	machineOf, err := machineFinder(a)
	if err != nil {
		return nil, err
	}
	var names, missing []string
	for _, r := range rows {
		if n := machineOf(r.Addr, r.Hostname); n != "" {
			names = append(names, n)
		} else {
			missing = append(missing, r.Hostname+" ("+r.Addr+")")
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("swarm nodes that are not machines of this store: %s: use --nodes", strings.Join(missing, ", "))
	}
	return names, nil
}

// machineFinder maps a swarm node (its address, or its host name) to the store's machine.
func machineFinder(a *machine.API) (func(addr, hostname string) string, error) {
	all, err := a.List()
	if err != nil {
		return nil, err
	}
	byAddr, byName := map[string]string{}, map[string]bool{}
	for _, n := range all {
		if h, err := a.Load(n); err == nil {
			byAddr[h.IP()] = n
			byName[n] = true
		}
	}
	return func(addr, hostname string) string {
		if n := byAddr[addr]; n != "" {
			return n
		}
		if byName[hostname] {
			return hostname
		}
		return ""
	}, nil
}

// findAnyManager looks among the store's machines, at once, for a manager that is not one of
// skip; "" when there is none.
func findAnyManager(ctx context.Context, a *machine.API, skip []string) string {
	all, err := a.List()
	if err != nil {
		return ""
	}
	all = slices.DeleteFunc(all, func(n string) bool { return slices.Contains(skip, n) })
	m := findManager(ctx, all, opener(a)) // sorted: the first manager by name
	if m == nil {
		return ""
	}
	m.Close()
	return m.Name
}

// OpenNodes opens the engines of the named machines; done closes them all.
func OpenNodes(a *machine.API, names []string) (nodes []*Node, done func(), err error) {
	done = func() {
		for _, n := range nodes {
			n.Close()
		}
	}
	for _, name := range names {
		n, err := OpenNode(a, name)
		if err != nil {
			done()
			return nil, nil, err
		}
		nodes = append(nodes, n)
	}
	return nodes, done, nil
}

// SelectNodes turns `--nodes a,b --nodes c` or `--swarm MANAGER` (one of them) into machine
// names.
func SelectNodes(ctx context.Context, a *machine.API, nodes []string, manager string) ([]string, error) {
	var names []string
	for _, v := range nodes {
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
	}
	switch {
	case len(names) > 0 && manager != "":
		return nil, errors.New("use --nodes or --swarm, not both")
	case len(names) > 0:
		return names, nil
	case manager == "":
		return nil, errors.New("name the machines with --nodes a,b,c or --swarm MANAGER")
	}
	return members(ctx, a, manager)
}

// JoinMachines joins the named machines to manager's swarm (Join over the store's machines).
func JoinMachines(ctx context.Context, a *machine.API, manager string, names []string, o JoinOptions) (map[string]string, error) {
	all, done, err := OpenNodes(a, append([]string{manager}, names...))
	if err != nil {
		return nil, err
	}
	defer done()
	return Join(ctx, all[0], all[1:], o)
}

// LeaveMachines takes the named machines out of their swarm; manager removes them from its
// node list (empty: a manager among the store's other machines, if one answers).
func LeaveMachines(ctx context.Context, a *machine.API, names []string, manager string) (map[string]string, error) {
	nodes, done, err := OpenNodes(a, names)
	if err != nil {
		return nil, err
	}
	defer done()
	if manager == "" {
		manager = findAnyManager(ctx, a, names)
	}
	var via *Node
	if manager != "" {
		m, mdone, err := OpenNodes(a, []string{manager})
		if err != nil {
			return nil, err
		}
		defer mdone()
		via = m[0]
	}
	return Leave(ctx, nodes, via)
}
