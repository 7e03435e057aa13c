package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/machine-tools/machine/internal/cliflags"
	"github.com/machine-tools/machine/internal/format"
	"github.com/machine-tools/machine/internal/store"
	"github.com/machine-tools/machine/machine"
)

// runCLI runs the CLI in this process against a new store.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Setenv("MACHINE_STORAGE_PATH", filepath.Join(t.TempDir(), "store"))
	var o, e bytes.Buffer
	code = run(context.Background(), append([]string{"machine"}, args...), strings.NewReader(""), &o, &e)
	return code, o.String(), e.String()
}

// TestCreateFlagsComeFromTheOptionTables: every driver option is a flag named --DRIVER-OPTION
// (--OPTION for a driver docker-machine named so: none's --url), with its environment variable
// and default.
func TestCreateFlagsComeFromTheOptionTables(t *testing.T) {
	flags := map[string]cli.Flag{}
	for _, f := range createCommand().Flags {
		flags[f.Names()[0]] = f
	}
	for _, reg := range machine.Drivers() {
		for _, o := range reg.Options {
			if flags[cliflags.Name(reg.FlagPrefix(), o.Name)] == nil {
				t.Errorf("no flag --%s", cliflags.Name(reg.FlagPrefix(), o.Name))
			}
		}
	}
	ip := flags["generic-ip-address"].(*cli.StringFlag)
	if ip.EnvVars[0] != "GENERIC_IP_ADDRESS" {
		t.Errorf("generic-ip-address env %v", ip.EnvVars)
	}
	if m := flags["virtualbox-memory"].(*cli.IntFlag); m.Value != 1024 || m.EnvVars[0] != "VIRTUALBOX_MEMORY_SIZE" {
		t.Errorf("virtualbox-memory %+v", m)
	}
	if _, ok := flags["engine-registry-mirror"].(*cli.StringSliceFlag); !ok {
		t.Error("engine-registry-mirror is not repeatable")
	}
}

// TestGivenOptions: only the flags given (or their environment variables) reach the API, by
// option name and typed.
func TestGivenOptions(t *testing.T) {
	var got map[string]any
	reg, _ := machine.Drivers().Get("generic")
	app := &cli.App{Flags: cliflags.FromOptions("generic", "", table(reg.Options)), Action: func(c *cli.Context) error {
		got = cliflags.Given(c, "generic", table(reg.Options))
		return nil
	}}
	t.Setenv("GENERIC_SSH_USER", "ops")
	if err := app.Run([]string{"x", "--generic-ip-address", "203.0.113.5", "--generic-ssh-port", "2222"}); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	if string(b) != `{"ip-address":"203.0.113.5","ssh-port":2222,"ssh-user":"ops"}` {
		t.Errorf("given %s", b)
	}
}

// TestCreateBadInputIsOneLine: a create refused before anything is made prints one line and
// exits 1.
func TestCreateBadInputIsOneLine(t *testing.T) {
	for _, tc := range []struct {
		args, want string
		code       int
	}{
		{"create -d nosuch m1", `Driver "nosuch" not found`, 1},
		{"create -d virtualbox --virtualbox-share-folder /x m1", "--virtualbox-share-folder is not supported: machine does not share host folders", 1},
		// docker-machine's exit status for a driver's failed pre-create check is 3.
		{"create -d generic m1", "Error with pre-create check: the generic driver needs the host's address: pass --generic-ip-address", 3},
		{"create -d generic --generic-ip-address h --engine-registry-ca nocolon m1", "HOST:PORT=FILE", 1},
		{"create", "Error: No machine name specified", 1},
		{"create -d generic m1 m2", "Invalid command line. Found extra arguments [m2]", 1},
		{"create -d generic bad_name!", "Invalid hostname specified. Allowed hostname chars are: 0-9a-zA-Z . -", 1},
		{"swarm up -f ../../testdata/cluster/demo.yml --parallel -1", "--parallel -1: give a positive number", 1},
		{"swarm up -f ../../testdata/cluster/invalid-option-type.yml", "network: give a string, not a mapping", 1},
		{"create -d generic -x", "flag provided but not defined: -x: see `machine create --help`", 1},
		{"ls --nosuch", "flag provided but not defined: -nosuch: see `machine ls --help`", 1},
		{"swarm up --nosuch", "see `machine swarm up --help`", 1},
		{"create -d generic a..b", `Invalid hostname specified: "a..b" has an empty part between dots`, 1},
		{"create --swarm --swarm-master -d generic m1", "--swarm is not supported: it configured classic swarm", 1},
		{"create --swarm-discovery token://x -d generic m1", "--swarm-discovery is not supported", 1},
		{"regenerate-certs --client-certs m1", "--client-certs is not supported", 1},
	} {
		code, _, stderr := runCLI(t, strings.Fields(tc.args)...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q (want %d, %q)", tc.args, code, stderr, tc.code, tc.want)
		}
		if !strings.Contains(tc.args, "invalid") && strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%s: more than one line: %q", tc.args, stderr)
		}
	}
}

