package swarm

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/machine-tools/machine/internal/store"
	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm/cluster"
)

// localNode is "this computer's" engine as a swarm node: DOCKER_HOST (with DOCKER_TLS_VERIFY and
// DOCKER_CERT_PATH), or the default socket.
func localNode(ctx context.Context) (*Node, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("the local engine: %w", err)
	}
	name := "local engine"
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		name = "local engine (" + h + ")"
	}
	n := &Node{Host: &machine.Host{Machine: &store.Machine{Name: name}}, Docker: cli}
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("%s does not answer: %w", name, err)
	}
	return n, nil
}

// localAdvertise is the address this computer's kernel uses to reach addr (no packet is sent),
// for an engine on this computer; "" (the engine chooses) for one reached over TCP.
func localAdvertise(addr string) string {
	if h := os.Getenv("DOCKER_HOST"); h != "" && !strings.HasPrefix(h, "unix://") {
		return ""
	}
	c, err := net.Dial("udp", addr)
	if err != nil {
		return ""
	}
	defer c.Close()
	ip, _, _ := net.SplitHostPort(c.LocalAddr().String())
	return ip
}

// JoinLocal joins the local engine to the manager's swarm (role worker or manager), advertising
// the address this computer uses to reach the manager, and waits until it is Ready. The token
// goes only from the manager's API to the local engine's.
func JoinLocal(ctx context.Context, a *machine.API, manager string, role cluster.Role) (string, error) {
	m, err := OpenNode(a, manager)
	if err != nil {
		return "", err
	}
	defer m.Close()
	mst, maddr, err := managerAddr(ctx, m)
	if err != nil {
		return "", err
	}
	l, err := localNode(ctx)
	if err != nil {
		return "", err
	}
	defer l.Close()
	st, err := l.Inspect(ctx)
	if err != nil {
		return "", err
	}
	if st.Active {
		if st.ClusterID == mst.ClusterID || nodeInSwarm(ctx, m, st.NodeID) {
			return fmt.Sprintf("already in this swarm (advertising %s)", st.Addr), nil
		}
		return "", fmt.Errorf("%s is in %s, not in %s's swarm: run `machine swarm leave --local` first", l.Name, st.swarmName(), m.Name)
	}
	token, err := JoinToken(ctx, m, role)
	if err != nil {
		return "", err
	}
	adv := localAdvertise(maddr)
	if err := l.Docker.SwarmJoin(ctx, swarm.JoinRequest{ListenAddr: listenFor(adv), AdvertiseAddr: adv, RemoteAddrs: []string{maddr}, JoinToken: token}); err != nil {
		return "", fmt.Errorf("%s: swarm join: %s", l.Name, redact(err.Error(), token))
	}
	if st, err = l.Inspect(ctx); err != nil {
		return "", err
	}
	if err := waitBack(ctx, m, l.Name, st.NodeID); err != nil {
		return "", err
	}
	return fmt.Sprintf("joined as %s (advertising %s)", role, st.Addr), nil
}

// LeaveLocal takes the local engine out of its swarm: demoted first through manager when it is a
// manager, then removed from manager's node list (manager "": the first manager found among the
// store's machines).
func LeaveLocal(ctx context.Context, a *machine.API, manager string) (string, error) {
	l, err := localNode(ctx)
	if err != nil {
		return "", err
	}
	defer l.Close()
	if manager == "" {
		manager = findAnyManager(ctx, a, nil)
	}
	var via *Node
	if manager != "" {
		if via, err = OpenNode(a, manager); err != nil {
			return "", err
		}
		defer via.Close()
	}
	res, err := Leave(ctx, []*Node{l}, via)
	return res[l.Name], err
}
