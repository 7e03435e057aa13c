package provision

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/machine-tools/machine/internal/store"
)

// readUnit reads a unit file as systemd does for the lines the drop-in writes (systemd.syntax(7),
// systemd.service(5) "Command lines", systemd.exec(5) Environment=): words split at blanks,
// double or single quotes around a word, C escapes (\\ \" \' \n \t \xNN ...) inside them and
// out, specifiers (%%) expanded, and in Exec lines $$ read as $ (any other $ is a variable
// reference: an error here, since the writer never means one).
func readUnit(unit string) (env []string, exec [][]string, err error) {
	for _, line := range strings.Split(strings.TrimSuffix(unit, "\n"), "\n") {
		if line == "" || line[0] == '#' || line[0] == ';' || line == "[Service]" {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return nil, nil, fmt.Errorf("not an assignment: %q", line)
		}
		if strings.HasSuffix(line, `\`) {
			return nil, nil, fmt.Errorf("a continued line: %q", line)
		}
		words, err := systemdWords(val, key == "ExecStart")
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", line, err)
		}
		switch key {
		case "Environment":
			for _, w := range words {
				if k, _, ok := strings.Cut(w, "="); !ok || !envName.MatchString(k) {
					return nil, nil, fmt.Errorf("systemd ignores the assignment %q", w)
				}
			}
			env = append(env, words...)
		case "ExecStart":
			if len(words) > 0 {
				exec = append(exec, words)
			}
		default:
			return nil, nil, fmt.Errorf("a directive the drop-in does not write: %q", key)
		}
	}
	return env, exec, nil
}

func systemdWords(s string, exec bool) ([]string, error) {
	var words []string
	var w strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == 0 && (c == ' ' || c == '\t'):
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
			continue
		case quote == 0 && (c == '"' || c == '\'') && !in:
			quote, in = c, true
			continue
		case quote != 0 && c == quote:
			quote = 0
			if i+1 < len(s) && s[i+1] != ' ' && s[i+1] != '\t' {
				return nil, errors.New("text right after a closing quote")
			}
			continue
		case c == '\\':
			if i+1 == len(s) {
				return nil, errors.New("a backslash at the end")
			}
			i++
			switch s[i] {
			case '\\', '"', '\'':
				w.WriteByte(s[i])
			case 'n':
				w.WriteByte('\n')
			case 't':
				w.WriteByte('\t')
			case 's':
				w.WriteByte(' ')
			default:
				return nil, fmt.Errorf("an escape \\%c the writer never means", s[i])
			}
		case c == '%':
			if i+1 == len(s) || s[i+1] != '%' {
				return nil, errors.New("a specifier (%x) the writer never means")
			}
			i++
			w.WriteByte('%')
		case c == '$' && exec:
			if i+1 == len(s) || s[i+1] != '$' {
				return nil, errors.New("a variable reference ($) the writer never means")
			}
			i++
			w.WriteByte('$')
		default:
			w.WriteByte(c)
		}
		in = true
	}
	if quote != 0 {
		return nil, errors.New("an unclosed quote")
	}
	if in {
		words = append(words, w.String())
	}
	return words, nil
}

// TestDropInReadsBack: what the drop-in says is exactly what was given, read with systemd's rules:
// $ and % as written, quotes and backslashes kept, a value with blanks one word.
func TestDropInReadsBack(t *testing.T) {
	e := store.EngineOptions{
		Env:  []string{"P=$HOME", "Q=100%", `R=a "quoted" \back\slash`, "S=it's", "HTTPS_PROXY=http://u:p%40ss@proxy:3128", "T=a;b", "U=${X}"},
		Opts: []string{"log-level=debug", "default-ulimit=nofile=1024:2048", "ipv6", "data-root=/srv/docker $x%y", "label=a=b"},
	}
	if err := CheckEngine(e, nil); err != nil {
		t.Fatal(err)
	}
	spec := Spec{Engine: Effective(e)}
	env, exec, err := readUnit(string(SystemdUnit(HostFacts{DockerdPath: "/usr/sbin/dockerd"}, spec)))
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(e.Env))
	if !slices.Equal(env, want) {
		t.Errorf("environment read back\n got %q\nwant %q", env, want)
	}
	wantExec := []string{"/usr/sbin/dockerd", "--log-level=debug", "--default-ulimit=nofile=1024:2048", "--ipv6", "--data-root=/srv/docker $x%y"}
	if len(exec) != 1 || !slices.Equal(exec[0], wantExec) {
		t.Errorf("ExecStart read back\n got %q\nwant %q", exec, wantExec)
	}
}

// TestCheckEngineRefusals: the injections of issue 32 and the values dockerd refuses, each one
// line naming the option, the value and the rule.
func TestCheckEngineRefusals(t *testing.T) {
	for _, c := range []struct {
		e    store.EngineOptions
		want string
	}{
		{store.EngineOptions{Env: []string{"B=x\nExecStartPre=/usr/bin/touch /tmp/pwned2\n#"}}, `--engine-env "B=x\nExecStartPre=/usr/bin/touch /tmp/pwned2\n#": a newline is not allowed`},
		{store.EngineOptions{Opts: []string{"log-level=debug\rExecStartPre=/x"}}, `--engine-opt "log-level=debug\rExecStartPre=/x": a carriage return`},
		{store.EngineOptions{Labels: []string{"a=b\x1b[2J"}}, "an escape character"},
		{store.EngineOptions{RegistryMirrors: []string{"https://m.example\n"}}, "a newline"},
		{store.EngineOptions{InsecureRegistries: []string{"x;y"}}, `--engine-insecure-registry "x;y": give host:port`},
		{store.EngineOptions{InsecureRegistries: []string{"reg:99999"}}, "port must be a number from 0 to 65535"},
		{store.EngineOptions{RegistryMirrors: []string{"ftp://m"}}, "give an http:// or https:// URL"},
		{store.EngineOptions{RegistryMirrors: []string{"https://u:p@m"}}, "may not hold credentials"},
		{store.EngineOptions{Env: []string{"NOEQUALS"}}, "give NAME=value"},
		{store.EngineOptions{Env: []string{"A-B=1"}}, "give NAME=value"},
		{store.EngineOptions{Opts: []string{"tlskey=/tmp/k"}}, "tlskey is machine's to set"},
		{store.EngineOptions{Opts: []string{"-H=tcp://0.0.0.0:2375"}}, "use --engine-port"},
		{store.EngineOptions{Opts: []string{"log level=debug"}}, "give a dockerd flag as name=value"},
		{store.EngineOptions{Opts: []string{"label=provider=x"}}, "provider is the label"},
		{store.EngineOptions{Labels: []string{"zone=a"}, Opts: []string{"label=zone=b"}}, "given twice with different values"},
		{store.EngineOptions{StorageDriver: "overlay2;rm"}, "lower-case letters, digits and hyphens"},
		{store.EngineOptions{InstallURL: "-o/etc/passwd"}, "give an http:// or https:// URL"},
		{store.EngineOptions{Env: []string{"A=\u202eevil"}}, "U+202E"},
	} {
		err := CheckEngine(c.e, func(n string) string { return "--engine-" + n })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v:\n got %v\nwant %q", c.e, err, c.want)
			continue
		}
		if strings.Count(err.Error(), "\n") > 0 || !utf8.ValidString(err.Error()) {
			t.Errorf("not one printable line: %q", err)
		}
		if _, err := Files(HostFacts{Init: Systemd, DockerdPath: "/usr/bin/dockerd"}, Spec{Engine: c.e}); err == nil {
			t.Errorf("%+v: Files wrote it anyway", c.e)
		}
	}
	for _, ok := range []store.EngineOptions{
		{Env: []string{"P=$HOME", "HTTPS_PROXY=http://user:pw@proxy:3128", "_x=1"}},
		{Opts: []string{"label=zone=a", "insecure-registry=reg:5000", "registry-mirror=https://m", "storage-driver=vfs", "debug", "--log-level=info"}, Labels: []string{"zone=a"}},
		{InsecureRegistries: []string{"10.0.0.0/8", "reg.local:5000", "http://reg2:80", "[fd00::1]:5000", "fd00::2", "localhost"}},
		{RegistryMirrors: []string{"https://mirror.example.test", "http://10.0.0.1:5000/"}},
		{InstallURL: "https://get.docker.com", StorageDriver: "fuse-overlayfs"},
	} {
		if err := CheckEngine(ok, nil); err != nil {
			t.Errorf("refused: %+v: %v", ok, err)
		}
	}
}

// TestEngineOptsThatDaemonJSONSets: --engine-opt label=... (and the other settings daemon.json
// holds) join daemon.json instead of clashing with it (dockerd refuses a setting given both ways).
func TestEngineOptsThatDaemonJSONSets(t *testing.T) {
	e := Effective(store.EngineOptions{Labels: []string{"zone=a"}, Opts: []string{"label=rack=7", "label=zone=a", "insecure-registry=reg:5000", "registry-mirror=https://m", "storage-driver=vfs", "log-level=debug"}})
	if !slices.Equal(e.Labels, []string{"zone=a", "rack=7"}) || !slices.Equal(e.InsecureRegistries, []string{"reg:5000"}) ||
		!slices.Equal(e.RegistryMirrors, []string{"https://m"}) || e.StorageDriver != "vfs" || !slices.Equal(e.Opts, []string{"log-level=debug"}) {
		t.Fatalf("%+v", e)
	}
	files, err := Files(HostFacts{Init: Systemd, DockerdPath: "/usr/bin/dockerd"}, Spec{DriverName: "generic", Engine: store.EngineOptions{Opts: []string{"label=rack=7"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		switch f.Path {
		case DaemonJSON:
			if !strings.Contains(string(f.Data), `"rack=7"`) || !strings.Contains(string(f.Data), `"provider=generic"`) {
				t.Errorf("daemon.json lacks the label: %s", f.Data)
			}
		case SystemdDropIn:
			if strings.Contains(string(f.Data), "label") {
				t.Errorf("the drop-in still passes the label as a flag: %s", f.Data)
			}
			if f.Mode != 0o600 {
				t.Errorf("the drop-in (which may hold credentials) is %o", f.Mode)
			}
		}
	}
}

// FuzzDropIn: any engine value CheckEngine accepts reads back from the drop-in, with systemd's
// rules, as exactly itself; anything else is refused.
func FuzzDropIn(f *testing.F) {
	for _, s := range []string{"P=$HOME", "Q=100%", `R="\`, "S=x\ny", "T=${A}$$", "U=a b\tc", "V='x'", "log-level=debug"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, env, opt string) {
		e := store.EngineOptions{Env: []string{env}, Opts: []string{opt}}
		if CheckEngine(e, nil) != nil {
			return
		}
		e = Effective(e)
		unit := string(SystemdUnit(HostFacts{DockerdPath: "/usr/sbin/dockerd"}, Spec{Engine: e}))
		gotEnv, exec, err := readUnit(unit)
		if err != nil {
			t.Fatalf("%q %q: the drop-in does not read back: %v\n%s", env, opt, err, unit)
		}
		if !slices.Equal(gotEnv, []string{env}) {
			t.Fatalf("environment %q read back as %q\n%s", env, gotEnv, unit)
		}
		want := append([]string{"/usr/sbin/dockerd"}, EngineFlags(e.Opts)...)
		if len(exec) != 1 || !slices.Equal(exec[0], want) {
			t.Fatalf("ExecStart %q read back as %q\n%s", want, exec, unit)
		}
	})
}
