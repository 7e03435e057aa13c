//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCreateInterrupted: Ctrl-C at several moments of a container create (while the network and
// container are made, while it boots, while it is provisioned) leaves either a whole machine or
// nothing: no record, container, volume or network; and what it says is true.
func TestCreateInterrupted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	net := uniq("e2e-int-net")
	for i, after := range []time.Duration{50 * time.Millisecond, 300 * time.Millisecond, 700 * time.Millisecond, 1200 * time.Millisecond} {
		name := uniq("e2e-int") + "-" + string(rune('a'+i))
		cmd := exec.Command(machineBin, "create", "-d", "container", "--container-network", net, name)
		cmd.Env = append(cleanEnv(), "MACHINE_STORAGE_PATH="+e.store)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(after)
		_ = cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		if err == nil { // finished before the signal: a whole machine
			e.must("rm", "-y", name)
			continue
		}
		msg := stderr.String()
		if strings.TrimSpace(msg) == "" { // the signal came before the binary listened for it
			msg = "nothing was left behind"
		} else if !strings.Contains(msg, "interrupted") {
			t.Errorf("after %s: the error does not say it was interrupted: %s", after, msg)
		}
		if strings.Contains(msg, "nothing was left behind") {
			if out := e.must("ls", "-q"); strings.Contains(out, name) {
				t.Errorf("after %s: it said nothing was left, but the record is there", after)
			}
			if left := leftovers(t, []string{name}, nil); len(left) > 0 {
				t.Errorf("after %s: it said nothing was left, but %v", after, left)
			}
		} else {
			// Something was left: rm -f removes all of it.
			if r := e.run("rm", "-f", name); r.code != 0 {
				t.Errorf("after %s: rm -f: %s", after, r)
			}
			if left := leftovers(t, []string{name}, nil); len(left) > 0 {
				t.Errorf("after %s: rm -f left %v", after, left)
			}
		}
	}
	// The network the driver made goes with its last machine.
	if left := leftovers(t, nil, []string{net}); len(left) > 0 {
		t.Errorf("left %v", left)
	}
}

// interrupt runs the machine binary and sends it SIGINT after a while; it says whether the
// command had finished (exit 0) before, and returns its standard error. A process that the
// signal killed got it before its main began (the Go runtime's default: on a loaded machine,
// starting the binary can take longer than the delay): nothing of the command ran, so that
// run is tried again with the delay doubled (at most three times).
func (e *env) interrupt(after time.Duration, args ...string) (bool, string) {
	e.t.Helper()
	for try := 0; ; try++ {
		cmd := exec.Command(machineBin, args...)
		cmd.Env = append(cleanEnv(), "MACHINE_STORAGE_PATH="+e.store)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			e.t.Fatal(err)
		}
		time.Sleep(after)
		_ = cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && try < 3 {
			e.t.Logf("machine %v: SIGINT after %s came before its main (killed by it, %q): again, later", args, after, stderr.String())
			after += after
			continue
		}
		return err == nil, stderr.String()
	}
}

// oneContainerMachine is a store with one container machine, for a test that runs side by side.
func oneContainerMachine(t *testing.T, prefix string) (*env, string) {
	t.Parallel()
	e := newEnv(t)
	name := uniq(prefix)
	t.Cleanup(func() { e.run("rm", "-f", "-y", name) })
	e.must("create", "-d", "container", name)
	return e, name
}

