//go:build e2e

package e2e

import (
	"context"

	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	containerdrv "github.com/machine-tools/machine/drivers/container"
)

// dmEnv runs the binary under the name docker-machine (a link, as users who switch make it), so
// that what docker-machine 0.16's scripts see is what they get.
type dmEnv struct {
	*env
	bin string
}

func newDM(t *testing.T) *dmEnv {
	e := newEnv(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "docker-machine")
	if err := os.Symlink(machineBin, bin); err != nil {
		t.Fatal(err)
	}
	return &dmEnv{env: e, bin: bin}
}

func (d *dmEnv) dm(stdin string, args ...string) result {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Env = append(cleanEnv(), "MACHINE_STORAGE_PATH="+d.store)
	return runCmd(cmd, stdin)
}

// sh runs a bash script with docker-machine on PATH, as a user's script would.
func (d *dmEnv) sh(script string) result {
	d.t.Helper()
	cmd := exec.Command("bash", "-c", "set -e\n"+script)
	cmd.Env = append(cleanEnv(), "MACHINE_STORAGE_PATH="+d.store, "PATH="+filepath.Dir(d.bin)+":"+os.Getenv("PATH"))
	return runCmd(cmd, "")
}

// expectDM checks an exit code and that stderr's last line starts with docker-machine's words.
func expectDM(t *testing.T, what string, r result, code int, prefix string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code != code || !strings.HasPrefix(lines[len(lines)-1], prefix) {
		t.Errorf("%s: want exit %d and an error starting %q, got %s", what, code, prefix, r)
	}
}

