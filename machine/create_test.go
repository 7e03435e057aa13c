package machine

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/drivers/generic"
	"github.com/machine-tools/machine/internal/store"
)

// fakeDriver records what was asked of it; its host is at Addr (a closed port, so SSH never
// answers) unless told otherwise.
type fakeDriver struct {
	Addr      string `json:"Addr"`
	FailWith  string `json:"FailWith,omitempty"`
	mu        sync.Mutex
	created   bool
	removed   bool
	validated bool
}

var lastFake *fakeDriver

func (d *fakeDriver) DriverName() string { return "fake" }
func (d *fakeDriver) Validate(ctx context.Context, name string) error {
	d.validated = true
	return nil
}
func (d *fakeDriver) Create(ctx context.Context, spec drivers.CreateSpec) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.created = true
	if d.FailWith != "" {
		return errors.New(d.FailWith)
	}
	return nil
}
func (d *fakeDriver) Remove(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.removed = true
	return nil
}
func (d *fakeDriver) State(ctx context.Context) (drivers.State, error) { return drivers.Running, nil }
func (d *fakeDriver) Endpoint(ctx context.Context) (drivers.Endpoint, error) {
	host, port, _ := net.SplitHostPort(d.Addr)
	p := 0
	for _, c := range port {
		p = p*10 + int(c-'0')
	}
	return drivers.Endpoint{IP: host, SSHPort: p, SSHUser: "root"}, nil
}

func fakeRegistry(addr string) drivers.Registry {
	return drivers.Registry{{
		Name: "fake", New: func() drivers.Driver { lastFake = &fakeDriver{Addr: addr}; return lastFake },
		Options: []drivers.Option{
			{Name: "fail", Default: "", Set: drivers.Field(func(d *fakeDriver, v string) { d.FailWith = v })},
			{Name: "count", Default: 1},
		},
		SSHWait: 300 * time.Millisecond,
	}}
}

// closedPort is an address on loopback where nothing listens.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func openTest(t *testing.T, reg drivers.Registry) *API {
	a, err := Open(filepath.Join(t.TempDir(), "store"), WithDrivers(reg))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestFailedCreateRollsBack: a create that fails after the driver made its host removes the
// host and the record; one that fails in the driver's create does too.
func TestFailedCreateRollsBack(t *testing.T) {
	a := openTest(t, fakeRegistry(closedPort(t)))
	for _, opts := range []map[string]any{nil, {"fail": "disk full"}} {
		_, err := a.Create(t.Context(), "f1", CreateOptions{Driver: "fake", DriverOptions: opts})
		var pe *CreateError
		if !errors.As(err, &pe) || pe.Left || !strings.Contains(err.Error(), "nothing was left behind") {
			t.Fatalf("options %v: %v", opts, err)
		}
		if !lastFake.created || !lastFake.removed || !lastFake.validated {
			t.Fatalf("options %v: driver %+v", opts, lastFake)
		}
		if a.Exists("f1") {
			t.Fatalf("options %v: the record was left", opts)
		}
		if entries, _ := os.ReadDir(filepath.Join(a.Store.Root, "machines")); len(entries) != 0 {
			t.Fatalf("options %v: left %v", opts, entries)
		}
	}
}

// TestCreateRefusesBadOptions: an unknown option, a wrong type and a bad name are refused
// before the driver makes anything.
func TestCreateRefusesBadOptions(t *testing.T) {
	a := openTest(t, fakeRegistry(closedPort(t)))
	for opts, want := range map[string]map[string]any{
		`unknown option --fake-colour`:             {"colour": "red"},
		`--fake-count: give a whole number, not x`: {"count": "x"},
	} {
		lastFake = nil
		_, err := a.Create(t.Context(), "f2", CreateOptions{Driver: "fake", DriverOptions: want, OptionLabel: func(d, o string) string { return "--" + d + "-" + o }})
		if err == nil || !strings.Contains(err.Error(), opts) {
			t.Errorf("%v: %v", want, err)
		}
		if lastFake != nil && lastFake.created {
			t.Errorf("%v: the driver made a host", want)
		}
	}
	if _, err := a.Create(t.Context(), "-bad", CreateOptions{Driver: "fake"}); err == nil {
		t.Error("a bad name was accepted")
	}
	if _, err := a.Create(t.Context(), "f3", CreateOptions{Driver: "nosuch"}); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("unknown driver: %v", err)
	}
}

// TestRestartOfGenericHostHonoursCancel: restarting a generic host (a reboot over SSH) whose
// SSH does not answer returns within a second of Ctrl-C.
func TestRestartOfGenericHostHonoursCancel(t *testing.T) {
	a := openTest(t, drivers.Registry{generic.Registration()})
	h := &Host{Machine: &store.Machine{Name: "g1"}, Driver: &generic.Driver{IPAddress: "127.0.0.1", SSHPort: 1, SSHUser: "root"}, reg: generic.Registration(), api: a}
	h.DriverName = generic.Name
	h.SSH.Host, h.SSH.Port, h.SSH.User = "127.0.0.1", 1, "root"
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err := h.Do(ctx, OpRestart, nil)
	if err == nil || time.Since(start) > 1200*time.Millisecond {
		t.Fatalf("returned after %s: %v", time.Since(start), err)
	}
}

// TestEach: a result per name, in order; a machine that does not exist is its own error and
// does not stop the others; a cancelled context starts nothing.
func TestEach(t *testing.T) {
	a := openTest(t, fakeRegistry(closedPort(t)))
	if err := a.Store.Reserve(&store.Machine{Name: "m1", DriverName: "fake"}); err != nil {
		t.Fatal(err)
	}
	res := a.Each(t.Context(), []string{"nope", "m1"}, func(ctx context.Context, h *Host) (string, error) {
		return "did " + h.Name, nil
	})
	var nf *store.NotFoundError
	if len(res) != 2 || res[0].Name != "nope" || !errors.As(res[0].Err, &nf) || res[1].Name != "m1" || res[1].Note != "did m1" || res[1].Err != nil {
		t.Fatalf("Each = %+v", res)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ran := false
	res = a.Each(ctx, []string{"m1"}, func(context.Context, *Host) (string, error) { ran = true; return "", nil })
	if ran || !errors.Is(res[0].Err, context.Canceled) {
		t.Errorf("cancelled: ran=%v, %+v", ran, res)
	}
}
