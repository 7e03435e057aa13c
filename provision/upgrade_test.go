package provision

import (
	"testing"

	rt "github.com/machine-tools/machine/internal/runner/runnertest"
)

const (
	upgradedOut = "--- before\nDocker version 20.10.24+dfsg1, build 297e128\n--- package\ndocker.io\n--- after\nDocker version 20.10.25+dfsg1, build 5d7ba6c\n"
	newestOut   = "--- before\nDocker version 20.10.24+dfsg1, build 297e128\n--- package\ndocker.io\n--- after\nDocker version 20.10.24+dfsg1, build 297e128\n"
)

// TestUpgrade: a newer package restarts the engine; the newest already changes nothing (a strict
// fake fails on any restart).
func TestUpgrade(t *testing.T) {
	for _, tc := range []struct {
		out      string
		upgraded bool
	}{{upgradedOut, true}, {newestOut, false}} {
		f := fakeDebianHost(t, rt.New(t)).On("upgrade", rt.Contains("--only-upgrade"), rt.Output(tc.out))
		if tc.upgraded {
			f.On("restart", rt.Exactly("systemctl", "restart", "docker.service"), rt.Output(""))
		}
		res, err := (&Provisioner{R: f}).Upgrade(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if res.Upgraded != tc.upgraded || res.EngineRestored != tc.upgraded || res.Package != "docker.io" || res.Before == "" {
			t.Errorf("%+v", res)
		}
		if restarted := f.Received(rt.Prefix("systemctl", "restart")); restarted != tc.upgraded {
			t.Errorf("upgraded %v, restarted %v", tc.upgraded, restarted)
		}
	}
}
