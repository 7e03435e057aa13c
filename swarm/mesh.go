package swarm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"github.com/machine-tools/machine/internal/wait"
	"github.com/machine-tools/machine/swarm/cluster"
)

// settleIngress waits (10 s at most) until m lists no ingress network, 2 s after its removal at
// the earliest: the removal leaves the swarm's store at once, but a manager's engine may still
// make its own sandbox of the network in the next second, and list it until it is torn down
// again; a plan made then would see a routing mesh.
func settleIngress(ctx context.Context, m *Node, removed time.Time) error {
	if err := wait.Sleep(ctx, 2*time.Second-time.Since(removed)); err != nil {
		return err
	}
	err := wait.Until(ctx, 10*time.Second-time.Since(removed), 100*time.Millisecond, func(ctx context.Context) (bool, string, error) {
		i, err := ingressNetwork(ctx, m)
		return err != nil || i == nil, "", nil
	})
	if ctx.Err() != nil {
		return err
	}
	return nil // a timeout: the plan is made all the same
}

// ingressNetwork is the swarm's ingress network as m lists it (nil: none).
func ingressNetwork(ctx context.Context, m *Node) (*network.Summary, error) {
	list, err := m.Docker.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("driver", "overlay"))})
	if err != nil {
		return nil, err
	}
	for i := range list {
		if list[i].Ingress {
			return &list[i], nil
		}
	}
	return nil, nil
}

// ensureRoutingMesh makes the swarm's ingress network exist, or not. fresh: the swarm has just
// started, and its leader makes the ingress network shortly after: waited for (5 s at most) so
// that it is removed before any node joins.
// removed is when it was removed (zero: it was not).
func ensureRoutingMesh(ctx context.Context, m *Node, want, fresh bool, h UpOptions) (removed time.Time, err error) {
	var ingress *network.Summary
	err = wait.Until(ctx, 5*time.Second, 100*time.Millisecond, func(ctx context.Context) (bool, string, error) {
		var err error
		ingress, err = ingressNetwork(ctx, m)
		return ingress != nil || want || !fresh, "", err
	})
	var te *wait.TimeoutError
	if err != nil && !errors.As(err, &te) {
		return removed, err
	}
	switch {
	case want && ingress == nil:
		if _, err := m.Docker.NetworkCreate(ctx, "ingress", network.CreateOptions{Driver: "overlay", Ingress: true}); err != nil {
			return removed, fmt.Errorf("creating the ingress network: %w", err)
		}
		h.say(m.Name, "routing mesh on: ingress network created")
	case !want && ingress != nil:
		if err := m.Docker.NetworkRemove(ctx, ingress.ID); err != nil {
			return removed, fmt.Errorf("removing the ingress network (a service that publishes a port in ingress mode keeps it: publish with mode=host, or set swarm: {routing-mesh: true}): %w", err)
		}
		removed = time.Now()
		h.say(m.Name, "routing mesh off: ingress network removed (published ports need mode=host)")
	}
	return removed, nil
}

// ipvsPath is the kernel's IPVS table, there (in every network namespace) once the module is
// loaded.
var ipvsPath = "/proc/net/ip_vs"

// meshCannotWork says whether every node of c is a container host on this computer's engine
// (a unix socket) while this kernel has no IPVS loaded: the hosts' engines share this kernel and
// cannot load the module, and the routing mesh's virtual IPs need it (measured on this
// project's test machine: a published port in ingress mode does not answer).
func meshCannotWork(c *cluster.Cluster) bool {
	if c.ContainerNodes() != len(c.Nodes) {
		return false
	}
	for _, n := range c.Nodes {
		host := os.Getenv("MACHINE_CONTAINER_ENGINE_HOST")
		if v, ok := c.NodeOptions(n)["engine-host"]; ok {
			host = fmt.Sprint(v)
		}
		if host != "" && !strings.HasPrefix(host, "unix://") {
			return false
		}
	}
	_, err := os.Stat(ipvsPath)
	return len(c.Nodes) > 0 && errors.Is(err, fs.ErrNotExist)
}
