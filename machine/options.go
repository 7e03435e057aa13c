package machine

import (
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/internal/imagecache"
	"github.com/machine-tools/machine/internal/store"
	"github.com/machine-tools/machine/provision"
)

// EngineOptions configure a machine's Docker engine (daemon.json, the systemd drop-in, the
// registry CAs).
type EngineOptions = store.EngineOptions

// DownloadProgress wraps an image download's body to show its progress (size may be -1).
type DownloadProgress = imagecache.Progress

// EngineOption is one engine option: --engine-NAME on the command line, NAME under a cluster
// file's engine.
type EngineOption = drivers.Opt[EngineOptions]

// EngineOptionTable lists the engine's options, declared once for the CLI and cluster files.
func EngineOptionTable() []EngineOption {
	list := func(set func(e *EngineOptions, v []string)) func(*EngineOptions, any) error {
		return drivers.Setter(set)
	}
	return []EngineOption{
		{Name: "install-url", EnvVar: "MACHINE_DOCKER_INSTALL_URL", Default: "", Usage: "a script that installs Docker (default: the distribution's own packages)",
			Set: drivers.Setter(func(e *EngineOptions, v string) { e.InstallURL = v })},
		{Name: "opt", Default: []string(nil), Usage: "a dockerd flag, as key=value (repeatable)",
			Set: list(func(e *EngineOptions, v []string) { e.Opts = v })},
		{Name: "insecure-registry", Default: []string(nil), Usage: "a registry the engine may reach without TLS verification (repeatable)",
			Set: list(func(e *EngineOptions, v []string) { e.InsecureRegistries = v })},
		{Name: "registry-mirror", EnvVar: "ENGINE_REGISTRY_MIRROR", Default: []string(nil), Usage: "a registry mirror (repeatable; ENGINE_REGISTRY_MIRROR: comma-separated)",
			Set: list(func(e *EngineOptions, v []string) { e.RegistryMirrors = v })},
		{Name: "label", Default: []string(nil), Usage: "an engine label, key=value (repeatable)",
			Set: list(func(e *EngineOptions, v []string) { e.Labels = v })},
		{Name: "version-min", Default: "", Usage: "refuse a host whose engine is older than this version (e.g. 24.0), before anything on it is changed",
			Set: func(e *EngineOptions, v any) error {
				e.VersionMin = v.(string)
				if e.VersionMin == "" {
					return nil
				}
				if _, ok := provision.ParseVersion(e.VersionMin); !ok {
					return fmt.Errorf("the engine version minimum %q (version-min) is not a version: give numbers, e.g. 24.0 or 20.10.24", e.VersionMin)
				}
				return nil
			}},
		{Name: "storage-driver", Default: "", Usage: "the engine's storage driver",
			Set: drivers.Setter(func(e *EngineOptions, v string) { e.StorageDriver = v })},
		{Name: "env", Default: []string(nil), Usage: "an environment variable for dockerd, KEY=value (repeatable)",
			Set: list(func(e *EngineOptions, v []string) { e.Env = v })},
		{Name: "registry-ca", Default: []string(nil), Usage: "HOST:PORT=FILE: trust FILE as the CA of that registry (repeatable)",
			Set: func(e *EngineOptions, v any) error {
				cas, err := registryCAs(v.([]string))
				e.RegistryCAs = cas
				return err
			}},
	}
}

// ParseEngineOptions turns engine options by name (a cluster file's engine section, or the
// CLI's --engine-* flags without the prefix) into EngineOptions; label names an option in
// errors.
func ParseEngineOptions(given map[string]any, label func(string) string) (EngineOptions, error) {
	var e EngineOptions
	if err := drivers.Apply(EngineOptionTable(), &e, given, label); err != nil {
		return e, err
	}
	// The values, for where they go on the host (before anything is made).
	return e, provision.CheckEngine(e, label)
}

// registryCAs reads --engine-registry-ca HOST:PORT=FILE values.
func registryCAs(vals []string) (map[string]string, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, v := range vals {
		hp, file, ok := strings.Cut(v, "=")
		if _, _, err := net.SplitHostPort(hp); !ok || err != nil || strings.ContainsAny(hp, "/ ") {
			return nil, fmt.Errorf("--engine-registry-ca %q: use HOST:PORT=FILE, e.g. reg.example.com:5000=ca.pem", v)
		}
		b, err := os.ReadFile(drivers.ExpandHome(file))
		if err != nil {
			return nil, fmt.Errorf("--engine-registry-ca %s: %w", hp, err)
		}
		if block, _ := pem.Decode(b); block == nil || block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("--engine-registry-ca %s: %s holds no PEM certificate", hp, file)
		}
		out[hp] = string(b)
	}
	return out, nil
}
