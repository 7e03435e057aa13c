// Package sshconfig resolves a host alias through an OpenSSH client configuration file (read
// with github.com/kevinburke/ssh_config): Host patterns with negation, Match host/all, Include,
// first value wins; and ProxyJump chains, each hop resolved through the same file.
package sshconfig

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"
)

// Host is what the file says about one alias, with OpenSSH's defaults where it says nothing
// (Port 22; User empty: the caller's default).
type Host struct {
	Alias               string        `json:"Alias"`
	HostName            string        `json:"HostName"`
	User                string        `json:"User,omitempty"`
	Port                int           `json:"Port"`
	IdentityFiles       []string      `json:"IdentityFiles,omitempty"` // tokens and ~ expanded
	IdentitiesOnly      bool          `json:"IdentitiesOnly,omitempty"`
	ProxyJump           []Hop         `json:"ProxyJump,omitempty"` // each hop resolved too
	KnownHostsFiles     []string      `json:"UserKnownHostsFiles,omitempty"`
	ConnectTimeout      time.Duration `json:"ConnectTimeout,omitempty"`
	ServerAliveInterval time.Duration `json:"ServerAliveInterval,omitempty"`
}

// Hop is one jump host: where it is, who logs in, and with which keys.
type Hop struct {
	Alias         string   `json:"Alias,omitempty"` // the name the chain gave, when resolved
	Host          string   `json:"Host"`
	Port          int      `json:"Port"`
	User          string   `json:"User,omitempty"`
	IdentityFiles []string `json:"IdentityFiles,omitempty"`
}

// String is user@host:port, as errors name a hop.
func (h Hop) String() string {
	s := net.JoinHostPort(h.Host, strconv.Itoa(h.Port))
	if h.User != "" {
		s = h.User + "@" + s
	}
	return s
}

// File is a configuration: its text (and its included files'), parsed for each alias, since a
// `Match user` block applies or not by the user that the rest of the file gives the alias.
type File struct {
	path string
	text string
	cfg  *ssh_config.Config // for the alias being resolved
}

// maxSize bounds what is read: a client configuration is a few kilobytes.
const maxSize = 1 << 20

// Load reads the file at path (Include paths relative to ~/.ssh, as OpenSSH's).
func Load(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ssh config %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err == nil && st.Size() > maxSize {
		return nil, fmt.Errorf("ssh config %s: larger than 1 MiB; is it a client configuration?", path)
	}
	return Parse(path, f)
}

// Parse reads a configuration from r and checks that it parses; path names it in errors.
func Parse(path string, r io.Reader) (*File, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("ssh config %s: %w", path, err)
	}
	if len(b) > maxSize {
		return nil, fmt.Errorf("ssh config %s: larger than 1 MiB; is it a client configuration?", path)
	}
	f := &File{path: path, text: string(b)}
	if err := f.parseFor(""); err != nil {
		return nil, err
	}
	return f, nil
}

// parseFor parses the text with its `Match user` criteria decided for user ("": none matches).
func (f *File) parseFor(user string) (err error) {
	defer func() { // the parser panics on some malformed input
		if p := recover(); p != nil {
			err = fmt.Errorf("ssh config %s: cannot be parsed (%v)", f.path, p)
		}
	}()
	// Included files are read by the parser itself: their Match lines are decided in copies.
	tmp, err := os.MkdirTemp("", "machine-ssh-config-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	text, err := includeCopies(f.text, user, tmp, 0)
	if err != nil {
		return fmt.Errorf("ssh config %s: %w", f.path, err)
	}
	cfg, err := ssh_config.Decode(strings.NewReader(text))
	if err != nil {
		return fmt.Errorf("ssh config %s: %w (machine reads Host, Match host/user/all and Include blocks)", f.path, err)
	}
	f.cfg = cfg
	return nil
}

// matchUser decides the `user` criteria of Match lines for user, as OpenSSH does (a pattern list
// with `!`), and leaves the library what it reads: `Match all`, `Match host ...`, or a block that
// matches nothing.
func matchUser(text, user string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		f := strings.Fields(strings.ReplaceAll(l, "=", " "))
		if len(f) < 3 || !strings.EqualFold(f[0], "Match") {
			continue
		}
		var keep []string
		ok, hasUser := true, false
		for j := 1; j+1 < len(f); j += 2 {
			if strings.EqualFold(f[j], "user") {
				hasUser = true
				ok = ok && user != "" && patternList(f[j+1], user)
				continue
			}
			keep = append(keep, f[j], f[j+1])
		}
		switch {
		case !hasUser:
		case !ok:
			lines[i] = "Host !*"
		case len(keep) == 0:
			lines[i] = "Match all"
		default:
			lines[i] = "Match " + strings.Join(keep, " ")
		}
	}
	return strings.Join(lines, "\n")
}

