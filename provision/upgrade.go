package provision

import (
	"context"
	"fmt"
	"strings"
)

// upgradeScript upgrades the package that owns dockerd to the newest its package source has,
// and prints the engine's version before and after. $1 is the package manager family. The
// package is the one dpkg/rpm/apk says owns the dockerd on PATH, so docker.io, docker-ce and
// moby-engine are all upgraded in place, never swapped; an engine no package owns is reported.
const upgradeScript = `set -e
d=$(command -v dockerd) || { echo "no dockerd on PATH" >&2; exit 3; }
d=$(readlink -f "$d")
echo "--- before"; dockerd --version
case "$1" in
debian)
  pkg=$(dpkg -S "$d" 2>/dev/null | head -n1 | cut -d: -f1) || true
  [ -n "$pkg" ] || { echo "$d belongs to no package: upgrade it the way it was installed" >&2; exit 4; }
  echo "--- package"; echo "$pkg"
  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --only-upgrade -o Dpkg::Options::=--force-confold "$pkg" >/dev/null ;;
fedora|rhel)
  pkg=$(rpm -qf --qf '%{NAME}\n' "$d" 2>/dev/null | head -n1) || true
  [ -n "$pkg" ] || { echo "$d belongs to no package: upgrade it the way it was installed" >&2; exit 4; }
  echo "--- package"; echo "$pkg"
  if command -v dnf >/dev/null; then dnf upgrade -y -q "$pkg" >/dev/null; else yum update -y -q "$pkg" >/dev/null; fi ;;
alpine)
  pkg=$(apk info -q --who-owns "$d" 2>/dev/null | awk '{print $NF}' | head -n1) || true
  [ -n "$pkg" ] || { echo "$d belongs to no package: upgrade it the way it was installed" >&2; exit 4; }
  echo "--- package"; echo "$pkg"
  apk upgrade -q "$pkg" >/dev/null ;;
*) echo "no package manager known for this host" >&2; exit 5 ;;
esac
echo "--- after"; dockerd --version`

// UpgradeResult says what Upgrade did.
type UpgradeResult struct {
	Package        string
	Before, After  string // dockerd --version, e.g. "Docker version 20.10.24+dfsg1, build 297e128"
	Upgraded       bool
	EngineRestored bool // the engine was restarted with the machine's configuration
}

// Upgrade upgrades the host's engine to the newest version its package source has and, when the
// version changed, restarts it with the machine's configuration (daemon.json and the drop-in are
// not the package's and stay). It changes nothing when the engine is the newest already.
func (p *Provisioner) Upgrade(ctx context.Context) (*UpgradeResult, error) {
	p.step("detecting the operating system")
	osi, facts, err := p.probe(ctx)
	if err != nil {
		return nil, err
	}
	if facts.DockerdPath == "" {
		return nil, fmt.Errorf("the host has no Docker engine to upgrade: run `machine provision` to install it")
	}
	family := string(osi.Family)
	p.step(fmt.Sprintf("upgrading the engine from %s's packages", osi.PrettyName))
	out, err := p.R.Run(ctx, nil, "sh", "-c", upgradeScript, "sh", family)
	if err != nil {
		return nil, fmt.Errorf("upgrading the engine: %w", err)
	}
	res := ParseUpgrade(string(out))
	if !res.Upgraded {
		return res, nil
	}
	p.step("restarting the engine (" + res.After + ")")
	switch facts.Init {
	case Systemd:
		err = p.systemdRestart(ctx, false)
	case OpenRC:
		_, err = p.R.Run(ctx, nil, "rc-service", "docker", "restart")
	}
	if err != nil {
		return res, p.engineFailed(ctx, err)
	}
	res.EngineRestored = true
	return res, nil
}

// ParseUpgrade reads upgradeScript's output.
func ParseUpgrade(out string) *UpgradeResult {
	f := ParseFacts(out)
	r := &UpgradeResult{Package: strings.TrimSpace(f["package"]), Before: strings.TrimSpace(f["before"]), After: strings.TrimSpace(f["after"])}
	r.Upgraded = r.After != "" && r.After != r.Before
	return r
}