// TestDockerMachineScripts drives the binary as docker-machine through docker-machine 0.16's
// documented behaviours, on container hosts: the default machine, ssh's arguments, states,
// messages, exit codes, rm's dialogue; and names the container driver used to get wrong.
func TestDockerMachineScripts(t *testing.T) {
	t.Parallel()
	d := newDM(t)
	net := uniq("e2e-dm-net")
	t.Cleanup(func() { d.dm("", "rm", "-f", "default", "a") })

	expectDM(t, "inspect without a default machine", d.dm("", "inspect"), 1, `Error: No machine name(s) specified and no "default" machine exists`)
	expectDM(t, "rm without names", d.dm("", "rm"), 1, "Error: Expected to get one or more machine names as arguments")
	expectDM(t, "create without a name", d.dm("", "create", "-d", "container"), 1, "Error: No machine name specified")
	expectDM(t, "create with extra arguments", d.dm("", "create", "-d", "container", "x", "y"), 1, "Invalid command line. Found extra arguments [y]")
	expectDM(t, "a bad name", d.dm("", "create", "-d", "container", "bad_name"), 1, "Invalid hostname specified. Allowed hostname chars are: 0-9a-zA-Z . -")
	expectDM(t, "an unknown driver", d.dm("", "create", "-d", "hyperv", "x"), 1, `Driver "hyperv" not found`)
	expectDM(t, "a missing machine", d.dm("", "ip", "nosuch"), 1, `Docker machine "nosuch" does not exist`)
	if r := d.dm("", "--help"); r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: docker-machine [OPTIONS] COMMAND [arg...]\n\nCreate and manage machines running Docker.") {
		t.Errorf("help: %s", r)
	}
	if r := d.dm("", "ssh", "-h"); r.code != 0 || !strings.Contains(r.stdout, "Usage: docker-machine ssh") {
		t.Errorf("ssh -h: %s", r)
	}

	// The default machine: commands without a name act on it.
	if r := d.dm("", "create", "-d", "container", "--container-network", net, "default"); r.code != 0 {
		t.Fatalf("create default: %s", r)
	}
	expectDM(t, "create again", d.dm("", "create", "-d", "container", "--container-network", net, "default"), 1, `Docker machine "default" already exists`)
	ip := strings.TrimSpace(d.dm("", "ip").stdout)
	if url := strings.TrimSpace(d.dm("", "url").stdout); ip == "" || url != "tcp://"+ip+":2376" {
		t.Errorf("ip %q, url %q", ip, url)
	}
	if st := strings.TrimSpace(d.dm("", "status").stdout); st != "Running" {
		t.Errorf("status %q", st)
	}
	if r := d.dm("", "inspect", "-f", "{{prettyjson .Driver.Network}} {{json .DriverName}}"); r.code != 0 || strings.TrimSpace(r.stdout) != `"`+net+`" "container"` {
		t.Errorf("inspect templates: %s", r)
	}
	if r := d.sh(`eval "$(docker-machine env)"; docker info --format '{{.Name}}'`); r.code != 0 || strings.TrimSpace(r.stdout) != "default" {
		t.Errorf("eval $(docker-machine env); docker info: %s", r)
	}
	// ssh: -- ends ssh(1)'s options; leading options are ssh(1)'s.
	if r := d.dm("", "ssh", "default", "--", "echo", "foo"); r.code != 0 || strings.TrimSpace(r.stdout) != "foo" {
		t.Errorf("ssh default -- echo foo: %s", r)
	}
	if r := d.dm("", "ssh", "default", "-C", "echo", "foo"); r.code != 0 || strings.TrimSpace(r.stdout) != "foo" {
		t.Errorf("ssh default -C echo foo: %s", r)
	}
	if r := d.dm("", "--native-ssh", "ssh", "default", "exit 3"); r.code != 3 {
		t.Errorf("--native-ssh ssh: exit %d", r.code)
	}

	// upgrade: the engine is the newest Debian's packages have, so nothing changes.
	if r := d.dm("", "upgrade"); r.code != 0 || !strings.Contains(r.stdout, "nothing to upgrade") {
		t.Errorf("upgrade: %s", r)
	}
	// mount: sshfs over the machine's key and pinned host key.
	mnt := filepath.Join(t.TempDir(), "mnt")
	if r := d.dm("", "mount", "default:/etc", mnt); r.code != 0 {
		t.Errorf("mount: %s", r)
	} else {
		if b, err := os.ReadFile(filepath.Join(mnt, "hostname")); err != nil || strings.TrimSpace(string(b)) != "default" {
			t.Errorf("the mounted /etc/hostname: %q %v", b, err)
		}
		if r := d.dm("", "mount", "-u", "default:/etc", mnt); r.code != 0 {
			t.Errorf("mount -u: %s", r)
		}
		if entries, _ := os.ReadDir(mnt); len(entries) != 0 {
			t.Errorf("still mounted: %d entries", len(entries))
		}
	}

	// scp takes docker-machine's [USER@]MACHINE:PATH.
	local := filepath.Join(t.TempDir(), "hostname")
	if r := d.dm("", "scp", "root@default:/etc/hostname", local); r.code != 0 {
		t.Errorf("scp root@default:/etc/hostname: %s", r)
	} else if b, _ := os.ReadFile(local); strings.TrimSpace(string(b)) != "default" {
		t.Errorf("copied %q", b)
	}

	// States.
	expectDM(t, "start of a running machine", d.dm("", "start"), 1, `Machine "default" is already running.`)
	if r := d.dm("", "stop"); r.code != 0 {
		t.Fatalf("stop: %s", r)
	}
	expectDM(t, "stop of a stopped machine", d.dm("", "stop"), 1, `Machine "default" is already stopped.`)
	expectDM(t, "url of a stopped machine", d.dm("", "url"), 1, "Host is not running")
	expectDM(t, "env of a stopped machine", d.dm("", "env"), 1, "Error checking TLS connection: Host is not running")
	expectDM(t, "ssh to a stopped machine", d.dm("", "ssh", "default", "true"), 1, `Error: Cannot run SSH command: Host "default" is not running`)
	expectDM(t, "version of a stopped machine", d.dm("", "version", "default"), 1, "Host is not running")
	if st := strings.TrimSpace(d.dm("", "status").stdout); st != "Stopped" {
		t.Errorf("status after stop %q", st)
	}
	if r := d.dm("", "start"); r.code != 0 {
		t.Fatalf("start: %s", r)
	}

	// rm: declining exits 0 and keeps it; flags may follow the names.
	if r := d.dm("n\n", "rm", "default"); r.code != 0 || !strings.Contains(r.stdout, "Are you sure? (y/n)") {
		t.Errorf("rm declined: %s", r)
	}
	if r := d.dm("", "ls", "-q"); !strings.Contains(r.stdout, "default") {
		t.Errorf("declining removed it: %s", r)
	}
	if r := d.dm("", "rm", "default", "-y"); r.code != 0 || !strings.Contains(r.stdout, "Successfully removed default") {
		t.Errorf("rm default -y: %s", r)
	}
	if r := d.dm("", "rm", "-f", "default"); r.code != 0 {
		t.Errorf("rm -f of a removed machine: %s", r)
	}

	// Names the container driver got wrong: one character, and a prefix of a container's ID.
	if r := d.dm("", "create", "-d", "container", "--container-network", net, "a"); r.code != 0 {
		t.Fatalf("create a: %s", r)
	}
	if h := strings.TrimSpace(d.dm("", "ssh", "a", "hostname").stdout); h != "a" {
		t.Errorf("the one-letter machine's hostname is %q", h)
	}
	id := strings.TrimSpace(runDocker(t, nil, "inspect", "-f", "{{.Id}}", "machine-a").stdout)
	prefix := id[:2]
	t.Cleanup(func() { d.dm("", "rm", "-f", prefix) })
	if len(id) < 2 {
		t.Fatalf("no container for machine a: %q", id)
	}
	if r := d.dm("", "create", "-d", "container", "--container-network", net, prefix); r.code != 0 {
		t.Errorf("a machine named after a prefix of another container's ID (%s): %s", prefix, r)
	}
	if r := d.dm("", "rm", "-y", prefix); r.code != 0 {
		t.Errorf("rm %s: %s", prefix, r)
	}
	if st := strings.TrimSpace(d.dm("", "status", "a").stdout); st != "Running" {
		t.Errorf("removing %s touched a: %q", prefix, st)
	}
	// A create that fails leaves nothing behind, and rm -f -y cleans up what a record names.
	if r := d.dm("", "create", "-d", "container", "--container-network", net, "--container-image", "nosuch:1", "b"); r.code == 0 {
		t.Errorf("a create from a missing image succeeded")
	}
	d.dm("", "rm", "-f", "-y", "b")
	if left := exactLeftovers(t, "b"); left != "" {
		t.Errorf("left behind: %s", left)
	}
	if r := d.dm("", "rm", "-y", "a"); r.code != 0 {
		t.Errorf("rm a: %s", r)
	}
	if left := exactLeftovers(t, "a"); left != "" {
		t.Errorf("left behind: %s", left)
	}
}

