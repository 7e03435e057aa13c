package swarm

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"github.com/machine-tools/machine/swarm/cluster"
)

func ensureNetwork(ctx context.Context, m *Node, nw cluster.Network, h UpOptions) error {
	list, err := m.Docker.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", nw.Name))})
	if err != nil {
		return err
	}
	for _, x := range list {
		if x.Name == nw.Name {
			if x.Driver != "overlay" || x.Scope != "swarm" {
				return fmt.Errorf("a %s network named %q exists on %s: rename it or the cluster's network", x.Driver, nw.Name, m.Name)
			}
			h.say(m.Name, "network "+nw.Name+" exists")
			return nil
		}
	}
	opts := network.CreateOptions{Driver: "overlay", Attachable: nw.Attachable, Labels: map[string]string{"io.machine.cluster": "true"}}
	if nw.Subnet != "" {
		opts.IPAM = &network.IPAM{Config: []network.IPAMConfig{{Subnet: nw.Subnet}}}
	}
	if _, err := m.Docker.NetworkCreate(ctx, nw.Name, opts); err != nil {
		return err
	}
	h.say(m.Name, "network "+nw.Name+" created")
	return nil
}