// includeCopies decides the Match lines of text and of every file its Include lines name (by
// OpenSSH's rules: relative to ~/.ssh, globs), which it copies into dir, pointing the Include
// lines at the copies.
func includeCopies(text, user, dir string, depth int) (string, error) {
	if depth > 5 {
		return "", errors.New("Include nested more than 5 deep")
	}
	text = matchUser(text, user)
	home, _ := os.UserHomeDir()
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		f := strings.Fields(strings.ReplaceAll(l, "=", " "))
		if len(f) < 2 || !strings.EqualFold(f[0], "Include") {
			continue
		}
		var copies []string
		for _, pat := range f[1:] {
			switch {
			case strings.HasPrefix(pat, "~/"):
				pat = filepath.Join(home, pat[2:])
			case !filepath.IsAbs(pat):
				pat = filepath.Join(home, ".ssh", pat)
			}
			matches, err := filepath.Glob(pat)
			if err != nil {
				return "", fmt.Errorf("Include %s: %w", pat, err)
			}
			for _, m := range matches {
				b, err := os.ReadFile(m)
				if err != nil {
					return "", fmt.Errorf("Include %s: %w", m, err)
				}
				sub, err := includeCopies(string(b), user, dir, depth+1)
				if err != nil {
					return "", err
				}
				c, err := os.CreateTemp(dir, "include-*")
				if err != nil {
					return "", err
				}
				_, err = c.WriteString(sub)
				c.Close()
				if err != nil {
					return "", err
				}
				copies = append(copies, c.Name())
			}
		}
		lines[i] = "# (Include with no file)"
		if len(copies) > 0 {
			lines[i] = "Include " + strings.Join(copies, " ")
		}
	}
	return strings.Join(lines, "\n"), nil
}

// patternList matches s against an ssh_config pattern list: comma-separated globs, a match of a
// negated one (`!x`) failing the whole list.
func patternList(list, s string) bool {
	matched := false
	for _, p := range strings.Split(list, ",") {
		neg := strings.HasPrefix(p, "!")
		if ok, _ := path.Match(strings.TrimPrefix(p, "!"), s); ok {
			if neg {
				return false
			}
			matched = true
		}
	}
	return matched
}

func (f *File) get(alias, key string) string {
	v, _ := f.cfg.Get(alias, key)
	return strings.TrimSpace(v)
}

// Resolve applies the file to alias as OpenSSH does: the first value of each keyword wins.
func (f *File) Resolve(alias string) (Host, error) {
	return f.resolve(alias, 0)
}

// maxJumpDepth bounds chains of jump hosts that name jump hosts.
const maxJumpDepth = 8

func (f *File) resolve(alias string, depth int) (Host, error) {
	// Which `Match user` blocks apply depends on the user the rest of the file gives the alias
	// (or this computer's user): first without them, then with them decided.
	if err := f.parseFor(""); err != nil {
		return Host{}, err
	}
	user := f.get(alias, "User")
	if user == "" {
		user = localUser()
	}
	if err := f.parseFor(user); err != nil {
		return Host{}, err
	}
	h := Host{Alias: alias, HostName: alias, Port: 22}
	if hn := f.get(alias, "HostName"); hn != "" {
		h.HostName = strings.ReplaceAll(hn, "%h", alias)
	}
	h.User = f.get(alias, "User")
	if p := f.get(alias, "Port"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Host{}, fmt.Errorf("ssh config %s: Host %s: Port %q is not a port number", f.path, alias, p)
		}
		h.Port = n
	}
	ids, _ := f.cfg.GetAll(alias, "IdentityFile")
	for _, id := range ids {
		h.IdentityFiles = append(h.IdentityFiles, ExpandTokens(strings.TrimSpace(id), h.HostName, h.User, h.Port))
	}
	h.IdentitiesOnly = strings.EqualFold(f.get(alias, "IdentitiesOnly"), "yes")
	for _, k := range strings.Fields(f.get(alias, "UserKnownHostsFile")) {
		if k != "none" {
			h.KnownHostsFiles = append(h.KnownHostsFiles, ExpandTokens(k, h.HostName, h.User, h.Port))
		}
	}
	var err error
	if h.ConnectTimeout, err = seconds(f.get(alias, "ConnectTimeout")); err != nil {
		return Host{}, fmt.Errorf("ssh config %s: Host %s: ConnectTimeout: %w", f.path, alias, err)
	}
	if h.ServerAliveInterval, err = seconds(f.get(alias, "ServerAliveInterval")); err != nil {
		return Host{}, fmt.Errorf("ssh config %s: Host %s: ServerAliveInterval: %w", f.path, alias, err)
	}
	if j := f.get(alias, "ProxyJump"); j != "" {
		if depth >= maxJumpDepth {
			return Host{}, fmt.Errorf("ssh config %s: jump hosts that name jump hosts, more than %d deep (a loop?) at %s", f.path, maxJumpDepth, alias)
		}
		if h.ProxyJump, err = f.Jumps(j, depth+1); err != nil {
			return Host{}, err
		}
	}
	return h, nil
}

