// Package provision makes a host a Docker host over a runner (SSH): it detects the OS, installs
// the engine from the distribution's packages when it is missing, places the TLS material and
// the engine's configuration, and restarts dockerd only when that configuration changed.
// The planning functions (plan.go) are pure; Provisioner executes them.
package provision

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"reflect"
	"slices"
	"strings"

	"github.com/machine-tools/machine/internal/runner"
)

// Provisioner configures one host.
type Provisioner struct {
	R   runner.Runner
	Log *slog.Logger
	// Progress, when set, hears a short line at each step.
	Progress func(string)

	versionWanted string // "yes": the facts include the engine's version (a minimum is asked)
}

// Result says what provisioning found and did.
type Result struct {
	OS        OSInfo
	Init      Init
	Installed bool     // the engine was installed now
	Changed   []string // files written
	Restarted bool
	Reloaded  bool // only options dockerd reloads changed: it was sent SIGHUP, not restarted
}

func (p *Provisioner) step(msg string) {
	if p.Progress != nil {
		p.Progress(msg)
	}
	if p.Log != nil {
		p.Log.Debug(msg)
	}
}

func (p *Provisioner) out(ctx context.Context, argv ...string) (string, error) {
	b, err := p.R.Run(ctx, nil, argv...)
	return strings.TrimSpace(string(b)), err
}

// factsScript reports, in one SSH session, what the provisioner needs to know of a host: each
// section starts with a "--- NAME" line. $1 is the engine's daemon.json.
const factsScript = `PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
echo '--- os-release'; cat /etc/os-release || exit 3
echo '--- init'
if [ -d /run/systemd/system ]; then echo systemd
elif command -v openrc-run >/dev/null 2>&1 || command -v rc-service >/dev/null 2>&1; then echo openrc; fi
# dockerd on PATH, else the program the service runs: an engine of another source or place is
# configured, not reinstalled.
d=$(command -v dockerd) || { [ -d /run/systemd/system ] && p=$(systemctl show -p ExecStart --value docker.service 2>/dev/null | sed -n 's/.*path=\([^ ;]*\).*/\1/p' | head -n 1) && [ -x "$p" ] && d=$p; }
echo '--- dockerd'; [ -n "$d" ] && echo "$d"
echo '--- version'; [ -n "$2" ] && [ -n "$d" ] && "$d" --version 2>/dev/null # only when a minimum is asked: it starts dockerd's binary
# fd:// only where systemd hands dockerd the socket: the unit is loaded (not masked) and the service requires it or it is active.
echo '--- socket-unit'; [ -d /run/systemd/system ] && [ "$(systemctl show -p LoadState --value docker.socket 2>/dev/null)" = loaded ] && { systemctl show -p Requires --value docker.service 2>/dev/null | grep -qw docker.socket || systemctl is-active --quiet docker.socket; } && echo yes
echo '--- enabled'; [ -d /run/systemd/system ] && systemctl is-enabled --quiet docker.service 2>/dev/null && echo yes
echo '--- containerd'; [ -S /run/containerd/containerd.sock ] && echo yes
echo '--- ipv6'; [ -s /proc/net/if_inet6 ] && echo yes
echo '--- pending'; [ -e ` + RestartPending + ` ] && echo yes
echo '--- daemon.json'; if [ -f "$1" ]; then cat "$1" || exit 4; fi
exit 0`

