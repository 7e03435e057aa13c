package machine

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/docker/docker/client"
)

// TestPingState: an engine's version and swarm role from its /_ping headers; an engine that does
// not name its swarm role there (before API 1.40) gives no version (its /info is asked instead).
func TestPingState(t *testing.T) {
	for _, tc := range []struct{ server, swarm, version, role string }{
		{"Docker/20.10.24+dfsg1 (linux)", "active/manager", "20.10.24+dfsg1", "manager"},
		{"Docker/26.1.5 (linux)", "active/worker", "26.1.5", "worker"},
		{"Docker/26.1.5 (linux)", "inactive", "26.1.5", ""},
		{"Docker/26.1.5 (linux)", "locked", "26.1.5", ""},
		{"Docker/18.09.1 (linux)", "", "", ""},
	} {
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/_ping" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Server", tc.server)
			if tc.swarm != "" {
				w.Header().Set("Swarm", tc.swarm)
			}
			_, _ = w.Write([]byte("OK"))
		}))
		cli, err := client.NewClientWithOpts(client.WithHost("tcp://"+srv.Listener.Addr().String()), client.WithHTTPClient(srv.Client()))
		if err != nil {
			t.Fatal(err)
		}
		v, role, err := pingState(context.Background(), cli, "tcp://"+srv.Listener.Addr().String())
		if err != nil || v != tc.version || role != tc.role {
			t.Errorf("%q %q: %q %q %v", tc.server, tc.swarm, v, role, err)
		}
		srv.Close()
	}
}
