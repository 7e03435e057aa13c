package sshconfig

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// load reads testdata/sshconfig/NAME with its Include pointing at the testdata folder.
func load(t *testing.T, name string) *File {
	t.Helper()
	dir, _ := filepath.Abs("../../testdata/sshconfig")
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(name, strings.NewReader(strings.ReplaceAll(string(b), "@DIR@", dir)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestResolve(t *testing.T) {
	home, _ := os.UserHomeDir()
	f := load(t, "config")
	bastion := Hop{Alias: "bastion", Host: "bastion.example.com", Port: 2222, User: "ops", IdentityFiles: []string{home + "/.ssh/id_bastion"}}
	cases := []struct {
		alias string
		want  Host
	}{
		// Match user deploy gives prod-web1 (User deploy from prod-*) port 2200.
		{"prod-web1", Host{Alias: "prod-web1", HostName: "10.20.0.11", User: "deploy", Port: 2200,
			IdentityFiles:   []string{home + "/.ssh/id_deploy@10.20.0.11", home + "/.ssh/id_ed25519"},
			IdentitiesOnly:  true,
			ProxyJump:       []Hop{bastion},
			KnownHostsFiles: []string{home + "/.ssh/known_hosts.d/10.20.0.11", home + "/.ssh/known_hosts"},
			ConnectTimeout:  7 * time.Second, ServerAliveInterval: 15 * time.Second}},
		// negated: prod-legacy is not a prod-* host; Host * gives the rest
		{"prod-legacy", Host{Alias: "prod-legacy", HostName: "10.20.0.99", User: "legacy", Port: 22, ServerAliveInterval: 60 * time.Second}},
		// a hop that jumps itself: its own jump comes first; then an explicit user and port
		{"deep", Host{Alias: "deep", HostName: "10.30.0.5", User: "fallback", Port: 22, ServerAliveInterval: 60 * time.Second,
			ProxyJump: []Hop{bastion, {Alias: "inner-bastion", Host: "10.20.0.2", Port: 22, User: "fallback"}, {Host: "hop2.example.com", Port: 2200, User: "ops2"}}}},
		{"direct", Host{Alias: "direct", HostName: "192.0.2.7", User: "fallback", Port: 22, ServerAliveInterval: 60 * time.Second}},
		{"printer.lab", Host{Alias: "printer.lab", HostName: "printer.lab", User: "labuser", Port: 2022, ServerAliveInterval: 60 * time.Second}},
		// from the included file: IPv6 address and an IPv6 jump host in brackets
		{"team-db", Host{Alias: "team-db", HostName: "2001:db8::42", User: "dba", Port: 22, ServerAliveInterval: 60 * time.Second, ConnectTimeout: 3 * time.Second,
			ProxyJump: []Hop{{Host: "2001:db8::1", Port: 2222, User: "fallback"}}}},
		{"staging", Host{Alias: "staging", HostName: "10.40.0.1", User: "deploy", Port: 2200, ServerAliveInterval: 60 * time.Second}},
		{"unknown", Host{Alias: "unknown", HostName: "unknown", User: "fallback", Port: 22, ServerAliveInterval: 60 * time.Second}},
	}
	for _, c := range cases {
		got, err := f.Resolve(c.alias)
		if err != nil {
			t.Errorf("%s: %v", c.alias, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.alias, got, c.want)
		}
	}
}

func TestResolveLoop(t *testing.T) {
	if _, err := load(t, "loop").Resolve("a"); err == nil || !strings.Contains(err.Error(), "a loop?") {
		t.Errorf("a ProxyJump loop: %v", err)
	}
}

func TestParseJumps(t *testing.T) {
	good := map[string][]Hop{
		"ops@bastion.example.com:2222": {{Host: "bastion.example.com", Port: 2222, User: "ops"}},
		"a,b@c:2200 , d":               {{Host: "a", Port: 22}, {Host: "c", Port: 2200, User: "b"}, {Host: "d", Port: 22}},
		"[2001:db8::1]:2222":           {{Host: "2001:db8::1", Port: 2222}},
		"ssh://u@h":                    {{Host: "h", Port: 22, User: "u"}},
		"none":                         nil,
		"":                             nil,
	}
	for in, want := range good {
		got, err := ParseJumps(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %+v %v (want %+v)", in, got, err, want)
		}
	}
	for _, bad := range []string{"a:0", "a:x", "@h", "-oProxyCommand=x", "h;rm", ",", "a b"} {
		if _, err := ParseJumps(bad); err == nil || !strings.Contains(err.Error(), "jump host") {
			t.Errorf("%q should be refused: %v", bad, err)
		}
	}
}

func TestBadFiles(t *testing.T) {
	for in, want := range map[string]string{
		"Host a\n  Port 99999\n":          "not a port number",
		"Match exec true\n  User x\n":     "Match Exec is not supported",
		"Host a\n  ConnectTimeout soon\n": "ConnectTimeout",
	} {
		f, err := Parse("t", strings.NewReader(in))
		if err == nil {
			_, err = f.Resolve("a")
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v (want %q)", in, err, want)
		}
	}
}

func TestExpandTokens(t *testing.T) {
	home, _ := os.UserHomeDir()
	if got := ExpandTokens("~/k/%h_%r_%p_%%_%x", "h1", "bob", 2222); got != home+"/k/h1_bob_2222_%_%x" {
		t.Errorf("got %q", got)
	}
}

// FuzzParse: any file parses or is refused, never panics, and resolving an alias ends.
func FuzzParse(f *testing.F) {
	for _, n := range []string{"config", "loop", "config.d/10-team.conf"} {
		b, _ := os.ReadFile(filepath.Join("../../testdata/sshconfig", n))
		f.Add(string(b), "prod-web1")
	}
	f.Fuzz(func(t *testing.T, text, alias string) {
		if strings.Contains(text, "Include") { // reads files: not for a fuzzer
			return
		}
		cfg, err := Parse("fuzz", strings.NewReader(text))
		if err != nil {
			return
		}
		_, _ = cfg.Resolve(alias)
		_, _ = ParseJumps(alias)
	})
}

func TestPatternList(t *testing.T) {
	for list, want := range map[string]bool{"deploy": true, "dep*": true, "root,deploy": true, "*,!deploy": false, "!root,deploy": true, "ops": false, "!deploy": false} {
		if got := patternList(list, "deploy"); got != want {
			t.Errorf("%q: %v", list, got)
		}
	}
}
