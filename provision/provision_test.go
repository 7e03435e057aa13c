package provision

import (
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/machine-tools/machine/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestParseOSReleaseFromRealFiles(t *testing.T) {
	want := map[string]struct {
		id      string
		family  Family
		version string
	}{
		"debian-12":    {"debian", Debian, "12"},
		"ubuntu-22.04": {"ubuntu", Debian, "22.04"},
		"centos-7":     {"centos", RHEL, "7"},
		"rocky-9":      {"rocky", RHEL, "9.3"},
		"almalinux-9":  {"almalinux", RHEL, "9.4"},
		"rhel-8":       {"rhel", RHEL, "8.9"},
		"fedora-40":    {"fedora", Fedora, "40"},
		"alpine-3.20":  {"alpine", Alpine, "3.20.0"},
	}
	for file, w := range want {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "os-release", file))
		if err != nil {
			t.Fatal(err)
		}
		info, err := ParseOSRelease(string(b))
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if info.ID != w.id || info.Family != w.family || info.VersionID != w.version {
			t.Errorf("%s: got %+v, want %+v", file, info, w)
		}
		if _, err := InstallCommands(info); err != nil && info.Family != RHEL {
			t.Errorf("%s: no install commands: %v", file, err)
		}
	}
	for _, file := range []string{"opensuse-leap-15.5", "arch"} {
		b, _ := os.ReadFile(filepath.Join("..", "testdata", "os-release", file))
		_, err := ParseOSRelease(string(b))
		var u *UnsupportedOSError
		if !errors.As(err, &u) {
			t.Fatalf("%s: want UnsupportedOSError, got %v", file, err)
		}
		if !strings.Contains(err.Error(), u.Info.PrettyName) || !strings.Contains(err.Error(), "--engine-install-url") {
			t.Errorf("%s: the error should say what was found and the way out: %v", file, err)
		}
	}
	if _, err := ParseOSRelease("NAME=x\n"); err == nil {
		t.Error("os-release without ID accepted")
	}
}

func TestInstallCommands(t *testing.T) {
	cmds, _ := InstallCommands(OSInfo{ID: "debian", Family: Debian})
	if got := strings.Join(cmds[len(cmds)-1], " "); !strings.Contains(got, "apt-get install") || !strings.Contains(got, "docker.io") {
		t.Errorf("debian installs with %q", got)
	}
	if _, err := InstallCommands(OSInfo{ID: "rocky", Family: RHEL, VersionID: "9.3", PrettyName: "Rocky Linux 9.3"}); err == nil || !strings.Contains(err.Error(), "--engine-install-url") {
		t.Errorf("rocky 9 has no distribution package: want a pointer to --engine-install-url, got %v", err)
	}
}

func spec() Spec {
	return Spec{
		DriverName: "generic",
		Engine: store.EngineOptions{
			Opts:               []string{"log-level=debug", "--max-concurrent-downloads=6"},
			Labels:             []string{"env=ci"},
			InsecureRegistries: []string{"reg.lab:5000"},
			RegistryMirrors:    []string{"https://mirror.lab"},
			StorageDriver:      "overlay2",
			Env:                []string{"HTTP_PROXY=http://proxy.lab:3128", "NO_PROXY=a b"},
			Port:               2376,
		},
		CACert: []byte("ca"), ServerCert: []byte("cert"), ServerKey: []byte("key"),
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		_ = os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update once)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs:\n got:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestDaemonConfigMergesAndOwnsItsKeys(t *testing.T) {
	facts := HostFacts{Init: Systemd, DockerdPath: "/usr/sbin/dockerd", SocketUnit: true, ContainerdSock: "/run/containerd/containerd.sock",
		DaemonJSON: []byte(`{"hosts":["tcp://0.0.0.0:2375"],"log-driver":"journald","tlsverify":false}`)}
	b, err := DaemonConfig(facts.DaemonJSON, facts, spec())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "daemon.json", b)
	s := string(b)
	if strings.Contains(s, "2375") || !strings.Contains(s, `"log-driver": "journald"`) {
		t.Errorf("the user's own keys must stay and the provisioner's replace theirs:\n%s", s)
	}
	if _, err := DaemonConfig([]byte("{not json"), facts, spec()); err == nil || !strings.Contains(err.Error(), "daemon.json") {
		t.Errorf("a broken daemon.json must be named: %v", err)
	}
	// A host with IPv6 (the facts script saw /proc/net/if_inet6): [::] serves both families;
	// 0.0.0.0 would be IPv4 only.
	facts.IPv6 = true
	if b, _ := DaemonConfig(nil, facts, spec()); !strings.Contains(string(b), `"tcp://[::]:2376"`) || strings.Contains(string(b), "0.0.0.0") {
		t.Errorf("an IPv6 host's engine should listen on [::]:\n%s", b)
	}
}

func TestSystemdUnit(t *testing.T) {
	u := SystemdUnit(HostFacts{Init: Systemd, DockerdPath: "/usr/sbin/dockerd"}, spec())
	golden(t, "10-machine.conf", u)
	if strings.Contains(string(u), " -H") {
		t.Error("the unit must not pass -H: listening addresses are in daemon.json")
	}
}

func TestOpenRC(t *testing.T) {
	golden(t, "conf.d-docker", OpenRCConfig(spec()))
}

func TestFilesModes(t *testing.T) {
	files, err := Files(HostFacts{Init: Systemd, DockerdPath: "/usr/bin/dockerd"}, spec())
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]uint32{}
	for _, f := range files {
		modes[f.Path] = f.Mode
	}
	if modes[ServerKeyPath] != 0o600 {
		t.Errorf("server key mode %o", modes[ServerKeyPath])
	}
	if _, ok := modes[SystemdDropIn]; !ok {
		t.Error("no systemd drop-in")
	}
}

// TestFactsScriptOnThisHost runs the facts script with a real sh (this machine: Debian with
// systemd absent as PID 1) and reads it back.
func TestFactsScriptOnThisHost(t *testing.T) {
	dj := filepath.Join(t.TempDir(), "daemon.json")
	if err := os.WriteFile(dj, []byte(`{"labels":["a=b"]}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", "-c", factsScript, "sh", dj).Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	f := ParseFacts(string(out))
	if osi, err := ParseOSRelease(f["os-release"]); err != nil || osi.ID == "" {
		t.Errorf("os-release section: %v %q", err, f["os-release"])
	}
	if strings.TrimSpace(f["daemon.json"]) != `{"labels":["a=b"]}` {
		t.Errorf("daemon.json section: %q", f["daemon.json"])
	}
	for _, k := range []string{"init", "dockerd", "socket-unit", "enabled", "containerd"} {
		if _, ok := f[k]; !ok {
			t.Errorf("no %s section in %q", k, out)
		}
	}
	// An unreadable daemon.json is an error, not an empty file.
	if err := os.Chmod(dj, 0); err == nil && os.Getuid() != 0 {
		if _, err := exec.Command("sh", "-c", factsScript, "sh", dj).Output(); err == nil {
			t.Error("an unreadable daemon.json passed")
		}
	}
}