// TestScpInterrupted: Ctrl-C during `machine scp` of a big file, either way, leaves the target as
// it was (here: a file with other content) or whole, and no partial file beside it.
func TestScpInterrupted(t *testing.T) {
	e, name := oneContainerMachine(t, "e2e-scpint")
	const size = 768 << 20
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, nil, 0o644); err != nil || os.Truncate(big, size) != nil {
		t.Fatal(err)
	}
	e.must("ssh", name, fmt.Sprintf("truncate -s %d /root/big && mkdir -p /root/in && echo old > /root/in/big", size))
	local := filepath.Join(dir, "in")
	if err := os.Mkdir(local, 0o755); err != nil {
		t.Fatal(err)
	}
	interrupted := 0
	for _, after := range []time.Duration{150 * time.Millisecond, 500 * time.Millisecond, 1200 * time.Millisecond} {
		// Up: this computer to the machine, over an existing file.
		done, msg := e.interrupt(after, "scp", "-q", big, name+":/root/in/big")
		got := e.must("ssh", name, "stat -c %s /root/in/big; ls -A /root/in")
		switch {
		case done && got == fmt.Sprintf("%d\nbig\n", size):
			e.must("ssh", name, "echo old > /root/in/big")
		case !done && got == "4\nbig\n":
			interrupted++
		default:
			t.Errorf("up, after %s (finished: %v, %s): the machine has %q", after, done, strings.TrimSpace(msg), got)
		}
		// Down: the machine to this computer, over an existing file.
		if err := os.WriteFile(filepath.Join(local, "big"), []byte("old\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		done, msg = e.interrupt(after, "scp", "-q", name+":/root/big", local)
		ents, _ := os.ReadDir(local)
		st, _ := os.Stat(filepath.Join(local, "big"))
		switch {
		case len(ents) != 1 || st == nil:
			t.Errorf("down, after %s: %s holds %v", after, local, ents)
		case done && st.Size() == size:
		case !done && st.Size() == 4:
			interrupted++
		default:
			t.Errorf("down, after %s (finished: %v, %s): the file has %d bytes", after, done, strings.TrimSpace(msg), st.Size())
		}
	}
	if interrupted == 0 {
		t.Errorf("every copy finished before its interrupt: nothing was tested (make the file bigger)")
	}
	t.Logf("%d of 6 copies interrupted mid-way", interrupted)
}

// servedCert is the certificate the engine at addr presents now (PEM).
func servedCert(t *testing.T, addr string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // only to read what it presents
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer c.Close()
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.ConnectionState().PeerCertificates[0].Raw}))
}

// TestProvisionInterrupted: Ctrl-C at several moments of `regenerate-certs` (new certificate
// placed, engine restarted) leaves a machine that the next `provision` makes whole: the engine
// then presents the certificate the host has on disk, and the docker CLI works over TLS.
func TestProvisionInterrupted(t *testing.T) {
	e, name := oneContainerMachine(t, "e2e-provint")
	addr := net.JoinHostPort(strings.TrimSpace(e.must("ip", name)), "2376")
	interrupted := 0
	for _, after := range []time.Duration{200 * time.Millisecond, 600 * time.Millisecond, 1100 * time.Millisecond, 1800 * time.Millisecond} {
		done, msg := e.interrupt(after, "regenerate-certs", "-f", name)
		if !done {
			interrupted++
			if !strings.Contains(msg, "interrupted") {
				t.Errorf("after %s: the error does not say it was interrupted: %s", after, msg)
			}
		}
		r := e.run("provision", name)
		if r.code != 0 {
			t.Fatalf("after %s: provision: %s", after, r)
		}
		onDisk := e.must("ssh", name, "cat /etc/docker/server.pem")
		if got := servedCert(t, addr); strings.TrimSpace(got) != strings.TrimSpace(onDisk) {
			t.Errorf("after %s (interrupted: %v): the engine presents another certificate than /etc/docker/server.pem: provision did not restart it\n%s", after, !done, r.stderr)
		}
		if d := e.docker(name, "version", "--format", "{{.Server.Version}}"); d.code != 0 {
			t.Errorf("after %s: docker over TLS: %s", after, d)
		}
	}
	if interrupted == 0 {
		t.Error("every regenerate-certs finished before its interrupt: nothing was tested")
	}
	t.Logf("%d of 4 runs interrupted", interrupted)
}