// Jumps parses a ProxyJump value ([user@]host[:port], comma-separated; "none": no jump) and
// resolves each hop's name through the file: its HostName, User, Port, IdentityFile, and the
// hops its own ProxyJump names (which come first).
func (f *File) Jumps(spec string, depth int) ([]Hop, error) {
	hops, err := parseJumps(spec)
	if err != nil || f == nil {
		return defaultPorts(hops), err
	}
	var out []Hop
	for _, hp := range hops {
		r, err := f.resolve(hp.Host, depth)
		if err != nil {
			return nil, err
		}
		out = append(out, r.ProxyJump...)
		hop := Hop{Alias: hp.Host, Host: r.HostName, Port: r.Port, User: r.User, IdentityFiles: r.IdentityFiles}
		if hp.Port != 0 {
			hop.Port = hp.Port
		}
		if hp.User != "" {
			hop.User = hp.User
		}
		if hop.Alias == hop.Host {
			hop.Alias = ""
		}
		out = append(out, hop)
	}
	return out, nil
}

// ParseJumps parses a ProxyJump value without a file: hops as given, port 22 unless named.
// An IPv6 address with a port is written in brackets ([2001:db8::1]:2222).
func ParseJumps(spec string) ([]Hop, error) {
	hops, err := parseJumps(spec)
	return defaultPorts(hops), err
}

func defaultPorts(hops []Hop) []Hop {
	for i := range hops {
		if hops[i].Port == 0 {
			hops[i].Port = 22
		}
	}
	return hops
}

// parseJumps leaves the port 0 where the spec names none (the file's Port applies then).
func parseJumps(spec string) ([]Hop, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" || strings.EqualFold(spec, "none") {
		return nil, nil
	}
	var hops []Hop
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(part), "ssh://"))
		hop := Hop{Port: 0}
		if at := strings.LastIndex(part, "@"); at >= 0 {
			hop.User, part = part[:at], part[at+1:]
			if hop.User == "" {
				return nil, fmt.Errorf("jump host %q: an empty user before @", part)
			}
		}
		host, port := part, ""
		if h, p, err := net.SplitHostPort(part); err == nil {
			host, port = h, p
		} else if strings.HasPrefix(part, "[") && strings.HasSuffix(part, "]") {
			host = part[1 : len(part)-1]
		}
		if host == "" || strings.ContainsAny(host, " \t/\\'\"`$;|&") || strings.HasPrefix(host, "-") {
			return nil, fmt.Errorf("jump host %q: give [user@]host[:port], hops separated by commas", part)
		}
		hop.Host = host
		if port != "" {
			n, err := strconv.Atoi(port)
			if err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("jump host %q: the port must be 1 to 65535", part)
			}
			hop.Port = n
		}
		hops = append(hops, hop)
	}
	return hops, nil
}

// ExpandTokens expands ~ and OpenSSH's %d (local home), %u (local user), %h (remote host), %r
// (remote user), %p (port) and %% in a file name.
func ExpandTokens(s, host, remoteUser string, port int) string {
	home, _ := os.UserHomeDir()
	local := localUser()
	if s == "~" || strings.HasPrefix(s, "~/") {
		s = filepath.Join(home, strings.TrimPrefix(s, "~"))
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'd':
			b.WriteString(home)
		case 'u':
			b.WriteString(local)
		case 'h':
			b.WriteString(host)
		case 'r':
			b.WriteString(remoteUser)
		case 'p':
			b.WriteString(strconv.Itoa(port))
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func seconds(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errors.New("give a number of seconds")
	}
	return time.Duration(n) * time.Second, nil
}

func localUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}
