package provision

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/machine-tools/machine/internal/runner"
	"github.com/machine-tools/machine/internal/store"
)

// Paths on the host.
const (
	DockerDir      = "/etc/docker"
	DaemonJSON     = "/etc/docker/daemon.json"
	CACertPath     = "/etc/docker/ca.pem"
	ServerCertPath = "/etc/docker/server.pem"
	ServerKeyPath  = "/etc/docker/server-key.pem"
	SystemdDropIn  = "/etc/systemd/system/docker.service.d/10-machine.conf"
	OpenRCConf     = "/etc/conf.d/docker"
)

// Init is the host's init system.
type Init string

// The init systems the provisioner configures.
const (
	Systemd Init = "systemd"
	OpenRC  Init = "openrc"
)

// HostFacts are what the provisioner learnt of a host before planning its configuration.
type HostFacts struct {
	Init           Init
	DockerdPath    string
	SocketUnit     bool   // docker.socket exists: dockerd listens on fd://
	Enabled        bool   // docker.service is enabled (systemd)
	ContainerdSock string // a system containerd's socket, when there is one
	DaemonJSON     []byte // the current /etc/docker/daemon.json, nil when absent
	IPv6           bool   // the host has IPv6: the engine listens on [::] (both families)
	// RestartPending: an earlier provision placed files and did not get to restart the engine
	// with them (interrupted, or its connection lost).
	RestartPending bool
	// Version is the installed engine's `dockerd --version` ("Docker version 26.1.5+dfsg1, ...").
	Version string
}

// ParseVersion reads the numbers of a version: "26.1.5+dfsg1", "Docker version 20.10.24+dfsg1,
// build 297e128", "24.0" (missing parts are 0).
func ParseVersion(s string) ([3]int, bool) {
	var v [3]int
	s = strings.TrimPrefix(strings.TrimSpace(s), "Docker version ")
	end := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if end >= 0 {
		s = s[:end]
	}
	parts := strings.Split(s, ".")
	if s == "" || len(parts) > 3 {
		return v, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return v, false
		}
		v[i] = n
	}
	return v, true
}

// OlderThan says whether the engine version have is older than min (both as ParseVersion reads).
func OlderThan(have, min string) bool {
	h, ok1 := ParseVersion(have)
	m, ok2 := ParseVersion(min)
	if !ok1 || !ok2 {
		return false
	}
	for i := range h {
		if h[i] != m[i] {
			return h[i] < m[i]
		}
	}
	return false
}

// RestartPending marks, on the host, files placed for an engine that has not been restarted
// with them yet: made before the first file is written, removed once the engine runs with them.
// A provision that finds it restarts the engine even when every file is already right.
const RestartPending = "/etc/docker/.machine-restart-pending"

// Spec is what the machine's engine must look like.
type Spec struct {
	Engine     store.EngineOptions
	DriverName string // becomes the engine label provider=NAME, as docker-machine did
	CACert     []byte
	ServerCert []byte
	ServerKey  []byte
	// AllowReload: when only options that dockerd reloads changed in daemon.json, the engine is
	// sent SIGHUP instead of being restarted (its containers keep running).
	AllowReload bool
}

// File is one file the provisioner places.
type File struct {
	Path string
	Data []byte
	Mode uint32
}

// ownedKeys are the daemon.json keys the provisioner sets; a user's other keys are kept.
var ownedKeys = []string{"hosts", "tls", "tlsverify", "tlscacert", "tlscert", "tlskey", "labels",
	"insecure-registries", "registry-mirrors", "storage-driver", "containerd"}