// ParseFacts splits factsScript's output into its sections.
func ParseFacts(out string) map[string]string {
	m := map[string]string{}
	name := ""
	var cur []string
	flush := func() {
		if name != "" {
			m[name] = strings.Join(cur, "\n")
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if n, ok := strings.CutPrefix(line, "--- "); ok && !strings.Contains(n, " ") {
			flush()
			name, cur = n, nil
			continue
		}
		cur = append(cur, line)
	}
	flush()
	return m
}

// probe learns the host's OS, init system and engine set-up in one SSH session.
func (p *Provisioner) probe(ctx context.Context) (OSInfo, HostFacts, error) {
	b, err := p.R.Run(ctx, nil, "sh", "-c", factsScript, "sh", DaemonJSON, p.versionWanted)
	if err != nil {
		return OSInfo{}, HostFacts{}, fmt.Errorf("reading the host's facts (/etc/os-release, %s): %w", DaemonJSON, err)
	}
	f := ParseFacts(string(b))
	osi, err := ParseOSRelease(f["os-release"])
	if err != nil {
		return OSInfo{}, HostFacts{}, err
	}
	facts := HostFacts{
		DockerdPath: strings.TrimSpace(f["dockerd"]),
		SocketUnit:  strings.TrimSpace(f["socket-unit"]) == "yes",
		Enabled:     strings.TrimSpace(f["enabled"]) == "yes",
		IPv6:        strings.TrimSpace(f["ipv6"]) == "yes",

		RestartPending: strings.TrimSpace(f["pending"]) == "yes",
		Version:        strings.TrimSpace(f["version"]),
	}
	switch strings.TrimSpace(f["init"]) {
	case "systemd":
		facts.Init = Systemd
	case "openrc":
		facts.Init = OpenRC
	default:
		return OSInfo{}, HostFacts{}, errors.New("the host runs neither systemd nor OpenRC: the provisioner cannot manage its Docker service")
	}
	if strings.TrimSpace(f["containerd"]) == "yes" {
		facts.ContainerdSock = "/run/containerd/containerd.sock"
	}
	if dj := strings.TrimSpace(f["daemon.json"]); dj != "" {
		facts.DaemonJSON = []byte(dj + "\n")
	}
	return osi, facts, nil
}

// Run provisions the host to match spec.
func (p *Provisioner) Run(ctx context.Context, spec Spec) (*Result, error) {
	res := &Result{}
	if spec.Engine.VersionMin != "" {
		p.versionWanted = "yes"
	}
	p.step("detecting the operating system")
	osi, facts, err := p.probe(ctx)
	if err != nil {
		return nil, err
	}
	res.OS, res.Init = osi, facts.Init
	if err := versionMin(facts, spec); err != nil {
		return nil, err
	}
	if facts.DockerdPath == "" {
		p.step(fmt.Sprintf("installing Docker (%s)", osi.PrettyName))
		if err := p.install(ctx, osi, spec.Engine.InstallURL); err != nil {
			return nil, err
		}
		res.Installed = true
		if _, facts, err = p.probe(ctx); err != nil {
			return nil, err
		}
		if facts.DockerdPath == "" {
			return nil, errors.New("Docker's engine was installed but dockerd is not on the host's PATH")
		}
		if err := versionMin(facts, spec); err != nil {
			return nil, err
		}
	}
	files, err := Files(facts, spec)
	if err != nil {
		return nil, err
	}
	port := cmp.Or(spec.Engine.Port, 2376)
	for _, l := range DroppedListeners(facts.DaemonJSON, port) {
		p.step(fmt.Sprintf("the engine listened on %s (daemon.json): that listener goes, the engine is reached with TLS on %d", l, port))
	}
	p.step("configuring the engine for TLS")
	changed, err := p.place(ctx, files)
	if err != nil {
		return nil, err
	}
	res.Changed = changed
	if facts.RestartPending && len(changed) == 0 {
		p.step("an earlier provision did not get to restart the engine: restarting it now")
	}
	if spec.AllowReload && facts.Init == Systemd && !res.Installed && !facts.RestartPending && len(changed) == 1 && changed[0] == DaemonJSON && ReloadOnly(facts.DaemonJSON, fileData(files, DaemonJSON)) {
		p.step("reloading the engine's configuration (SIGHUP: no restart)")
		if _, err := p.R.Run(ctx, nil, "sh", "-c", "systemctl reload docker.service && rm -f "+RestartPending); err != nil {
			return nil, fmt.Errorf("reloading the engine: %w", err)
		}
		res.Reloaded = true
		return res, nil
	}
	restart := len(changed) > 0 || res.Installed || facts.RestartPending
	if err := p.service(ctx, res, restart, facts.Enabled, res.Installed || slices.Contains(changed, SystemdDropIn) || facts.RestartPending); err != nil {
		return nil, err
	}
	return res, nil
}

func fileData(files []File, path string) []byte {
	for _, f := range files {
		if f.Path == path {
			return f.Data
		}
	}
	return nil
}

// reloadable are the daemon.json keys dockerd applies on SIGHUP (its documented list).
var reloadable = map[string]bool{
	"debug": true, "labels": true, "live-restore": true, "max-concurrent-downloads": true,
	"max-concurrent-uploads": true, "max-download-attempts": true, "default-runtime": true,
	"runtimes": true, "authorization-plugins": true, "insecure-registries": true,
	"registry-mirrors": true, "shutdown-timeout": true, "features": true, "builder": true,
}

// ReloadOnly says whether the two daemon.json contents differ only in keys dockerd reloads.
func ReloadOnly(old, new []byte) bool {
	var a, b map[string]any
	if json.Unmarshal(old, &a) != nil || json.Unmarshal(new, &b) != nil {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok && !reloadable[k] {
			return false
		}
	}
	for k, v := range b {
		if w, ok := a[k]; (!ok || !reflect.DeepEqual(v, w)) && !reloadable[k] {
			return false
		}
	}
	return true
}

func (p *Provisioner) install(ctx context.Context, osi OSInfo, url string) error {
	if url != "" {
		_, err := p.R.Run(ctx, nil, "sh", "-c", `curl -fsSL "$1" -o /tmp/machine-install-docker.sh && sh /tmp/machine-install-docker.sh; rc=$?; rm -f /tmp/machine-install-docker.sh; exit $rc`, "sh", url)
		if err != nil {
			return fmt.Errorf("the engine install script %s failed: %w", url, err)
		}
		return nil
	}
	cmds, err := InstallCommands(osi)
	if err != nil {
		return err
	}
	for _, c := range cmds {
		if _, err := p.R.Run(ctx, nil, c...); err != nil {
			return fmt.Errorf("installing Docker from %s's packages: %w", osi.PrettyName, err)
		}
	}
	return nil
}

// place uploads the files whose content or mode differs and returns their paths.
func (p *Provisioner) place(ctx context.Context, files []File) ([]string, error) {
	argv := []string{"sh", "-c", `for f in "$@"; do if [ -f "$f" ]; then printf '%s ' "$(stat -c %a "$f")"; sha256sum "$f"; fi; done`, "sh"}
	for _, f := range files {
		argv = append(argv, f.Path)
	}
	out, err := p.R.Run(ctx, nil, argv...)
	if err != nil {
		return nil, fmt.Errorf("reading the host's engine configuration: %w", err)
	}
	have := map[string]string{} // path: "MODE SUM", the mode in octal as stat prints it
	for _, line := range strings.Split(string(out), "\n") {
		if sum, file, ok := strings.Cut(strings.TrimSpace(line), "  "); ok {
			have[file] = sum
		}
	}
	var dirs []string
	var todo []File
	for _, f := range files {
		h := sha256.Sum256(f.Data)
		if have[f.Path] == fmt.Sprintf("%o %s", f.Mode, hex.EncodeToString(h[:])) {
			continue
		}
		todo = append(todo, f)
		dirs = append(dirs, path.Dir(f.Path))
	}
	if len(todo) == 0 {
		return nil, nil
	}
	// The mark before the first file (in the same session): whatever stops this provision from
	// here on, the next one restarts.
	if _, err := p.R.Run(ctx, nil, append([]string{"sh", "-c", `mkdir -p "$@" && : > ` + RestartPending, "sh"}, append(dirs, path.Dir(RestartPending))...)...); err != nil {
		return nil, err
	}
	var changed []string
	for _, f := range todo {
		if err := p.R.Upload(ctx, f.Path, f.Data, fsMode(f.Mode)); err != nil {
			return changed, err
		}
		changed = append(changed, f.Path)
	}
	return changed, nil
}

// service (re)starts the engine. On systemd, enabled tells that docker.service is enabled
// already and unitChanged that its unit or drop-in is new.
func (p *Provisioner) service(ctx context.Context, res *Result, restart, enabled, unitChanged bool) error {
	switch res.Init {
	case Systemd:
		if restart {
			p.step("restarting the engine")
			// Enabling (through update-rc.d, where the package has an init script) and a unit
			// reload cost a tenth of a CPU-second each: only when needed, in one session.
			var pre []string
			if !enabled {
				pre = append(pre, "systemctl enable --no-reload docker.service")
			}
			if unitChanged || !enabled {
				pre = append(pre, "systemctl daemon-reload")
			}
			if len(pre) > 0 {
				if _, err := p.R.Run(ctx, nil, "sh", "-c", strings.Join(pre, " && ")); err != nil {
					return err
				}
			}
			// A socket unit left active by the package would hold fd:// from the old start.
			if err := p.systemdRestart(ctx, true); err != nil {
				return p.engineFailed(ctx, err)
			}
			res.Restarted = true
			return nil
		}
		if _, err := p.R.Run(ctx, nil, "systemctl", "is-active", "--quiet", "docker.service"); err != nil {
			p.step("starting the engine")
			if _, err := p.R.Run(ctx, nil, "systemctl", "start", "docker.service"); err != nil {
				return p.engineFailed(ctx, err)
			}
			res.Restarted = true
		}
		return nil
	case OpenRC:
		if _, err := p.R.Run(ctx, nil, "rc-update", "add", "docker", "default"); err != nil {
			return err
		}
		verb := "start"
		if restart {
			verb = "restart"
		} else if _, err := p.R.Run(ctx, nil, "rc-service", "docker", "status"); err == nil {
			return nil
		}
		if _, err := p.R.Run(ctx, nil, "sh", "-c", "rc-service docker "+verb+" && rm -f "+RestartPending); err != nil {
			return fmt.Errorf("the engine did not start: %w", err)
		}
		res.Restarted = true
		return nil
	}
	return fmt.Errorf("unknown init system %q", res.Init)
}

// systemdRestart restarts docker.service, and with unmark removes the RestartPending mark in the
// same session once it runs. docker.service allows 3 starts a minute (StartLimitBurst): a fourth
// deliberate restart (regenerate-certs, then provision...) is refused and leaves the engine
// stopped. These restarts are not a crash loop: the count is cleared and the engine started.
func (p *Provisioner) systemdRestart(ctx context.Context, unmark bool) error {
	argv, then := []string{"systemctl", "restart", "docker.service"}, ""
	if unmark {
		then = " && rm -f " + RestartPending
		argv = []string{"sh", "-c", "systemctl restart docker.service" + then}
	}
	_, err := p.R.Run(ctx, nil, argv...)
	if startLimitHit(err) {
		p.step("systemd refused a fourth start within a minute: clearing its count and starting the engine")
		_, err = p.R.Run(ctx, nil, "sh", "-c", "systemctl reset-failed docker.service && systemctl start docker.service"+then)
	}
	return err
}

// startLimitHit: systemd refused to start the unit again so soon (its start rate limit).
func startLimitHit(err error) bool {
	var ce *runner.CommandError
	return errors.As(err, &ce) && (strings.Contains(err.Error(), "attempted too often") || strings.Contains(err.Error(), "start-limit-hit"))
}

// versionMin refuses an engine older than the spec's minimum, before anything is changed.
func versionMin(facts HostFacts, spec Spec) error {
	min := spec.Engine.VersionMin
	if min == "" || facts.Version == "" || !OlderThan(facts.Version, min) {
		return nil
	}
	v, _ := ParseVersion(facts.Version)
	return fmt.Errorf("the host's engine is %d.%d.%d (%s), older than the minimum %s (--engine-version-min): nothing was changed on it; upgrade its engine (machine upgrade, once it is a machine, or its package source), or lower the minimum",
		v[0], v[1], v[2], strings.TrimPrefix(facts.Version, "Docker version "), min)
}

func (p *Provisioner) engineFailed(ctx context.Context, err error) error {
	var ce *runner.CommandError
	if !errors.As(err, &ce) { // not systemctl's answer: the connection itself went
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted while the engine restarted: run `machine provision` again to finish (%w)", err)
		}
		return fmt.Errorf("the SSH connection to the host was lost while the engine restarted (%v): the engine may be up; run `machine provision` again once SSH answers", err)
	}
	// A host going down (stopped or removed meanwhile) stops its engine too: not the options' fault.
	state, serr := p.out(ctx, "systemctl", "is-system-running") // exits 1 for any state but running
	if !errors.As(serr, new(*runner.CommandError)) && serr != nil || state == "stopping" {
		return fmt.Errorf("the host began shutting down while its engine restarted (it was stopped or removed meanwhile): %w", err)
	}
	logs, _ := p.out(ctx, "journalctl", "-u", "docker.service", "-n", "15", "--no-pager", "-o", "cat")
	return fmt.Errorf("dockerd did not start with the new configuration (check --engine-opt and the other engine flags): %w\nlast lines of its log:\n%s", err, logs)
}