func TestPrintRows(t *testing.T) {
	rows := []machine.Status{
		{Name: "a", DriverName: "container", State: "Running", URL: "tcp://10.0.0.2:2376"},
		{Name: "bb", DriverName: "generic", State: "Stopped"},
	}
	machine.MarkActive(rows, "tcp://10.0.0.2:2376")
	var b bytes.Buffer
	if err := format.Rows(t.Context(), &b, "", lsDefaultFormat, lsHeaders, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME   ACTIVE   DRIVER") || !strings.HasPrefix(lines[1], "a      *        container   Running   tcp://10.0.0.2:2376") {
		t.Errorf("table:\n%s", b.String())
	}
	b.Reset()
	if err := format.Rows(t.Context(), &b, "{{.Name}} {{.State}}", lsDefaultFormat, lsHeaders, rows); err != nil || b.String() != "a Running\nbb Stopped\n" {
		t.Errorf("template: %q %v", b.String(), err)
	}
	b.Reset()
	if err := format.Rows[machine.Status](t.Context(), &b, "json", lsDefaultFormat, lsHeaders, nil); err != nil || strings.TrimSpace(b.String()) != "[]" {
		t.Errorf("json of nothing: %q", b.String())
	}
	b.Reset()
	_ = format.Rows(t.Context(), &b, "json", lsDefaultFormat, lsHeaders, rows)
	var back []map[string]any
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back[0]["Name"] != "a" || back[0]["Active"] != "*" || back[1]["State"] != "Stopped" {
		t.Errorf("json: %s", b.String())
	}
	if err := format.Rows(t.Context(), &b, "{{.Name", lsDefaultFormat, lsHeaders, rows); err == nil || !strings.Contains(err.Error(), "--format") {
		t.Errorf("bad template: %v", err)
	}
}

// runIn runs the CLI against store with stdin.
func runIn(t *testing.T, store, stdin string, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("MACHINE_STORAGE_PATH", store)
	var o, e bytes.Buffer
	code := run(context.Background(), append([]string{"machine"}, args...), strings.NewReader(stdin), &o, &e)
	return code, o.String(), e.String()
}