// DaemonConfig merges the machine's settings into an existing daemon.json (which may be nil).
// Every listening address is here and none is on dockerd's command line, so the two never clash.
func DaemonConfig(existing []byte, facts HostFacts, spec Spec) ([]byte, error) {
	cfg := map[string]any{}
	if len(bytes.TrimSpace(existing)) > 0 {
		if err := json.Unmarshal(existing, &cfg); err != nil {
			return nil, fmt.Errorf("%s on the host is not valid JSON (%v): fix or remove it, then run `machine provision` again", DaemonJSON, err)
		}
	}
	kept, _ := splitHosts(cfg["hosts"])
	for _, k := range ownedKeys {
		delete(cfg, k)
	}
	local := "unix:///var/run/docker.sock"
	if facts.SocketUnit {
		local = "fd://"
	}
	port := spec.Engine.Port
	if port == 0 {
		port = 2376
	}
	// tcp://0.0.0.0 is IPv4 only; [::] is both where the host has IPv6 (and fails where not).
	any := "0.0.0.0"
	if facts.IPv6 {
		any = "[::]"
	}
	hosts := []string{local, fmt.Sprintf("tcp://%s:%d", any, port)}
	for _, h := range kept {
		if h != local && h != "unix:///var/run/docker.sock" && h != "fd://" {
			hosts = append(hosts, h) // the admin's own unix sockets stay
		}
	}
	cfg["hosts"] = hosts
	cfg["tlsverify"] = true
	cfg["tlscacert"] = CACertPath
	cfg["tlscert"] = ServerCertPath
	cfg["tlskey"] = ServerKeyPath
	labels := append([]string{}, spec.Engine.Labels...)
	if spec.DriverName != "" {
		labels = append(labels, "provider="+spec.DriverName)
	}
	if len(labels) > 0 {
		cfg["labels"] = labels
	}
	if len(spec.Engine.InsecureRegistries) > 0 {
		cfg["insecure-registries"] = spec.Engine.InsecureRegistries
	}
	if len(spec.Engine.RegistryMirrors) > 0 {
		cfg["registry-mirrors"] = spec.Engine.RegistryMirrors
	}
	if spec.Engine.StorageDriver != "" {
		cfg["storage-driver"] = spec.Engine.StorageDriver
	}
	if facts.ContainerdSock != "" {
		cfg["containerd"] = facts.ContainerdSock
	}
	b, err := json.MarshalIndent(cfg, "", "  ") // map keys come out sorted: stable output
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// splitHosts sorts a daemon.json's "hosts" into unix sockets (kept) and the rest (TCP listeners,
// which the machine's TLS listener replaces).
func splitHosts(v any) (unix, other []string) {
	list, _ := v.([]any)
	for _, h := range list {
		s, ok := h.(string)
		if !ok {
			continue
		}
		if strings.HasPrefix(s, "unix://") || s == "fd://" {
			unix = append(unix, s)
		} else {
			other = append(other, s)
		}
	}
	return unix, other
}

// DroppedListeners are the listeners of an existing daemon.json that the machine's configuration
// does not keep: TCP (often without TLS) other than the machine's own port.
func DroppedListeners(existing []byte, port int) []string {
	var cfg map[string]any
	if json.Unmarshal(existing, &cfg) != nil {
		return nil
	}
	_, other := splitHosts(cfg["hosts"])
	var out []string
	for _, h := range other {
		if !strings.HasSuffix(h, fmt.Sprintf(":%d", port)) {
			out = append(out, h)
		}
	}
	return out
}

// EngineFlags turns --engine-opt values ("log-level=debug", "ipv6") into dockerd flags.
func EngineFlags(opts []string) []string {
	var flags []string
	for _, o := range opts {
		o = strings.TrimLeft(o, "-")
		if o == "" {
			continue
		}
		flags = append(flags, "--"+o)
	}
	return flags
}

// SystemdUnit is the drop-in that makes docker.service start dockerd with only the engine options
// (listening addresses and TLS are in daemon.json) and the engine's environment.
func SystemdUnit(facts HostFacts, spec Spec) []byte {
	var b strings.Builder
	b.WriteString("# Written by machine: the engine's TLS settings are in /etc/docker/daemon.json.\n[Service]\n")
	env := append([]string{}, spec.Engine.Env...)
	sort.Strings(env)
	for _, e := range env {
		b.WriteString("Environment=" + systemdQuote(e, false) + "\n")
	}
	b.WriteString("ExecStart=\n")
	argv := append([]string{facts.DockerdPath}, EngineFlags(spec.Engine.Opts)...)
	for i := range argv {
		argv[i] = systemdQuote(argv[i], true)
	}
	b.WriteString("ExecStart=" + strings.Join(argv, " ") + "\n")
	return []byte(b.String())
}

// OpenRCConfig is /etc/conf.d/docker for OpenRC hosts.
func OpenRCConfig(spec Spec) []byte {
	var b strings.Builder
	b.WriteString("# Written by machine: the engine's TLS settings are in /etc/docker/daemon.json.\n")
	for _, e := range spec.Engine.Env {
		k, v, _ := strings.Cut(e, "=")
		b.WriteString("export " + k + "=" + runner.Quote(v) + "\n")
	}
	b.WriteString("DOCKER_OPTS=" + runner.Quote(strings.Join(EngineFlags(spec.Engine.Opts), " ")) + "\n")
	return []byte(b.String())
}

// systemdQuote writes one word of a unit file so that systemd reads it back as s: in double
// quotes with C escapes for \ and ", specifiers (%) doubled, and, in an Exec line (exec),
// variable references ($) doubled too; Environment= takes $ as it is. s has no control
// characters (CheckEngine refused them).
func systemdQuote(s string, exec bool) string {
	special := " \t\"'\\%;"
	if exec {
		special += "$"
	}
	if s != "" && !strings.ContainsAny(s, special) {
		return s
	}
	pairs := []string{`\`, `\\`, `"`, `\"`, "%", "%%"}
	if exec {
		pairs = append(pairs, "$", "$$")
	}
	return `"` + strings.NewReplacer(pairs...).Replace(s) + `"`
}

// Files is the whole set of files the host must hold.
func Files(facts HostFacts, spec Spec) ([]File, error) {
	if err := CheckEngine(spec.Engine, func(o string) string { return "engine " + o }); err != nil {
		return nil, err
	}
	spec.Engine = Effective(spec.Engine)
	daemon, err := DaemonConfig(facts.DaemonJSON, facts, spec)
	if err != nil {
		return nil, err
	}
	files := []File{
		{Path: CACertPath, Data: spec.CACert, Mode: 0o644},
		{Path: ServerCertPath, Data: spec.ServerCert, Mode: 0o644},
		{Path: ServerKeyPath, Data: spec.ServerKey, Mode: 0o600},
		{Path: DaemonJSON, Data: daemon, Mode: 0o644},
	}
	for _, hp := range sortedKeys(spec.Engine.RegistryCAs) {
		files = append(files, File{Path: "/etc/docker/certs.d/" + hp + "/ca.crt", Data: []byte(spec.Engine.RegistryCAs[hp]), Mode: 0o644})
	}
	switch facts.Init {
	case Systemd:
		// 0600: the engine's environment may hold credentials (a proxy's password).
		files = append(files, File{Path: SystemdDropIn, Data: SystemdUnit(facts, spec), Mode: 0o600})
	case OpenRC:
		files = append(files, File{Path: OpenRCConf, Data: OpenRCConfig(spec), Mode: 0o600})
	}
	return files, nil
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
