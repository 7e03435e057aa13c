package provision

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/machine-tools/machine/internal/runner"
	rt "github.com/machine-tools/machine/internal/runner/runnertest"
	"github.com/machine-tools/machine/internal/store"
)

// The provisioner's mark of files placed for an engine not yet restarted with them: made with the
// folders, removed by the restart's own session.
var (
	restartCmd = rt.Exactly("sh", "-c", "systemctl restart docker.service && rm -f "+RestartPending)
	mark       = func(f *rt.Fake, _ []string, _ io.Reader) ([]byte, error) {
		f.Files[RestartPending] = nil
		return nil, nil
	}
	restarted = func(f *rt.Fake, _ []string, _ io.Reader) ([]byte, error) {
		delete(f.Files, RestartPending)
		return nil, nil
	}
)

// fakeDebianHost answers the provisioner's reads from the Fake's files, as a Debian 12 host with
// systemd and docker.io installed (the package enabled its service) would.
func fakeDebianHost(t *testing.T, f *rt.Fake) *rt.Fake {
	osr, err := os.ReadFile(filepath.Join("..", "testdata", "os-release", "debian-12"))
	if err != nil {
		t.Fatal(err)
	}
	facts := func(f *rt.Fake, _ []string, _ io.Reader) ([]byte, error) {
		dj, _ := f.File(DaemonJSON)
		pending := ""
		if _, ok := f.File(RestartPending); ok {
			pending = "yes"
		}
		return fmt.Appendf(nil, "--- os-release\n%s--- init\nsystemd\n--- dockerd\n/usr/sbin/dockerd\n--- socket-unit\nyes\n--- enabled\nyes\n--- containerd\nyes\n--- pending\n%s\n--- daemon.json\n%s", osr, pending, dj), nil
	}
	sums := func(f *rt.Fake, argv []string, _ io.Reader) ([]byte, error) {
		var b strings.Builder
		for _, p := range argv[4:] {
			if data, ok := f.File(p); ok {
				h := sha256.Sum256(data)
				mode, ok := f.Modes[p]
				if !ok {
					mode = 0o644 // placed by someone else
				}
				fmt.Fprintf(&b, "%o %s  %s\n", mode, hex.EncodeToString(h[:]), p)
			}
		}
		return []byte(b.String()), nil
	}
	return f.On("facts", rt.Contains("--- os-release"), facts).
		On("checksums", rt.Contains("sha256sum"), sums).
		On("is-active", rt.Exactly("systemctl", "is-active", "--quiet", "docker.service"), rt.Output(""))
}

