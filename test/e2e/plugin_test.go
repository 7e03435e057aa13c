//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	containerdrv "github.com/machine-tools/machine/drivers/container"
)

// dockerMachine is docker-machine 0.16.2 built from its source (shared/plugins, beside the
// repository): the real plug-in server of its core drivers.
func dockerMachine(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "..", "shared", "plugins", "docker-machine"))
	if err == nil {
		_, err = os.Stat(p)
	}
	if err != nil {
		t.Fatalf("docker-machine 0.16.2 (the real plug-in server) is not beside the repository: %v", err)
	}
	return p
}

// pluginPath is a folder of docker-machine-driver-NAME binaries for a test, on PATH in front:
// dmNAME serves docker-machine's core driver NAME (a wrapper as docker-machine starts its own),
// and the scripts given stand for broken plug-ins.
func pluginPath(t *testing.T, scripts map[string]string) []string {
	t.Helper()
	dir := t.TempDir()
	dm := dockerMachine(t)
	for _, core := range []string{"generic", "none", "virtualbox"} {
		scripts["dm"+core] = "MACHINE_PLUGIN_DRIVER_NAME=" + core + " exec " + dm + ` "$@"`
	}
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, "docker-machine-driver-"+name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"PATH=" + dir + ":" + os.Getenv("PATH")}
}

// pluginProcesses lists the processes still running a plug-in of dir's.
func pluginProcesses(t *testing.T, marker string) []string {
	out, _ := exec.Command("ps", "-eo", "pid,args").Output()
	var left []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, marker) && !strings.Contains(l, "ps -eo") {
			left = append(left, strings.TrimSpace(l))
		}
	}
	return left
}