// exactLeftovers lists the container and volume of a one-letter machine, matched by exact name
// (a one-letter name given to the engine as it is also matches container IDs).
func exactLeftovers(t *testing.T, name string) string {
	c := runDocker(t, nil, "ps", "-aq", "--filter", "name=^/machine-"+name+"$").stdout
	v := runDocker(t, nil, "volume", "ls", "-q", "--filter", "name=^"+name+"-var-lib-docker$").stdout
	return strings.TrimSpace(c + v)
}

// TestDockerMachineScriptsGeneric: the same behaviours with the generic driver, on a host whose
// engine is there already (docker-machine's generic driver's usual case).
func TestDockerMachineScriptsGeneric(t *testing.T) {
	t.Parallel()
	d := newDM(t)
	key, pub := sshKey(t, t.TempDir(), "id_user")
	tb := testbedHostOf(t, containerdrv.VariantDocker, uniq("e2e-dmg-host"), uniq("e2e-dmg-net"), "", "", pub)
	t.Cleanup(func() { d.dm("", "rm", "-f", "default") })

	if r := d.dm("", "create", "-d", "generic", "--generic-ip-address", tb.IP, "--generic-ssh-key", key, "default"); r.code != 0 {
		t.Fatalf("create: %s", r)
	}
	if r := d.sh(`eval "$(docker-machine env)"; docker info --format '{{.Name}}'`); r.code != 0 || !strings.HasPrefix(strings.TrimSpace(r.stdout), "e2e-dmg-host") {
		t.Errorf("eval $(docker-machine env); docker info: %s", r)
	}
	if u := strings.TrimSpace(d.dm("", "url").stdout); u != "tcp://"+tb.IP+":2376" {
		t.Errorf("url %q", u)
	}
	if r := d.dm("", "ssh", "default", "--", "echo", "foo"); r.code != 0 || strings.TrimSpace(r.stdout) != "foo" {
		t.Errorf("ssh -- echo foo: %s", r)
	}
	if r := d.dm("", "ssh", "default", "-C", "echo", "foo"); r.code != 0 || strings.TrimSpace(r.stdout) != "foo" {
		t.Errorf("ssh -C echo foo: %s", r)
	}
	expectDM(t, "start of a generic machine", d.dm("", "start"), 1, "generic driver does not support start")
	if r := d.dm("", "upgrade"); r.code != 0 || !strings.Contains(r.stdout, "nothing to upgrade") {
		t.Errorf("upgrade: %s", r)
	}
	if r := d.dm("", "inspect", "-f", "{{.Driver.IPAddress}}"); strings.TrimSpace(r.stdout) != tb.IP {
		t.Errorf("inspect: %s", r)
	}
	if r := d.dm("y\n", "rm", "default"); r.code != 0 || !strings.Contains(r.stdout, "Successfully removed default") {
		t.Errorf("rm, answered y: %s", r)
	}
	// The host itself is not the driver's to remove: it still answers.
	if r := runDocker(t, nil, "exec", tb.ContainerName, "true"); r.code != 0 {
		t.Errorf("the generic host went with its record: %s", r)
	}
	expectDM(t, "inspect after rm", d.dm("", "inspect"), 1, `Error: No machine name(s) specified and no "default" machine exists`)
}
