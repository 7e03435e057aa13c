package safetext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                    "plain",
		"a\nb":                     `a\nb`,
		"x\r\x1b[31mred":           `x\r\x1b[31mred`,
		"ümlaut ok":                "ümlaut ok",
		"\u202eevil":               `\u202eevil`,
		"bad\xffbyte":              `bad\xffbyte`,
		"tab\there":                `tab\there`,
		"\x7f":                     `\x7f`,
		"zero\u200bwidth":          `zero\u200bwidth`,
		"ok \\n stays backslash-n": `ok \n stays backslash-n`,
	} {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFirstUnsafe(t *testing.T) {
	for in, want := range map[string]string{
		"B=x\nExecStartPre=/x": "a newline",
		"a\rb":                 "a carriage return",
		"\x00":                 "a NUL byte",
		"\x1b[2J":              "an escape character",
		"\u0085":               "the control character U+0085",
		"x\xfe":                "the byte 0xfe (not UTF-8)",
		"\u202e":               "the control character U+202E",
	} {
		got, ok := FirstUnsafe(in)
		if !ok || got != want {
			t.Errorf("FirstUnsafe(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if n, ok := FirstUnsafe("HTTPS_PROXY=http://u:p@h:3128 $HOME %i ünï"); ok {
		t.Errorf("a plain value is refused: %s", n)
	}
}

func TestMaskEnv(t *testing.T) {
	for in, want := range map[string]string{
		"HTTPS_PROXY=http://user:s3cret@proxy:3128":       "HTTPS_PROXY=http://user:****@proxy:3128",
		"http_proxy=http://user:p@ss@proxy:3128/path?x=1": "http_proxy=http://user:****@proxy:3128/path?x=1",
		"HTTP_PROXY=http://proxy:3128":                    "HTTP_PROXY=http://proxy:3128",
		"HTTP_PROXY=http://user@proxy:3128":               "HTTP_PROXY=http://user@proxy:3128",
		"REGISTRY_PASSWORD=hunter2":                       "REGISTRY_PASSWORD=****",
		"GITHUB_TOKEN=ghp_x":                              "GITHUB_TOKEN=****",
		"AWS_SECRET_ACCESS_KEY=abc":                       "AWS_SECRET_ACCESS_KEY=****",
		"DOCKER_API_KEY=k":                                "DOCKER_API_KEY=****",
		"P=$HOME":                                         "P=$HOME",
		"EMPTY_TOKEN=":                                    "EMPTY_TOKEN=",
		"noequals":                                        "noequals",
	} {
		if got := MaskEnv(in); got != want {
			t.Errorf("MaskEnv(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzPrintable(f *testing.F) {
	for _, s := range []string{"a\nb", "\x1b[31m", "\u202e", "\xff", "plain"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := Printable(s)
		if _, bad := FirstUnsafe(p); bad {
			t.Fatalf("Printable(%q) = %q still holds an unsafe character", s, p)
		}
		if !utf8.ValidString(p) {
			t.Fatalf("Printable(%q) is not UTF-8", s)
		}
		if _, bad := FirstUnsafe(s); !bad && p != s {
			t.Fatalf("a safe string changed: %q → %q", s, p)
		}
		m := MaskEnv(s)
		if strings.Contains(s, "=") && !strings.HasPrefix(m, strings.SplitN(s, "=", 2)[0]+"=") {
			t.Fatalf("MaskEnv(%q) = %q lost the key", s, m)
		}
	})
}

func TestMaskSecrets(t *testing.T) {
	tree := map[string]any{"AccessToken": "tok", "APIKey": "k", "Password": "pw", "SSHKeyPath": "/k", "IPAddress": "10.0.0.1",
		"Proxy": "http://u:pw@p:1", "Nested": map[string]any{"ClientSecret": "s"}, "List": []any{"https://a:b@c"}, "EmptyToken": ""}
	got := MaskSecrets(tree).(map[string]any)
	for k, want := range map[string]any{"AccessToken": Mask, "APIKey": Mask, "Password": Mask, "SSHKeyPath": "/k", "IPAddress": "10.0.0.1", "Proxy": "http://u:****@p:1", "EmptyToken": ""} {
		if got[k] != want {
			t.Errorf("%s: %v, want %v", k, got[k], want)
		}
	}
	if got["Nested"].(map[string]any)["ClientSecret"] != Mask || got["List"].([]any)[0] != "https://a:****@c" {
		t.Errorf("nested: %v", got)
	}
}
