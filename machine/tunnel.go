package machine

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"strconv"
	"sync"

	"github.com/machine-tools/machine/internal/sshclient"
)

// A machine behind jump hosts has an engine that only they reach. Machine's own Docker API
// calls go through the SSH chain (Host.Docker); the docker CLI goes through `machine tunnel`, a
// local forward on 127.0.0.1 that `machine env` and `machine context` point at (the engine's
// certificate names 127.0.0.1 too, so TLS is verified as usual).

// TunnelPort is the local port of the machine's tunnel: fixed per machine name, so that `env`
// and `tunnel` agree without a file between them.
func (h *Host) TunnelPort() int {
	f := fnv.New32a()
	f.Write([]byte(h.Name))
	return 23760 + int(f.Sum32()%10000)
}

// DockerHost is the DOCKER_HOST of the docker CLI: the engine's URL, or the tunnel's for a
// machine behind jump hosts.
func (h *Host) DockerHost() string {
	if len(h.SSH.Jumps) == 0 {
		return h.URL()
	}
	return "tcp://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(h.TunnelPort()))
}

// Tunnel forwards l's connections to the machine's engine through its jump hosts until ctx
// ends.
func (h *Host) Tunnel(ctx context.Context, l net.Listener) error {
	if len(h.SSH.Jumps) == 0 {
		return fmt.Errorf("machine %q has no jump hosts: its engine is reached directly at %s", h.Name, h.URL())
	}
	cfg := h.SSHConfig()
	engine := net.JoinHostPort(h.IP(), strconv.Itoa(h.EnginePort()))
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			r, err := sshclient.DialThrough(ctx, cfg, engine)
			if err != nil {
				h.api.log().Warn("tunnel: cannot reach the engine", "machine", h.Name, "err", err)
				return
			}
			defer r.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(r, c); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, r); done <- struct{}{} }()
			select {
			case <-done:
			case <-ctx.Done():
			}
		}()
	}
}

// ListenTunnel listens on the machine's tunnel port (TunnelPort) on 127.0.0.1.
func (h *Host) ListenTunnel() (net.Listener, error) {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(h.TunnelPort())))
	if err != nil {
		return nil, fmt.Errorf("the tunnel of %q listens on 127.0.0.1:%d: %w (is `machine tunnel %s` running already?)", h.Name, h.TunnelPort(), err, h.Name)
	}
	return l, nil
}