// bigLocalImage is an image of about 160 MB in the local engine (random bytes: nothing shrinks it).
func bigLocalImage(t *testing.T, ref string) {
	t.Helper()
	script := `set -e; d=$(mktemp -d); head -c 160M /dev/urandom > "$d/blob"; tar -C "$d" -c blob | docker -H unix:///var/run/docker.sock import - "$1" >/dev/null; rm -rf "$d"`
	if out, err := exec.Command("bash", "-c", script, "bash", ref).CombinedOutput(); err != nil {
		t.Fatalf("a big image: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "-H", "unix:///var/run/docker.sock", "rmi", ref).Run() })
}

// TestPullInterrupted: Ctrl-C while an image streams from the local engine to two nodes leaves
// each node with the whole image or without it (never a part that passes for it), says it was
// interrupted, and the next pull finishes the nodes that lack it.
func TestPullInterrupted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := uniq("e2e-pullint")
	img := "machine-e2e/" + p + ":big"
	bigLocalImage(t, img)
	names := []string{p + "-1", p + "-2"}
	createHosts(t, e, p+"-net", nil, names...)
	want := strings.TrimSpace(string(must(exec.Command("docker", "-H", "unix:///var/run/docker.sock", "image", "inspect", "--format", "{{.ID}}", img).Output())))
	interrupted := 0
	for _, after := range []time.Duration{300 * time.Millisecond, 900 * time.Millisecond, 1600 * time.Millisecond} {
		done, msg := e.interrupt(after, "pull", "--nodes", strings.Join(names, ","), "--from-local", img)
		if !done {
			interrupted++
			if !strings.Contains(msg, "interrupted") {
				t.Errorf("after %s: the error does not say it was interrupted: %s", after, msg)
			}
		}
		for _, n := range names {
			d := e.docker(n, "image", "inspect", "--format", "{{.ID}}", img)
			if got := strings.TrimSpace(d.stdout); d.code == 0 && got != want {
				t.Errorf("after %s: %s holds %s as %s, the local engine %s", after, n, img, got, want)
			}
		}
		if r := e.run("pull", "--nodes", strings.Join(names, ","), "--from-local", img); r.code != 0 {
			t.Fatalf("after %s: the next pull: %s", after, r)
		}
		for _, n := range names {
			if d := e.docker(n, "image", "inspect", "--format", "{{.ID}}", img); strings.TrimSpace(d.stdout) != want {
				t.Errorf("after %s and a pull: %s: %s", after, n, d)
			}
			e.docker(n, "rmi", img)
		}
	}
	if interrupted == 0 {
		t.Error("every pull finished before its interrupt: nothing was tested")
	}
	t.Logf("%d of 3 pulls interrupted", interrupted)
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestSwarmUpInterrupted: Ctrl-C at several moments of `swarm up` (machines being made, the swarm
// being formed) leaves what `swarm plan` describes, the next `up` finishes it, and `down` then
// removes every machine, container, volume and network.
func TestSwarmUpInterrupted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := uniq("e2e-upint")
	m, w := p+"-m", p+"-w"
	t.Cleanup(func() { e.run("rm", "-f", "-y", m, w) })
	file := filepath.Join(t.TempDir(), "cluster.yml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf("name: %s\ndriver: container\ndriver-options:\n  network: %s-net\nnodes:\n  - name: %s\n    role: manager\n  - name: %s\n", p, p, m, w)), 0o644); err != nil {
		t.Fatal(err)
	}
	interrupted := 0
	for _, after := range []time.Duration{500 * time.Millisecond, 2500 * time.Millisecond, 5 * time.Second} {
		done, msg := e.interrupt(after, "swarm", "up", "-f", file)
		if !done {
			interrupted++
			if !strings.Contains(msg, "interrupted") {
				t.Errorf("after %s: the error does not say it was interrupted: %s", after, msg)
			}
			if r := e.run("swarm", "plan", "-f", file); r.code != 0 && r.code != 2 {
				t.Errorf("after %s: plan: %s", after, r)
			}
		}
		if r := e.run("swarm", "up", "-f", file); r.code != 0 {
			t.Fatalf("after %s: the next up: %s", after, r)
		}
		if r := e.run("swarm", "plan", "-f", file); r.code != 0 {
			t.Errorf("after %s and an up: plan: %s", after, r)
		}
		if r := e.run("swarm", "down", "-f", file); r.code != 0 {
			t.Fatalf("after %s: down: %s", after, r)
		}
		if left := leftovers(t, []string{m, w}, []string{p + "-net"}); len(left) > 0 {
			t.Errorf("after %s: down left %v", after, left)
		}
	}
	if interrupted == 0 {
		t.Error("every up finished before its interrupt: nothing was tested")
	}
	t.Logf("%d of 3 ups interrupted", interrupted)
}

// interruptAt runs the machine binary and sends it SIGINT as soon as a line of its standard error
// holds want (a moment named by the command's own progress). It says whether the command
// finished (exit 0), whether want was seen, and returns its standard error.
func (e *env) interruptAt(want string, args ...string) (done, seen bool, stderr string) {
	e.t.Helper()
	cmd := exec.Command(machineBin, args...)
	cmd.Env = append(cleanEnv(), "MACHINE_STORAGE_PATH="+e.store)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	var all strings.Builder
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		all.WriteString(sc.Text() + "\n")
		if !seen && strings.Contains(sc.Text(), want) {
			seen = true
			_ = cmd.Process.Signal(syscall.SIGINT)
		}
	}
	err = cmd.Wait()
	return err == nil, seen, all.String()
}
