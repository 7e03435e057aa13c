//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDailyUse: scp both ways, machine to machine and with rsync; a Docker context the real CLI
// uses and that rm removes; lifecycle on several machines at once; active; completion scripts in
// the real shells.
func TestDailyUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := uniq("e2e-day")
	a, b := p+"-a", p+"-b"
	createHosts(t, e, p+"-net", nil, a, b)

	// A tree with modes, to a, then a -> b, then b -> here.
	src := filepath.Join(t.TempDir(), "tree")
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "sub"), 0o750))
	must(os.WriteFile(filepath.Join(src, "run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	must(os.WriteFile(filepath.Join(src, "sub", "secret"), []byte("s"), 0o600))
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	must(os.WriteFile(filepath.Join(src, "sub", "big.bin"), big, 0o644))
	e.must("scp", "-r", "-q", src, a+":/root/")
	out := e.must("ssh", a, "stat -c '%n %a' /root/tree/run.sh /root/tree/sub /root/tree/sub/secret")
	for _, w := range []string{"/root/tree/run.sh 755", "/root/tree/sub 750", "/root/tree/sub/secret 600"} {
		if !strings.Contains(out, w) {
			t.Errorf("modes on %s: want %q in\n%s", a, w, out)
		}
	}
	e.must("scp", "-r", a+":/root/tree", b+":/tmp/")
	back := filepath.Join(t.TempDir(), "back")
	e.must("scp", "-r", b+":/tmp/tree", back)
	got, err := os.ReadFile(filepath.Join(back, "sub", "big.bin"))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("the tree did not come back whole: %v", err)
	}
	if st, _ := os.Stat(filepath.Join(back, "sub", "secret")); st == nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode after the round trip: %v", st)
	}
	// Single files, both ways, and into a folder.
	e.must("scp", filepath.Join(src, "run.sh"), a+":/tmp/one.sh")
	e.must("scp", a+":/tmp/one.sh", filepath.Join(back, "one.sh"))
	if b, _ := os.ReadFile(filepath.Join(back, "one.sh")); string(b) != "#!/bin/sh\necho hi\n" {
		t.Errorf("single file: %q", b)
	}
	expectOneLineError(t, e.run("scp", src, a+":/tmp/"), "is a folder", "-r")
	// Delta copy with rsync over the machine's key and pinned host key.
	must(os.WriteFile(filepath.Join(src, "sub", "big.bin"), append(big, 'x'), 0o644))
	if r := e.run("scp", "-d", "-r", src+"/", a+":/root/tree/"); r.code != 0 {
		t.Fatalf("scp -d: %s", r)
	}
	if out := e.must("ssh", a, "stat -c %s /root/tree/sub/big.bin"); strings.TrimSpace(out) != "1048577" {
		t.Errorf("rsync did not update big.bin: %q", out)
	}

	// A Docker context for a, used by the real docker CLI, removed with the machine.
	dockerConfig := filepath.Join(t.TempDir(), "docker")
	env := []string{"DOCKER_CONFIG=" + dockerConfig}
	if r := e.runWith(env, "", "context", a); r.code != 0 {
		t.Fatal(r)
	}
	cli := func(args ...string) result {
		cmd := exec.Command("docker", args...)
		cmd.Env = append(cleanEnv(), env...)
		return runCmd(cmd, "")
	}
	if r := cli("--context", a, "info", "--format", "{{.Name}}"); r.code != 0 || strings.TrimSpace(r.stdout) != a {
		t.Fatalf("docker --context %s info: %s", a, r)
	}
	if r := cli("context", "ls", "--format", "{{.Name}}"); !strings.Contains(r.stdout, a) {
		t.Fatalf("docker context ls: %s", r)
	}

	// active.
	r := e.dockerWith(nil, "", b, "version", "--format", "{{.Server.Version}}")
	if r.code != 0 {
		t.Fatal(r)
	}
	ver := strings.TrimSpace(e.must("version", b))
	if ver != strings.TrimSpace(r.stdout) {
		t.Errorf("machine version %s = %q, docker says %q", b, ver, r.stdout)
	}
	act := exec.Command("bash", "-c", `eval "$("$0" env "$1")"; "$0" active`, machineBin, b)
	act.Env = append(cleanEnv(), "MACHINE_STORAGE_PATH="+e.store)
	if out, err := act.Output(); err != nil || strings.TrimSpace(string(out)) != b {
		t.Errorf("active: %q %v", out, err)
	}

	// Lifecycle on both at once.
	if out := e.must("stop", a, b); strings.Count(out, "stopped") != 2 {
		t.Errorf("stop: %q", out)
	}
	if out := e.must("start", a, b); strings.Count(out, "started") != 2 {
		t.Errorf("start: %q", out)
	}
	if out := e.must("restart", a, b); strings.Count(out, "restarted") != 2 {
		t.Errorf("restart: %q", out)
	}
	for _, n := range []string{a, b} {
		if r := e.docker(n, "info", "--format", "{{.Name}}"); strings.TrimSpace(r.stdout) != n {
			t.Errorf("%s after restart: %s", n, r)
		}
	}

	// Completion scripts load in the real shells and complete machine names.
	bin := filepath.Dir(machineBin)
	shEnv := append(cleanEnv(), "MACHINE_STORAGE_PATH="+e.store, "PATH="+bin+":"+os.Getenv("PATH"))
	bash := exec.Command("bash", "-c", `set -e; source <(machine completion bash); COMP_WORDS=(machine ssh ""); COMP_CWORD=2; _machine_complete; echo "${COMPREPLY[@]}"`)
	bash.Env = shEnv
	if out, err := bash.CombinedOutput(); err != nil || !strings.Contains(string(out), a) {
		t.Errorf("bash completion: %v %s", err, out)
	}
	fish := exec.Command("fish", "-c", `machine completion fish | source; and complete -C "machine ssh "`)
	fish.Env = shEnv
	if out, err := fish.CombinedOutput(); err != nil || !strings.Contains(string(out), b) {
		t.Errorf("fish completion: %v %s", err, out)
	}

	if r := e.runWith(env, "", "rm", "-y", a); r.code != 0 || !strings.Contains(r.stdout, "Docker context") {
		t.Fatalf("rm: %s", r)
	}
	if r := cli("context", "ls", "--format", "{{.Name}}"); strings.Contains(r.stdout, a) {
		t.Fatalf("rm left the context: %s", r)
	}
}
