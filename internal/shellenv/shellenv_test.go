package shellenv

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestRenderGolden(t *testing.T) {
	vars := []Var{
		{Name: "DOCKER_TLS_VERIFY", Value: "1"},
		{Name: "DOCKER_HOST", Value: "tcp://192.168.99.100:2376"},
		{Name: "DOCKER_CERT_PATH", Value: `/home/me/My "Docker" $stuff/it's here\x`},
		{Name: "DOCKER_MACHINE_NAME", Value: "web1"},
	}
	for _, sh := range Shells {
		for _, unset := range []bool{false, true} {
			name := sh
			var got string
			if unset {
				name += "-unset"
				got = RenderUnset(sh, []string{"DOCKER_TLS_VERIFY", "DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_MACHINE_NAME"}, "machine env -u")
			} else {
				got = Render(sh, vars, "machine env web1")
			}
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update once)", err)
			}
			if got != string(want) {
				t.Errorf("%s:\n got:\n%s\nwant:\n%s", name, got, want)
			}
		}
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{"/bin/bash": "bash", "/usr/bin/zsh": "zsh", "/bin/dash": "sh", "fish": "fish",
		"pwsh": "powershell", "powershell.exe": "powershell", "cmd": "cmd", "/bin/csh": "tcsh", "emacs": "emacs"} {
		got, err := Normalize(in)
		if err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := Normalize("nushell"); err == nil {
		t.Error("an unknown shell must be an error")
	}
	if got, _ := Detect(""); got != "bash" {
		t.Errorf("Detect(\"\") = %q", got)
	}
}

// TestBashRoundTrip evaluates the bash output in a real bash and reads the values back.
func TestBashRoundTrip(t *testing.T) {
	val := `/tmp/a b/"q" $HOME ` + "`x`" + ` it's\n`
	out := Render("bash", []Var{{Name: "DOCKER_CERT_PATH", Value: val}}, "machine env x")
	cmd := exec.Command("bash", "-c", `eval "$1"; printf %s "$DOCKER_CERT_PATH"`, "bash", out)
	got, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != val {
		t.Fatalf("bash read back %q, want %q", got, val)
	}
}

func TestChooseAndEnvCommand(t *testing.T) {
	for _, c := range []struct{ given, env, want, cmd string }{
		{"", "", "bash", "machine env m"},
		{"", "/usr/bin/fish", "fish", "machine env --shell fish m"},
		{"pwsh", "/bin/zsh", "powershell", "machine env --shell powershell m"},
		{"dash", "/usr/bin/fish", "sh", "machine env m"},
	} {
		got, err := Choose(c.given, c.env)
		if err != nil || got != c.want {
			t.Errorf("Choose(%q, %q) = %q, %v; want %q", c.given, c.env, got, err, c.want)
		}
		if cmd := EnvCommand(got, "m"); cmd != c.cmd {
			t.Errorf("EnvCommand(%q) = %q, want %q", got, cmd, c.cmd)
		}
	}
	if _, err := Choose("klingon", ""); err == nil {
		t.Error("an unknown --shell was taken")
	}
}

// FuzzEnvRoundTrip: whatever a value holds (quotes, dollars, backquotes, backslashes, bytes that
// are not UTF-8, and newlines where the shell can hold them), evaluating `machine env`'s output in
// a real bash, dash (sh), zsh, fish and tcsh gives the variable exactly that value: nothing else
// runs, nothing is lost.
func FuzzEnvRoundTrip(f *testing.F) {
	b, err := os.ReadFile("testdata/values.txt") // the corpus: one value a line, and two more
	if err != nil {
		f.Fatal(err)
	}
	for _, v := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f.Add(v)
	}
	f.Add("a\nb\n")
	f.Add("\xff\xfe")
	shells := map[string]func(out string) *exec.Cmd{
		"bash": func(out string) *exec.Cmd {
			return exec.Command("bash", "-c", `eval "$1"; printenv DOCKER_CERT_PATH`, "bash", out)
		},
		"sh": func(out string) *exec.Cmd {
			return exec.Command("dash", "-c", `eval "$1"; printenv DOCKER_CERT_PATH`, "sh", out)
		},
		"zsh": func(out string) *exec.Cmd {
			return exec.Command("zsh", "-f", "-c", `eval "$1"; printenv DOCKER_CERT_PATH`, "zsh", out)
		},
		"fish": func(out string) *exec.Cmd {
			return exec.Command("fish", "--no-config", "-c", `printf '%s' $argv[1] | source; printenv DOCKER_CERT_PATH`, out)
		},
		"tcsh": func(out string) *exec.Cmd {
			c := exec.Command("tcsh", "-f", "-c", `source /dev/stdin; printenv DOCKER_CERT_PATH`)
			c.Stdin = strings.NewReader(out)
			return c
		},
	}
	for _, bin := range []string{"bash", "dash", "zsh", "fish", "tcsh"} {
		if _, err := exec.LookPath(bin); err != nil {
			f.Fatalf("%s is needed: scripts/setup.sh installs it", bin)
		}
	}
	f.Fuzz(func(t *testing.T, val string) {
		if strings.IndexByte(val, 0) >= 0 { // no environment variable holds a NUL
			return
		}
		for sh, cmd := range shells {
			if strings.ContainsAny(val, "\n\r") && sh == "tcsh" {
				continue // csh cannot hold a newline in a quoted word
			}
			if sh == "tcsh" && (!utf8.ValidString(val) || len(val) > 4000) {
				// tcsh decodes input as UTF-8 including the obsolete 5- and 6-byte forms
				// (\xfd and five continuation bytes come back as other bytes: measured, tcsh
				// 6.24), and a word holds about 4090 bytes: neither a path nor a URL is so
				continue
			}
			out := Render(sh, []Var{{Name: "DOCKER_CERT_PATH", Value: val}}, "machine env x")
			got, err := cmd(out).Output()
			if err != nil {
				t.Fatalf("%s: %v\n%s", sh, err, out)
			}
			if string(got) != val+"\n" {
				t.Fatalf("%s read back %q, want %q\n%s", sh, got, val, out)
			}
		}
	})
}
