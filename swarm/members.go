package swarm

import (
	"context"
	"fmt"
	"strings"

	"github.com/machine-tools/machine/machine"
)

// Members maps the swarm's nodes (as the manager lists them) to machines of the store, by
// address or host name.
func Members(ctx context.Context, a *machine.API, manager string) ([]string, error) {
	m, err := OpenNode(a, manager)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	rows, err := Status(ctx, m)
	if err != nil {
		return nil, err
	}
	all, err := a.Store.List()
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
	var names, missing []string
	for _, r := range rows {
		switch {
		case byAddr[r.Addr] != "":
			names = append(names, byAddr[r.Addr])
		case byName[r.Hostname]:
			names = append(names, r.Hostname)
		default:
			missing = append(missing, r.Hostname+" ("+r.Addr+")")
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("swarm nodes that are not machines of this store: %s: use --nodes", strings.Join(missing, ", "))
	}
	return names, nil
}