// TestPluginGeneric: docker-machine's own generic driver, served as a plug-in by docker-machine
// 0.16.2, makes a testbed host a machine: its flags from GetCreateFlags (in create --help), its
// create, machine's provisioning, docker over TLS, ssh, its refusal to stop in its own words,
// rm; no plug-in process is left.
func TestPluginGeneric(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	path := pluginPath(t, map[string]string{})
	keys := t.TempDir()
	key, pub := sshKey(t, keys, "id_user")
	tbd := testbedHostOf(t, containerdrv.VariantDocker, uniq("e2e-plug-host"), uniq("e2e-plug-net"), "", "", pub)
	name := uniq("e2e-plug")
	t.Cleanup(func() { e.runWith(path, "", "rm", "-f", "-y", name) })

	help := e.runWith(path, "", "create", "-d", "dmgeneric", "--help")
	for _, want := range []string{"--generic-ip-address value", "dmgeneric: IP Address of machine [$GENERIC_IP_ADDRESS]", "--generic-ssh-user value", `(default: "root")`} {
		if !strings.Contains(help.stdout, want) {
			t.Errorf("create -d dmgeneric --help lacks %q:\n%s", want, help.stdout)
		}
	}
	r := e.runWith(path, "", "create", "-d", "dmgeneric", "--generic-ip-address", tbd.IP, "--generic-ssh-key", key, name)
	if r.code != 0 {
		t.Fatalf("create through the plug-in: %s", r)
	}
	if !strings.Contains(r.stderr, "("+name+") a plug-in cannot tell its host's SSH key: the key the host offers now is pinned") {
		t.Errorf("the create should say the host key is pinned at first contact: %s", r.stderr)
	}
	if !strings.Contains(r.stderr, "("+name+") Importing SSH key...") {
		t.Errorf("the plug-in's own log should show as progress: %s", r.stderr)
	}
	if d := e.dockerWith(path, "", name, "info", "--format", "{{.Labels}}"); d.code != 0 || !strings.Contains(d.stdout, "provider=dmgeneric") {
		t.Errorf("docker over TLS: %s", d)
	}
	if out := e.runWith(path, "", "ssh", name, "echo", "hi"); strings.TrimSpace(out.stdout) != "hi" {
		t.Errorf("ssh: %s", out)
	}
	if ls := e.runWith(path, "", "ls", "--format", "{{.Name}} {{.DriverName}} {{.State}}"); !strings.Contains(ls.stdout, name+" dmgeneric Running") {
		t.Errorf("ls: %s", ls)
	}
	expectOneLineError(t, e.runWith(path, "", "stop", name), "generic driver does not support stop")
	if r := e.runWith(path, "", "rm", "-y", name); r.code != 0 {
		t.Errorf("rm: %s", r)
	}
	// The same plug-in from a cluster file (options by its flags' names).
	file := filepath.Join(keys, "cluster.yml")
	cluster := "name: " + name + "\nnodes:\n  - name: " + name + "\n    role: manager\n    driver: dmgeneric\n    driver-options: {generic-ip-address: \"" + tbd.IP + "\", generic-ssh-key: \"" + key + "\"}\n"
	if err := os.WriteFile(file, []byte(cluster), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.runWith(path, "", "swarm", "up", "-f", file); r.code != 0 {
		t.Fatalf("swarm up of a plug-in's machine: %s", r)
	}
	if r := e.runWith(path, "", "swarm", "plan", "-f", file); r.code != 0 {
		t.Errorf("plan after: %s", r)
	}
	if r := e.runWith(path, "", "swarm", "down", "-f", file); r.code != 0 {
		t.Errorf("swarm down: %s", r)
	}
	if left := pluginProcesses(t, dockerMachine(t)); len(left) > 0 {
		t.Errorf("plug-in processes left: %v", left)
	}
}

// TestPluginFaults: a missing plug-in is docker-machine's own line; a plug-in that exits as it
// starts, one that never prints its address, one that prints something else, and Ctrl-C while
// one starts are one line each, with no record and no process left.
func TestPluginFaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	marker := uniq("plugfault")
	path := pluginPath(t, map[string]string{
		"crash":  "echo 'panic: cannot read my config' >&2; exit 2",
		"silent": "exec sleep 60 # " + marker,
		"chatty": "echo 'hello, I am not a plug-in'; exec sleep 60 # " + marker,
	})
	expectOneLineError(t, e.runWith(path, "", "create", "-d", "nosuch", "x1"), `Driver "nosuch" not found. Do you have the plugin binary "docker-machine-driver-nosuch" accessible in your PATH?`)
	expectOneLineError(t, e.runWith(path, "", "create", "-d", "crash", "x1"), "docker-machine-driver-crash exited as it started", "panic: cannot read my config")
	start := time.Now()
	expectOneLineError(t, e.runWith(path, "", "create", "-d", "silent", "x1"), "docker-machine-driver-silent printed no address within 10s")
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("a silent plug-in took %s to be given up on", took)
	}
	expectOneLineError(t, e.runWith(path, "", "create", "-d", "chatty", "x1"), `printed "hello, I am not a plug-in" where its address belongs`)
	// docker-machine's none driver makes no host and has no SSH: machine cannot provision it.
	expectOneLineError(t, e.runWith(path, "", "create", "-d", "dmnone", "--url", "tcp://127.0.0.1:1", "x1"), "nothing was left behind")
	// Ctrl-C while the plug-in is started.
	cmd := exec.Command(machineBin, "create", "-d", "silent", "x1")
	cmd.Env = append(append(cleanEnv(), "MACHINE_STORAGE_PATH="+e.store), path...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	_ = cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err == nil || !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("Ctrl-C while a plug-in starts: %v %s", err, stderr.String())
	}
	if out := e.must("ls", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("records left: %q", out)
	}
	time.Sleep(500 * time.Millisecond)
	if left := pluginProcesses(t, marker); len(left) > 0 {
		t.Errorf("plug-in processes left: %v", left)
	}
}

