package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

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

// TestCreateFlagsComeFromTheOptionTables: every driver option is a flag named --DRIVER-OPTION,
// with its environment variable and default.
func TestCreateFlagsComeFromTheOptionTables(t *testing.T) {
	flags := map[string]cli.Flag{}
	for _, f := range createCommand().Flags {
		flags[f.Names()[0]] = f
	}
	for _, reg := range machine.Drivers() {
		for _, o := range reg.Options {
			if flags[reg.Name+"-"+o.Name] == nil {
				t.Errorf("no flag --%s-%s", reg.Name, o.Name)
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
	app := &cli.App{Flags: optionFlags("generic", "", reg.Options), Action: func(c *cli.Context) error {
		got = givenOptions(c, "generic", reg.Options)
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
	for args, want := range map[string]string{
		"create -d nosuch m1": `unknown driver "nosuch"`,
		"create -d virtualbox --virtualbox-share-folder /x m1":                     "--virtualbox-share-folder is not supported: machine does not share host folders",
		"create -d generic m1":                                                     "--generic-ip-address",
		"create -d generic --generic-ip-address h --engine-registry-ca nocolon m1": "HOST:PORT=FILE",
		"create":               "exactly one machine name",
		"create -d generic -x": "flag provided but not defined",
	} {
		code, _, stderr := runCLI(t, strings.Fields(args)...)
		if code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("%s: exit %d, stderr %q (want %q)", args, code, stderr, want)
		}
		if !strings.Contains(args, "-x") && !strings.Contains(args, "invalid") && strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%s: more than one line: %q", args, stderr)
		}
	}
}

func TestFilters(t *testing.T) {
	f, err := parseFilters([]string{"driver=container", "state=running", "label=zone=a", "swarm=manager"})
	if err != nil {
		t.Fatal(err)
	}
	row := lsRow{Status: machine.Status{Name: "a", DriverName: "container", State: "Running", Swarm: "manager", Labels: []string{"zone=a"}}}
	if !f.match(row) || !f.needState() {
		t.Error("row a should match")
	}
	row.Labels = []string{"zone=b"}
	if f.match(row) {
		t.Error("a row with another label matched")
	}
	if _, err := parseFilters([]string{"colour=red"}); err == nil || !strings.Contains(err.Error(), "driver=NAME") {
		t.Errorf("bad filter: %v", err)
	}
	if q, _ := parseFilters([]string{"name=a"}); q.needState() {
		t.Error("a name filter needs no state")
	}
}

func TestPrintRows(t *testing.T) {
	rows := []lsRow{
		{Status: machine.Status{Name: "a", DriverName: "container", State: "Running", URL: "tcp://10.0.0.2:2376"}, Active: "*"},
		{Status: machine.Status{Name: "bb", DriverName: "generic", State: "Stopped"}, Active: "-"},
	}
	var b bytes.Buffer
	if err := printRows(&b, "", rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME   ACTIVE   DRIVER") || !strings.HasPrefix(lines[1], "a      *        container   Running   tcp://10.0.0.2:2376") {
		t.Errorf("table:\n%s", b.String())
	}
	b.Reset()
	if err := printRows(&b, "{{.Name}} {{.State}}", rows); err != nil || b.String() != "a Running\nbb Stopped\n" {
		t.Errorf("template: %q %v", b.String(), err)
	}
	b.Reset()
	if err := printRows(&b, "json", nil); err != nil || strings.TrimSpace(b.String()) != "[]" {
		t.Errorf("json of nothing: %q", b.String())
	}
	b.Reset()
	_ = printRows(&b, "json", rows)
	var back []map[string]any
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back[0]["Name"] != "a" || back[0]["Active"] != "*" || back[1]["State"] != "Stopped" {
		t.Errorf("json: %s", b.String())
	}
	if err := printRows(&b, "{{.Name", rows); err == nil || !strings.Contains(err.Error(), "--format") {
		t.Errorf("bad template: %v", err)
	}
}

// TestInspectTemplates: docker-machine's json and prettyjson functions, and a missing field is
// an error.
func TestInspectTemplates(t *testing.T) {
	rec := map[string]any{"Name": "a", "Driver": map[string]any{"IPAddress": "10.0.0.5"}}
	var b bytes.Buffer
	if err := renderTemplate(&b, "{{prettyjson .Driver}}", rec); err != nil || b.String() != "{\n  \"IPAddress\": \"10.0.0.5\"\n}\n" {
		t.Errorf("prettyjson: %q %v", b.String(), err)
	}
	b.Reset()
	if err := renderTemplate(&b, "{{json .Driver}} {{.Driver.IPAddress}}", rec); err != nil || b.String() != "{\"IPAddress\":\"10.0.0.5\"} 10.0.0.5\n" {
		t.Errorf("json: %q %v", b.String(), err)
	}
	b.Reset()
	if err := renderTemplate(&b, "{{.Nosuch}}", rec); err == nil || b.Len() != 0 {
		t.Errorf("a missing field printed %q, %v", b.String(), err)
	}
}
