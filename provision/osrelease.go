package provision

import (
	"bufio"
	"fmt"
	"strings"
)

// Family is a group of distributions that install and run Docker the same way.
type Family string

// The families the provisioner knows.
const (
	Debian Family = "debian" // Debian, Ubuntu, Raspbian, Mint, ...: apt-get install docker.io
	RHEL   Family = "rhel"   // CentOS, RHEL, Rocky, Alma, Oracle: yum/dnf
	Fedora Family = "fedora" // Fedora: dnf install moby-engine
	Alpine Family = "alpine" // Alpine: apk add docker, OpenRC
)

// OSInfo is what /etc/os-release says of a host.
type OSInfo struct {
	ID         string
	IDLike     []string
	VersionID  string
	PrettyName string
	Family     Family
}

// UnsupportedOSError is a host whose distribution the provisioner does not know.
type UnsupportedOSError struct{ Info OSInfo }

func (e *UnsupportedOSError) Error() string {
	name := e.Info.PrettyName
	if name == "" {
		name = e.Info.ID
	}
	return fmt.Sprintf("the host runs %q (ID=%s ID_LIKE=%s), which the provisioner does not support: use Debian, Ubuntu, CentOS/RHEL/Rocky/Alma, Fedora or Alpine, or install Docker yourself and pass --engine-install-url with a script that does it",
		name, e.Info.ID, strings.Join(e.Info.IDLike, " "))
}

// ParseOSRelease reads the content of /etc/os-release and names the family.
func ParseOSRelease(content string) (OSInfo, error) {
	vals := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(content))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		vals[k] = unquote(v)
	}
	info := OSInfo{
		ID:         strings.ToLower(vals["ID"]),
		IDLike:     strings.Fields(strings.ToLower(vals["ID_LIKE"])),
		VersionID:  vals["VERSION_ID"],
		PrettyName: vals["PRETTY_NAME"],
	}
	if info.ID == "" {
		return info, fmt.Errorf("/etc/os-release has no ID line: cannot tell the distribution")
	}
	info.Family = familyOf(info)
	if info.Family == "" {
		return info, &UnsupportedOSError{Info: info}
	}
	return info, nil
}

func familyOf(info OSInfo) Family {
	byID := map[string]Family{
		"debian": Debian, "ubuntu": Debian, "raspbian": Debian, "linuxmint": Debian, "pop": Debian,
		"centos": RHEL, "rhel": RHEL, "rocky": RHEL, "almalinux": RHEL, "ol": RHEL,
		"fedora": Fedora,
		"alpine": Alpine,
	}
	if f, ok := byID[info.ID]; ok {
		return f
	}
	for _, like := range info.IDLike {
		switch like {
		case "debian", "ubuntu":
			return Debian
		case "rhel", "centos":
			return RHEL
		case "fedora":
			return Fedora
		case "alpine":
			return Alpine
		}
	}
	return ""
}

func unquote(v string) string {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		v = v[1 : len(v)-1]
		v = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\$`, `$`, "\\`", "`").Replace(v)
	}
	return v
}

// InstallCommands are the argv lists that install Docker's engine from the distribution's own
// packages.
func InstallCommands(info OSInfo) ([][]string, error) {
	switch info.Family {
	case Debian:
		return [][]string{
			{"env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "update", "-q"},
			{"env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q", "--no-install-recommends", "docker.io"},
		}, nil
	case Fedora:
		return [][]string{{"dnf", "install", "-y", "moby-engine"}}, nil
	case RHEL:
		if strings.HasPrefix(info.VersionID, "7") {
			return [][]string{{"yum", "install", "-y", "docker"}}, nil
		}
		return nil, fmt.Errorf("%s %s ships no Docker engine package of its own: pass --engine-install-url with an install script (for example Docker's get.docker.com script)", info.PrettyName, info.VersionID)
	case Alpine:
		return [][]string{{"apk", "add", "--no-cache", "docker"}}, nil
	}
	return nil, &UnsupportedOSError{Info: info}
}
