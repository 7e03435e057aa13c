package machine

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/docker/docker/client"
)

// TestPingState: an engine's version and swarm role from its /_ping headers, and from /swarm where
// /_ping does not name the role; an engine that says neither gives version "" (asked /info then).
// The answers were recorded from real engines: Debian's docker.io 26.1.5 (trixie; a Swarm
// header) and 20.10.24 (bookworm; none: /swarm answered by a manager, refused by a worker and by
// a node in no swarm, each in its own words); the locked and leaderless refusals are moby's
// own words for them (daemon/cluster/errors.go, swarmkit's raft).
func TestPingState(t *testing.T) {
	const (
		old       = "Docker/20.10.24+dfsg1 (linux)"
		noSwarm   = `{"message":"This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."}`
		worker    = `{"message":"This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager."}`
		manager   = `{"ID":"msub7ghwwef7nze021lf5xg3g","Version":{"Index":10},"CreatedAt":"2026-12-03T10:04:11.189649376Z"}`
		locked    = `{"message":"Swarm is encrypted and needs to be unlocked before it can be used. Please use \"docker swarm unlock\" to unlock it."}`
		noCluster = `{"message":"rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online."}`
	)
	for _, tc := range []struct {
		server, swarm string
		status        int // /swarm's answer
		body          string
		version, role string
	}{
		{"Docker/26.1.5+dfsg1 (linux)", "active/manager", 0, "", "26.1.5+dfsg1", "manager"},
		{"Docker/26.1.5+dfsg1 (linux)", "active/worker", 0, "", "26.1.5+dfsg1", "worker"},
		{"Docker/26.1.5+dfsg1 (linux)", "inactive", 0, "", "26.1.5+dfsg1", ""},
		{"Docker/26.1.5+dfsg1 (linux)", "locked", 0, "", "26.1.5+dfsg1", ""},
		{old, "", 200, manager, "20.10.24+dfsg1", "manager"},
		{old, "", 503, worker, "20.10.24+dfsg1", "worker"},
		{old, "", 503, noSwarm, "20.10.24+dfsg1", ""},
		{old, "", 503, locked, "", ""},
		{old, "", 503, noCluster, "", ""},
		{old, "", 404, `{"message":"page not found"}`, "", ""},
	} {
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/_ping":
				w.Header().Set("Server", tc.server)
				if tc.swarm != "" {
					w.Header().Set("Swarm", tc.swarm)
				}
				_, _ = w.Write([]byte("OK"))
			case "/swarm":
				if tc.status == 0 {
					t.Errorf("%q %q: /swarm asked", tc.server, tc.swarm)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body + "\n"))
			default:
				http.NotFound(w, r)
			}
		}))
		cli, err := client.NewClientWithOpts(client.WithHost("tcp://"+srv.Listener.Addr().String()), client.WithHTTPClient(srv.Client()))
		if err != nil {
			t.Fatal(err)
		}
		v, role, err := pingState(context.Background(), cli, "tcp://"+srv.Listener.Addr().String())
		if err != nil || v != tc.version || role != tc.role {
			t.Errorf("%q %q %d %s: %q %q %v", tc.server, tc.swarm, tc.status, tc.body, v, role, err)
		}
		srv.Close()
	}
}
