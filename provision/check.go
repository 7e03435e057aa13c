package provision

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/machine-tools/machine/internal/safetext"
	"github.com/machine-tools/machine/internal/store"
)

// The forms engine values must have before they reach a host's files: daemon.json, the systemd
// drop-in (docs/security.md, "Values that reach a host").
var (
	envName     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	optName     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]*$`)
	storageName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	// dockerd's own rule for a registry's host[:port] (a domain or an address).
	registryHost = regexp.MustCompile(`^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$`)
)

const storageRule = "a storage driver's name is lower-case letters, digits and hyphens (e.g. overlay2)"

// daemonKeyOpts are dockerd flags that daemon.json sets too (dockerd refuses a setting given
// both ways): an --engine-opt of one of these joins the machine's own values in daemon.json.
var daemonKeyOpts = map[string]bool{"label": true, "insecure-registry": true, "registry-mirror": true, "storage-driver": true}

// machineOpts are dockerd flags whose settings machine owns (the listeners and TLS).
var machineOpts = map[string]string{
	"H": "--engine-port", "host": "--engine-port", "tls": "", "tlsverify": "", "tlscacert": "",
	"tlscert": "", "tlskey": "", "containerd": "",
}

// splitOpt reads an --engine-opt value: "log-level=debug", "--ipv6", "label=a=b".
func splitOpt(o string) (name, value string, hasValue bool) {
	return strings.Cut(strings.TrimLeft(o, "-"), "=")
}

// CheckEngine refuses engine values that could not reach the host as written: anything with a
// control character (a newline in a systemd unit starts a directive of its own), environment
// names systemd refuses, options machine sets itself, and values dockerd would refuse after the
// host was made. name(option) is how an error names the option ("--engine-env", "engine.env").
// Each error is one line with the value, the rule and the fix.
func CheckEngine(e store.EngineOptions, name func(string) string) error {
	if name == nil {
		name = func(s string) string { return s }
	}
	var errs []error
	bad := func(opt, v, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s %q: %s", name(opt), v, fmt.Sprintf(format, a...)))
	}
	// oneLine refuses control characters; true when the value may be looked at further.
	oneLine := func(opt, v string) bool {
		if c, found := safetext.FirstUnsafe(v); found {
			bad(opt, v, "%s is not allowed: a value must be one line of printable text", c)
			return false
		}
		return true
	}
	for _, kv := range e.Env {
		if !oneLine("env", kv) {
			continue
		}
		k, _, ok := strings.Cut(kv, "=")
		if !ok || !envName.MatchString(k) {
			bad("env", kv, "give NAME=value, NAME made of letters, digits and _ (not starting with a digit)")
		}
	}
	storage := e.StorageDriver
	labels := map[string]string{}
	checkLabel := func(opt, l string) {
		k, v, ok := strings.Cut(l, "=")
		switch {
		case !ok || k == "":
			bad(opt, l, "give key=value")
		case k == "provider":
			bad(opt, l, "provider is the label machine sets to the driver's name: use another key")
		case labels[k] != "" && labels[k] != v:
			bad(opt, l, "the label %s is given twice with different values (%q): dockerd refuses that", k, labels[k])
		default:
			labels[k] = v
		}
	}
	for _, l := range e.Labels {
		if oneLine("label", l) {
			checkLabel("label", l)
		}
	}
	for _, r := range e.InsecureRegistries {
		if oneLine("insecure-registry", r) {
			if err := checkInsecureRegistry(r); err != nil {
				bad("insecure-registry", r, "%v", err)
			}
		}
	}
	for _, m := range e.RegistryMirrors {
		if oneLine("registry-mirror", m) {
			if err := checkMirror(m); err != nil {
				bad("registry-mirror", m, "%v", err)
			}
		}
	}
	for _, o := range e.Opts {
		if !oneLine("opt", o) {
			continue
		}
		k, v, _ := splitOpt(o)
		if fix, owned := machineOpts[k]; owned {
			if fix == "" {
				fix = "machine configures the engine's TLS itself"
			} else {
				fix = "machine sets the engine's listeners: use " + fix
			}
			bad("opt", o, "%s is machine's to set (%s)", k, fix)
			continue
		}
		if !optName.MatchString(k) {
			bad("opt", o, "give a dockerd flag as name=value or name, e.g. log-level=debug")
			continue
		}
		switch k {
		case "label":
			checkLabel("opt", v)
		case "insecure-registry":
			if err := checkInsecureRegistry(v); err != nil {
				bad("opt", o, "%v", err)
			}
		case "registry-mirror":
			if err := checkMirror(v); err != nil {
				bad("opt", o, "%v", err)
			}
		case "storage-driver":
			if storage != "" && storage != v {
				bad("opt", o, "the storage driver is also given as %q: give it once", storage)
			} else if !storageName.MatchString(v) {
				bad("opt", o, storageRule)
			}
			storage = v
		}
	}
	if e.StorageDriver != "" && oneLine("storage-driver", e.StorageDriver) && !storageName.MatchString(e.StorageDriver) {
		bad("storage-driver", e.StorageDriver, storageRule)
	}
	if e.InstallURL != "" && oneLine("install-url", e.InstallURL) {
		if u, err := url.Parse(e.InstallURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("install-url", e.InstallURL, "give an http:// or https:// URL of a script")
		}
	}
	if e.VersionMin != "" {
		oneLine("version-min", e.VersionMin)
	}
	for hp := range e.RegistryCAs {
		oneLine("registry-ca", hp)
	}
	return errors.Join(errs...)
}

// checkInsecureRegistry is dockerd's rule: a CIDR, or host[:port] (an http:// or https:// in
// front is dropped, as dockerd does).
func checkInsecureRegistry(r string) error {
	s := r
	for _, p := range []string{"http://", "https://"} {
		if strings.HasPrefix(strings.ToLower(s), p) {
			s = s[len(p):]
		}
	}
	if strings.Contains(s, "://") {
		return errors.New("give host:port or a CIDR, without a scheme")
	}
	if _, _, err := net.ParseCIDR(s); err == nil {
		return nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = s, ""
	}
	if !registryHost.MatchString(s) && net.ParseIP(host) == nil {
		return errors.New("give host:port (a domain or an address) or a CIDR, e.g. registry.local:5000 or 10.0.0.0/8")
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return errors.New("the port must be a number from 0 to 65535")
		}
	}
	return nil
}

// checkMirror is dockerd's rule for a registry mirror: an http or https URL without path, query,
// fragment or credentials.
func checkMirror(m string) error {
	u, err := url.Parse(m)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return errors.New("give an http:// or https:// URL, e.g. https://mirror.example.com")
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return errors.New("a mirror is a URL without a path, query or fragment")
	case u.User != nil:
		return errors.New("a mirror's URL may not hold credentials: use machine's registry login")
	}
	return nil
}

// Effective moves --engine-opt values that daemon.json sets too (label, insecure-registry,
// registry-mirror, storage-driver) into the fields daemon.json is written from.
func Effective(e store.EngineOptions) store.EngineOptions {
	out := e
	out.Opts = nil
	out.Labels = append([]string(nil), e.Labels...)
	out.InsecureRegistries = append([]string(nil), e.InsecureRegistries...)
	out.RegistryMirrors = append([]string(nil), e.RegistryMirrors...)
	for _, o := range e.Opts {
		k, v, _ := splitOpt(o)
		if !daemonKeyOpts[k] {
			out.Opts = append(out.Opts, o)
			continue
		}
		switch k {
		case "label":
			if !slices.Contains(out.Labels, v) {
				out.Labels = append(out.Labels, v)
			}
		case "insecure-registry":
			out.InsecureRegistries = append(out.InsecureRegistries, v)
		case "registry-mirror":
			out.RegistryMirrors = append(out.RegistryMirrors, v)
		case "storage-driver":
			out.StorageDriver = v
		}
	}
	return out
}