// TestSecondRunChangesNothing: a first run places the files and restarts the engine; a second
// run, against a strict fake that fails on any write or restart, only reads.
func TestSecondRunChangesNothing(t *testing.T) {
	spec := Spec{Engine: store.EngineOptions{Port: 2376, Labels: []string{"zone=a"}, RegistryMirrors: []string{"https://mirror.example"}},
		DriverName: "generic", CACert: []byte("ca"), ServerCert: []byte("cert"), ServerKey: []byte("key")}
	first := fakeDebianHost(t, rt.New(t))
	first.AllowUpload = true
	first.On("mkdir", rt.Contains("mkdir -p"), mark).
		On("reload", rt.Exactly("sh", "-c", "systemctl daemon-reload"), rt.Output("")).
		On("restart", restartCmd, restarted)
	res, err := (&Provisioner{R: first}).Run(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Restarted || len(res.Changed) == 0 || !first.Received(restartCmd) {
		t.Fatalf("first run: %+v", res)
	}
	if dj, _ := first.File(DaemonJSON); !strings.Contains(string(dj), "mirror.example") {
		t.Fatalf("daemon.json %s", dj)
	}

	second := fakeDebianHost(t, rt.New(t)) // strict: no mkdir, upload, reload or restart rule
	second.Files, second.Modes = first.Files, first.Modes
	res, err = (&Provisioner{R: second}).Run(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if res.Restarted || len(res.Changed) > 0 || res.Installed || len(second.Uploads) > 0 {
		t.Fatalf("second run changed something: %+v, uploads %v", res, second.Uploads)
	}
	if len(second.Calls) != 3 {
		t.Errorf("second run ran %d commands, want 3 reads: %q", len(second.Calls), second.Calls)
	}
}

// TestInterruptedProvisionRestartsNextTime: a provision stopped after it placed the files but
// before the engine restarted with them (Ctrl-C, a lost connection) leaves its mark; the next
// provision finds every file right and still restarts the engine, then removes the mark.
func TestInterruptedProvisionRestartsNextTime(t *testing.T) {
	spec := Spec{Engine: store.EngineOptions{Port: 2376}, DriverName: "generic", CACert: []byte("ca"), ServerCert: []byte("cert"), ServerKey: []byte("key")}
	first := fakeDebianHost(t, rt.New(t))
	first.AllowUpload = true
	first.On("mkdir", rt.Contains("mkdir -p"), mark).
		On("reload", rt.Exactly("sh", "-c", "systemctl daemon-reload"), rt.Output("")).
		On("restart", restartCmd, func(*rt.Fake, []string, io.Reader) ([]byte, error) { return nil, io.ErrUnexpectedEOF })
	if _, err := (&Provisioner{R: first}).Run(t.Context(), spec); err == nil {
		t.Fatal("the restart failed, yet the provision did not")
	}
	if _, ok := first.File(RestartPending); !ok {
		t.Fatal("no mark left for the restart that did not happen")
	}
	second := fakeDebianHost(t, rt.New(t)) // strict: no upload rule
	second.Files, second.Modes = first.Files, first.Modes
	second.On("reload", rt.Exactly("sh", "-c", "systemctl daemon-reload"), rt.Output("")).
		On("restart", restartCmd, restarted)
	res, err := (&Provisioner{R: second}).Run(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Restarted || len(res.Changed) != 0 || len(second.Uploads) != 0 {
		t.Errorf("the provision after: %+v, uploads %v", res, second.Uploads)
	}
	if _, ok := second.File(RestartPending); ok {
		t.Error("the mark stayed after the restart")
	}
}

// TestReloadWhenOnlyReloadableOptionsChange: a new registry mirror reaches dockerd by SIGHUP
// (no restart: a strict fake fails on one); a new environment variable needs a restart.
func TestReloadWhenOnlyReloadableOptionsChange(t *testing.T) {
	spec := Spec{Engine: store.EngineOptions{Port: 2376}, DriverName: "generic", CACert: []byte("ca"), ServerCert: []byte("cert"), ServerKey: []byte("key"), AllowReload: true}
	first := fakeDebianHost(t, rt.New(t))
	first.AllowUpload = true
	first.On("mkdir", rt.Contains("mkdir -p"), mark).
		On("reload", rt.Exactly("sh", "-c", "systemctl daemon-reload"), rt.Output("")).
		On("restart", restartCmd, restarted)
	if _, err := (&Provisioner{R: first}).Run(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	mirror := spec
	mirror.Engine.RegistryMirrors = []string{"https://mirror.example"}
	f := fakeDebianHost(t, rt.New(t))
	f.Files, f.Modes, f.AllowUpload = first.Files, first.Modes, true
	f.On("mkdir", rt.Contains("mkdir -p"), mark).On("sighup", rt.Exactly("sh", "-c", "systemctl reload docker.service && rm -f "+RestartPending), restarted)
	res, err := (&Provisioner{R: f}).Run(t.Context(), mirror)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reloaded || res.Restarted || !f.Received(rt.Exactly("sh", "-c", "systemctl reload docker.service && rm -f "+RestartPending)) {
		t.Errorf("a mirror: %+v", res)
	}
	env := mirror
	env.Engine.Env = []string{"HTTP_PROXY=http://proxy:3128"}
	g := fakeDebianHost(t, rt.New(t))
	g.Files, g.Modes, g.AllowUpload = f.Files, f.Modes, true
	g.On("mkdir", rt.Contains("mkdir -p"), mark).
		On("reload", rt.Exactly("sh", "-c", "systemctl daemon-reload"), rt.Output("")).
		On("restart", restartCmd, restarted)
	res, err = (&Provisioner{R: g}).Run(t.Context(), env)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reloaded || !res.Restarted {
		t.Errorf("an environment variable: %+v", res)
	}
}

func TestReloadOnly(t *testing.T) {
	for _, tc := range []struct {
		old, new string
		want     bool
	}{
		{`{"labels":["a=1"],"tlsverify":true}`, `{"labels":["a=2"],"tlsverify":true}`, true},
		{`{"tlsverify":true}`, `{"registry-mirrors":["https://m"],"tlsverify":true}`, true},
		{`{"storage-driver":"overlay2"}`, `{"storage-driver":"vfs"}`, false},
		{`{"hosts":["fd://"]}`, `{"hosts":["unix:///var/run/docker.sock"]}`, false},
		{`not json`, `{}`, false},
	} {
		if got := ReloadOnly([]byte(tc.old), []byte(tc.new)); got != tc.want {
			t.Errorf("%s -> %s: %v", tc.old, tc.new, got)
		}
	}
}

// TestLostConnectionDuringRestart: sshd going away while the engine restarts is said as such,
// not blamed on the engine's configuration; a restart that systemctl reports failed is.
func TestLostConnectionDuringRestart(t *testing.T) {
	spec := Spec{Engine: store.EngineOptions{Port: 2376}, CACert: []byte("ca"), ServerCert: []byte("cert"), ServerKey: []byte("key")}
	// systemctl is-system-running prints the state and exits 1 for any but "running".
	state := func(s string) rt.Reply {
		return func(_ *rt.Fake, argv []string, _ io.Reader) ([]byte, error) {
			return []byte(s + "\n"), &runner.CommandError{Argv: argv, ExitCode: 1, Stdout: []byte(s + "\n")}
		}
	}
	for _, tc := range []struct {
		reply, system rt.Reply
		want          string
	}{
		{func(*rt.Fake, []string, io.Reader) ([]byte, error) { return nil, io.ErrUnexpectedEOF }, state("degraded"), "SSH connection to the host was lost"},
		{rt.Fail(1, "Job for docker.service failed"), state("degraded"), "dockerd did not start with the new configuration"},
		// The host stopped or removed meanwhile: not blamed on the engine's options.
		{rt.Fail(1, "Job for docker.service canceled"), state("stopping"), "the host began shutting down while its engine restarted"},
		{rt.Fail(1, "Job for docker.service canceled"), func(*rt.Fake, []string, io.Reader) ([]byte, error) { return nil, io.ErrUnexpectedEOF }, "the host began shutting down"},
	} {
		f := fakeDebianHost(t, rt.New(t))
		f.AllowUpload = true
		f.On("mkdir", rt.Contains("mkdir -p"), mark).
			On("reload", rt.Exactly("sh", "-c", "systemctl daemon-reload"), rt.Output("")).
			On("restart", restartCmd, tc.reply).
			On("journal", rt.Prefix("journalctl"), rt.Output("a log line")).
			On("system", rt.Exactly("systemctl", "is-system-running"), tc.system)
		_, err := (&Provisioner{R: f}).Run(t.Context(), spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want %q: %v", tc.want, err)
		}
	}
}

// TestRestartPastSystemdsStartLimit: docker.service allows 3 starts a minute; a fourth
// deliberate restart is refused by systemd (its words, recorded on Debian 12) and would leave the
// engine stopped: the count is cleared and the engine started.
func TestRestartPastSystemdsStartLimit(t *testing.T) {
	spec := Spec{Engine: store.EngineOptions{Port: 2376}, CACert: []byte("ca"), ServerCert: []byte("cert"), ServerKey: []byte("key")}
	f := fakeDebianHost(t, rt.New(t))
	f.AllowUpload = true
	f.On("mkdir", rt.Contains("mkdir -p"), mark).
		On("reload", rt.Exactly("sh", "-c", "systemctl daemon-reload"), rt.Output("")).
		On("restart", restartCmd,
			rt.Fail(1, "Job for docker.service failed because start of the service was attempted too often.\nSee \"systemctl status docker.service\" and \"journalctl -xeu docker.service\" for details.\nTo force a start use \"systemctl reset-failed docker.service\"\nfollowed by \"systemctl start docker.service\" again.\n")).
		On("reset", rt.Exactly("sh", "-c", "systemctl reset-failed docker.service && systemctl start docker.service && rm -f "+RestartPending), restarted)
	res, err := (&Provisioner{R: f}).Run(t.Context(), spec)
	if err != nil || !res.Restarted {
		t.Fatalf("%+v %v", res, err)
	}
}

// TestEngineFromElsewhere: on a host whose dockerd is off PATH (here /opt/moby, where the admin
// pointed docker.service) and whose docker.socket is masked (recorded from such a Debian 12
// host), the engine is found where the service runs it, not reinstalled; it is started from
// there and listens on the unix socket, not fd://. A minimum version above it is refused before
// anything is changed (a strict fake: no write, install or restart is allowed).
func TestEngineFromElsewhere(t *testing.T) {
	rec, err := os.ReadFile("testdata/facts-debian-12-opt-dockerd.txt")
	if err != nil {
		t.Fatal(err)
	}
	f := rt.New(t)
	f.On("facts", rt.Contains("--- os-release"), rt.Output(string(rec)))
	_, facts, err := (&Provisioner{R: f}).probe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if facts.DockerdPath != "/opt/moby/dockerd" || facts.SocketUnit || !strings.HasPrefix(facts.Version, "Docker version 20.10.24") {
		t.Fatalf("facts: %+v", facts)
	}
	spec := Spec{Engine: store.EngineOptions{Port: 2376}, CACert: []byte("ca"), ServerCert: []byte("cert"), ServerKey: []byte("key")}
	files, err := Files(facts, spec)
	if err != nil {
		t.Fatal(err)
	}
	if d := fileData(files, SystemdDropIn); !strings.Contains(string(d), "ExecStart=/opt/moby/dockerd\n") {
		t.Errorf("the drop-in does not start the engine where it is:\n%s", d)
	}
	if d := fileData(files, DaemonJSON); !strings.Contains(string(d), `"unix:///var/run/docker.sock"`) || strings.Contains(string(d), "fd://") {
		t.Errorf("daemon.json with the socket unit masked:\n%s", d)
	}
	spec.Engine.VersionMin = "24.0"
	_, err = (&Provisioner{R: f}).Run(t.Context(), spec)
	if err == nil || !strings.Contains(err.Error(), "20.10.24") || !strings.Contains(err.Error(), "older than the minimum 24.0") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("a minimum above the engine: %v", err)
	}
}

func TestOlderThan(t *testing.T) {
	for _, c := range []struct {
		have, min string
		want      bool
	}{
		{"Docker version 20.10.24+dfsg1, build 5d6db84", "24.0", true},
		{"26.1.5+dfsg1", "24.0", false},
		{"24.0.0", "24", false},
		{"20.10.24", "20.10.25", true},
		{"garbage", "24.0", false},
	} {
		if got := OlderThan(c.have, c.min); got != c.want {
			t.Errorf("OlderThan(%q, %q) = %v", c.have, c.min, got)
		}
	}
	if _, ok := ParseVersion("24.x"); ok {
		t.Error("24.x read as a version")
	}
}

// TestAdminsHosts: a daemon.json with its own "hosts" (an extra unix socket, a TCP listener
// without TLS): the unix socket stays, the plain TCP listener goes (and is named), the
// machine's TLS listener is added, the other keys are kept.
func TestAdminsHosts(t *testing.T) {
	old := []byte(`{"hosts":["unix:///var/run/docker.sock","unix:///run/ci/docker.sock","tcp://0.0.0.0:2375"],"log-level":"warn"}`)
	got, err := DaemonConfig(old, HostFacts{}, Spec{Engine: store.EngineOptions{Port: 2376}})
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(got, &cfg); err != nil {
		t.Fatal(err)
	}
	if h := fmt.Sprint(cfg["hosts"]); h != "[unix:///var/run/docker.sock tcp://0.0.0.0:2376 unix:///run/ci/docker.sock]" || cfg["log-level"] != "warn" {
		t.Errorf("daemon.json: %s", got)
	}
	if d := DroppedListeners(old, 2376); len(d) != 1 || d[0] != "tcp://0.0.0.0:2375" {
		t.Errorf("dropped: %v", d)
	}
	if d := DroppedListeners(got, 2376); len(d) != 0 {
		t.Errorf("the machine's own listener counted as dropped: %v", d)
	}
}