// TestPluginStoppedInCreate: a plug-in killed in the middle of its Create, and Ctrl-C while a
// plug-in's Create runs: one line each, the plug-in's Remove called (after its Create finished,
// for Ctrl-C), no record and no process left. The plug-in is a stand-in whose Create takes a
// while (test/fakeplugin): docker-machine's own drivers that run here create at once.
func TestPluginStoppedInCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "docker-machine-driver-"+uniq("fake"))
	if out, err := exec.Command("go", "build", "-o", bin, "../fakeplugin").CombinedOutput(); err != nil {
		t.Fatalf("building the stand-in plug-in: %v %s", err, out)
	}
	driver := strings.TrimPrefix(filepath.Base(bin), "docker-machine-driver-")
	for _, c := range []struct {
		name, createTakes string
		stop              func(cmd *exec.Cmd)
		want              string
	}{
		{"killed", "60s", func(*exec.Cmd) { _ = exec.Command("pkill", "-KILL", "-f", bin).Run() }, "exited during Create"},
		{"interrupted", "3s", func(cmd *exec.Cmd) { _ = cmd.Process.Signal(syscall.SIGINT) }, "interrupted"},
	} {
		notes := t.TempDir()
		cmd := exec.Command(machineBin, "create", "-d", driver, "x-"+c.name)
		cmd.Env = append(cleanEnv(), "MACHINE_STORAGE_PATH="+e.store, "PATH="+dir+":"+os.Getenv("PATH"), "FAKEPLUGIN_DIR="+notes, "FAKEPLUGIN_CREATE="+c.createTakes)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if _, err := os.Stat(filepath.Join(notes, "create-started")); err == nil {
				break
			}
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				t.Fatalf("%s: the plug-in's Create never started: %s", c.name, stderr.String())
			}
		}
		c.stop(cmd)
		err := cmd.Wait()
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if last := lines[len(lines)-1]; err == nil || !strings.Contains(last, c.want) {
			t.Errorf("%s: %v, last line %q", c.name, err, last)
		}
		if _, err := os.Stat(filepath.Join(notes, "removed")); err != nil {
			t.Errorf("%s: the plug-in's Remove was not called", c.name)
		}
		if c.name == "interrupted" {
			if _, err := os.Stat(filepath.Join(notes, "created")); err != nil {
				t.Errorf("interrupted: Remove was called before the plug-in's Create had finished")
			}
		}
		if out := e.must("ls", "-q"); strings.TrimSpace(out) != "" {
			t.Errorf("%s: records left: %q", c.name, out)
		}
		time.Sleep(300 * time.Millisecond)
		if left := pluginProcesses(t, bin); len(left) > 0 {
			t.Errorf("%s: plug-in processes left: %v", c.name, left)
		}
	}
}

// TestPluginVirtualBoxRealVBoxManage: docker-machine's own VirtualBox driver, served as a plug-in,
// against the real VirtualBox of the VirtualBox tests' image (no kernel driver: no VM can start):
// its checks and its create run up to startvm, whose failure is one line, and its Remove (called
// by machine) leaves no VM, disk or record.
func TestPluginVirtualBoxRealVBoxManage(t *testing.T) {
	t.Parallel()
	b := newVBoxBox(t)
	b.cp(machineBin, b.name+":/usr/local/bin/machine")
	b.cp(dockerMachine(t), b.name+":/usr/local/bin/docker-machine")
	// Debian's /usr/bin/VBoxManage wrapper prints a warning before every answer (no /dev/vboxdrv),
	// which docker-machine's version check cannot read: its plug-in gets VirtualBox's own binary.
	setup := `printf '#!/bin/sh\nPATH=/usr/lib/virtualbox:$PATH MACHINE_PLUGIN_DRIVER_NAME=virtualbox exec /usr/local/bin/docker-machine "$@"\n' > /usr/local/bin/docker-machine-driver-dmvirtualbox &&
chmod +x /usr/local/bin/docker-machine-driver-dmvirtualbox &&
ip link add vboxnet0 type bridge && ip addr add ` + realVBoxCIDR + ` dev vboxnet0 && ip link set vboxnet0 up &&
mkdir -p /tmp/iso && echo b2d > /tmp/iso/version && genisoimage -quiet -V b2d-v1 -o /tmp/b2d.iso /tmp/iso`
	if r := b.sh(setup); r.code != 0 {
		t.Fatalf("setting up: %s", r)
	}
	r := b.sh("machine create -d dmvirtualbox --virtualbox-boot2docker-url file:///tmp/b2d.iso --virtualbox-no-vtx-check --virtualbox-hostonly-cidr " + realVBoxCIDR + " vbp")
	last := lastLine(r.stderr)
	if r.code != 1 || !strings.Contains(last, "startvm vbp --type headless failed: VBoxManage: error: The virtual machine 'vbp' has terminated unexpectedly") || !strings.Contains(last, "nothing was left behind") {
		t.Errorf("create through docker-machine's VirtualBox plug-in without the kernel driver: %s", r)
	}
	leftovers := `V=/usr/lib/virtualbox/VBoxManage; $V list vms; $V list hdds; machine ls -q; pgrep -fl docker-machine`
	if r := b.sh(leftovers); strings.TrimSpace(r.stdout) != "" {
		t.Errorf("left behind after the failed create: %s", r)
	}
}