// TestDockerMachineBehaviours: a machine named default stands in for a missing name, rm takes
// its flags after the names and its dialogue is docker-machine's, a stopped host has no URL,
// and the help starts as docker-machine's did.
func TestDockerMachineBehaviours(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	a, err := machine.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runIn(t, dir, "", "inspect"); code != 1 || !strings.Contains(stderr, `Error: No machine name(s) specified and no "default" machine exists`) {
		t.Fatalf("inspect without default: %d %q", code, stderr)
	}
	if code, _, stderr := runIn(t, dir, "", "rm"); code != 1 || !strings.Contains(stderr, "Error: Expected to get one or more machine names as arguments") {
		t.Errorf("rm without names: %d %q", code, stderr)
	}
	// A generic machine whose host does not answer (nothing listens on port 1).
	if err := a.Store.Reserve(&store.Machine{Name: "default", DriverName: "generic", Driver: []byte(`{"IPAddress":"127.0.0.1","SSHUser":"root","SSHPort":1}`),
		SSH: store.SSH{Host: "127.0.0.1", Port: 1, User: "root"}, Engine: store.EngineOptions{Port: 2376}, State: store.StateReady}); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := runIn(t, dir, "", "inspect", "-f", "{{.Name}} {{prettyjson .Driver.SSHPort}}")
	if code != 0 || stdout != "default 1\n" {
		t.Errorf("inspect of default: %d %q", code, stdout)
	}
	if code, _, stderr := runIn(t, dir, "", "url"); code != 1 || !strings.HasPrefix(stderr, "machine: Host is not running") {
		t.Errorf("url of a stopped machine: %d %q", code, stderr)
	}
	if code, _, stderr := runIn(t, dir, "", "env", "default"); code != 1 || !strings.Contains(stderr, "Error checking TLS connection: Host is not running") {
		t.Errorf("env of a stopped machine: %d %q", code, stderr)
	}
	if code, _, stderr := runIn(t, dir, "", "env", "-u", "default"); code != 1 || !strings.Contains(stderr, "Error: Expected no machine name when the -u flag is present") {
		t.Errorf("env -u NAME: %d %q", code, stderr)
	}
	if code, _, stderr := runIn(t, dir, "", "ssh", "default", "--", "true"); code != 1 || !strings.Contains(stderr, `Error: Cannot run SSH command: Host "default" is not running`) {
		t.Errorf("ssh to a stopped machine: %d %q", code, stderr)
	}
	if code, stdout, _ := runIn(t, dir, "", "ssh", "-h"); code != 0 || !strings.Contains(stdout, "ssh") {
		t.Errorf("ssh -h: %d %q", code, stdout)
	}
	// Declined: nothing removed, exit 0.
	code, stdout, _ = runIn(t, dir, "n\n", "rm", "default")
	if code != 0 || !strings.Contains(stdout, "About to remove default") || !strings.Contains(stdout, "Are you sure? (y/n): ") || !a.Exists("default") {
		t.Errorf("rm declined: %d %q", code, stdout)
	}
	// Flags after the name.
	code, stdout, _ = runIn(t, dir, "", "rm", "default", "-y")
	if code != 0 || !strings.Contains(stdout, "Successfully removed default") || a.Exists("default") {
		t.Errorf("rm NAME -y: %d %q", code, stdout)
	}
	// -f implies -y, and a missing machine is no error with it.
	if code, _, _ := runIn(t, dir, "", "rm", "-f", "nosuch"); code != 0 {
		t.Errorf("rm -f of a missing machine: exit %d", code)
	}
	// A damaged record: rm -f drops it (-f: "even if machine cannot be removed").
	if err := os.MkdirAll(filepath.Join(dir, "machines", "dmg"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "machines", "dmg", "config.json"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runIn(t, dir, "", "rm", "-f", "-y", "dmg"); code != 0 || a.Exists("dmg") {
		t.Errorf("rm -f of a damaged record: %d %q %q", code, stdout, stderr)
	}
	// docker-machine's global flags: accepted, or refused with the reason.
	if code, _, stderr := runIn(t, dir, "", "--native-ssh", "ls", "-q"); code != 0 {
		t.Errorf("--native-ssh: %d %q", code, stderr)
	}
	if code, _, stderr := runIn(t, dir, "", "--tls-ca-cert", "/x", "ls"); code != 1 || !strings.Contains(stderr, "--tls-ca-cert is not supported") {
		t.Errorf("--tls-ca-cert: %d %q", code, stderr)
	}
	for _, args := range [][]string{nil, {"--help"}} {
		code, stdout, _ := runIn(t, dir, "", args...)
		if code != 0 || !strings.HasPrefix(stdout, "Usage: machine [OPTIONS] COMMAND [arg...]\n\nCreate and manage machines running Docker.\n") {
			t.Errorf("help %v: %d %q", args, code, stdout)
		}
	}
}

func TestHoistFlags(t *testing.T) {
	app := newApp("machine", strings.NewReader(""), io.Discard, io.Discard)
	for in, want := range map[string]string{
		"machine -s x rm a -y b --force=true":                        "machine -s x rm -y --force=true a b",
		"machine swarm status m1 --format json":                      "machine swarm status --format json m1",
		"machine -s /tmp/s inspect m1 -f {{.Name}}":                  "machine -s /tmp/s inspect -f {{.Name}} m1",
		"machine ssh m1 ls -la":                                      "machine ssh m1 ls -la",
		"machine scp -r a m1:/tmp -q":                                "machine scp -r -q a m1:/tmp",
		"machine env m1 -- --shell":                                  "machine env m1 -- --shell",
		"machine ls --filter name=a -q":                              "machine ls --filter name=a -q",
		"machine create -d generic n1 --generic-ip-address 10.0.0.2": "machine create -d generic --generic-ip-address 10.0.0.2 n1",
		"machine nosuch a -x":                                        "machine nosuch a -x",
	} {
		if got := strings.Join(cliflags.Hoist(app, strings.Fields(in)), " "); got != want {
			t.Errorf("%q: hoisted %q, want %q", in, got, want)
		}
	}
}
