//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkSwarmBadDay: backup, restore and recover of a 5-node swarm (3 managers, 2 workers, a
// replicated and a global service) with `machine`, against Docker's documented steps done by
// hand with the docker CLI and OpenSSH (through `machine ssh-config`), side by side on the same
// hosts. Reported: the total, the time the copied manager was out (backup), and the time until
// the services had all their tasks running again, counted from the command's start (restore,
// recover). Run with -benchtime=1x: each iteration takes a minute.
func BenchmarkSwarmBadDay(b *testing.B) {
	e := benchEnv(b)
	p := uniq("bench-bd")
	img := "machine-bench/" + p + ":1"
	localImage(b, img)
	names := []string{p + "-m1", p + "-m2", p + "-m3", p + "-w1", p + "-w2"}
	m1, m2, m3 := names[0], names[1], names[2]
	b.Cleanup(func() { e.run(append([]string{"rm", "-f", "-y"}, names...)...) })
	file := filepath.Join(b.TempDir(), "cluster.yml")
	content := fmt.Sprintf("name: %s\ndriver: container\ndriver-options: {network: %s-net}\nswarm: {routing-mesh: false}\nnodes:\n  - {name: %s, role: manager}\n  - {name: %s, role: manager}\n  - {name: %s, role: manager}\n  - {name: %s}\n  - {name: %s}\nimages:\n  - {name: %s, source: local}\n",
		p, p, names[0], names[1], names[2], names[3], names[4], img)
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		b.Fatal(err)
	}
	up := func() {
		b.Helper()
		if r := e.run("swarm", "up", "-f", file); r.code != 0 {
			b.Fatalf("swarm up: %s", r)
		}
		for _, svc := range [][]string{
			{"--name", "app", "--replicas", "2", "--constraint", "node.role==worker"},
			{"--name", "g", "--mode", "global"},
		} {
			args := append([]string{"service", "create", "-q", "--detach", "--endpoint-mode", "dnsrr"}, svc...)
			if r := e.docker(m1, append(args, img, "sleep", "3600")...); r.code != 0 {
				b.Fatalf("service create: %s", r)
			}
		}
		waitServices(b, e, m1, time.Now())
	}
	down := func() {
		b.Helper()
		if r := e.run("swarm", "down", "--keep-machines", "-f", file); r.code != 0 {
			b.Fatalf("swarm down: %s", r)
		}
	}
	up()
	sshConf := filepath.Join(b.TempDir(), "ssh.conf")
	writeSSHConfig := func() {
		b.Helper()
		if err := os.WriteFile(sshConf, []byte(e.must(append([]string{"ssh-config"}, names...)...)), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	writeSSHConfig()
	ssh := func(host, cmd string, stdin, stdout *os.File) {
		b.Helper()
		c := exec.Command("ssh", "-F", sshConf, "-o", "BatchMode=yes", host, cmd)
		c.Stdin, c.Stdout = stdin, stdout
		var stderr strings.Builder
		c.Stderr = &stderr
		if err := c.Run(); err != nil {
			b.Fatalf("ssh %s %q: %v %s", host, cmd, err, stderr.String())
		}
	}
	dockerMust := func(host string, args ...string) string {
		b.Helper()
		r := e.docker(host, args...)
		if r.code != 0 {
			b.Fatalf("docker %v on %s: %s", args, host, r)
		}
		return strings.TrimSpace(r.stdout)
	}
	ip := func(host string) string { return strings.TrimSpace(e.must("ip", host)) }

	backup := filepath.Join(b.TempDir(), "swarm.backup")
	outFor := regexp.MustCompile(`was out for ([0-9.]+)s`)
	b.Run("backup/machine", func(b *testing.B) {
		for b.Loop() {
			_ = os.Remove(backup)
			r := e.run("swarm", "backup", "-f", file, "-o", backup)
			if r.code != 0 {
				b.Fatalf("backup: %s", r)
			}
			if m := outFor.FindStringSubmatch(r.stdout + r.stderr); m != nil {
				out, _ := strconv.ParseFloat(m[1], 64)
				b.ReportMetric(out, "out-s")
			}
		}
	})
	handState, handFrom := filepath.Join(b.TempDir(), "swarm.tar.gz"), ""
	b.Run("backup/by-hand", func(b *testing.B) {
		for b.Loop() {
			// Docker's steps: on a manager that is not the leader, stop the engine, copy
			// /var/lib/docker/swarm, start the engine; then wait until it is a manager again.
			from := m2
			if strings.Contains(dockerMust(m1, "node", "inspect", m2, "--format", "{{.ManagerStatus.Leader}}"), "true") {
				from = m3
			}
			f, err := os.Create(handState)
			if err != nil {
				b.Fatal(err)
			}
			stopped := time.Now()
			ssh(from, "systemctl stop docker.socket docker", nil, nil)
			ssh(from, "tar -C /var/lib/docker -czf - swarm", nil, f)
			f.Close()
			ssh(from, "systemctl start docker", nil, nil)
			for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
				if r := e.docker(m1, "node", "inspect", from, "--format", "{{.ManagerStatus.Reachability}}"); strings.TrimSpace(r.stdout) == "reachable" {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("%s not reachable again", from)
				}
			}
			b.ReportMetric(time.Since(stopped).Seconds(), "out-s")
			handFrom = from
		}
	})
	if b.Failed() {
		return
	}
	// timed runs a machine command and reports how long after its start the services ran again.
	timed := func(b *testing.B, args ...string) {
		b.Helper()
		began := time.Now()
		if r := e.run(args...); r.code != 0 {
			b.Fatalf("%v: %s", args, r)
		}
		b.ReportMetric(waitServices(b, e, m1, began).Seconds(), "services-s")
	}
	b.Run("restore/machine", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			down()
			b.StartTimer()
			timed(b, "swarm", "restore", "-f", file, backup)
		}
	})
	b.Run("restore/by-hand", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			down()
			b.StartTimer()
			began := time.Now()
			// Docker's steps on one manager: stop the engine, put the backup's swarm state in
			// place, start it, force a new cluster, take the old nodes out, join the others.
			target := handFrom // the host the state came from: at the address its raft has
			f, err := os.Open(handState)
			if err != nil {
				b.Fatal(err)
			}
			ssh(target, "systemctl stop docker.socket docker && rm -rf /var/lib/docker/swarm", nil, nil)
			ssh(target, "tar -C /var/lib/docker -xzf -", f, nil)
			f.Close()
			ssh(target, "systemctl start docker", nil, nil)
			dockerMust(target, "swarm", "init", "--force-new-cluster", "--advertise-addr", ip(target))
			self := dockerMust(target, "info", "--format", "{{.Swarm.NodeID}}")
			for _, id := range strings.Fields(dockerMust(target, "node", "ls", "-q")) {
				if id != self {
					_ = e.docker(target, "node", "demote", id)
					dockerMust(target, "node", "rm", "--force", id)
				}
			}
			for _, role := range []string{"manager", "worker"} {
				token := dockerMust(target, "swarm", "join-token", "-q", role)
				for _, n := range names {
					if n == target || (role == "manager") != (n == m1 || n == m2 || n == m3) {
						continue
					}
					dockerMust(n, "swarm", "join", "--token", token, "--advertise-addr", ip(n), ip(target)+":2377")
				}
			}
			b.ReportMetric(waitServices(b, e, target, began).Seconds(), "services-s")
		}
	})
	saved := filepath.Join(b.TempDir(), "img.tar")
	if out, err := exec.Command("docker", "-H", "unix:///var/run/docker.sock", "save", "-o", saved, img).CombinedOutput(); err != nil {
		b.Fatalf("docker save: %v %s", err, out)
	}
	kill := func() {
		b.Helper()
		for _, h := range []string{m2, m3} {
			if out, err := exec.Command("docker", "kill", h).CombinedOutput(); err != nil {
				b.Fatalf("docker kill %s: %v %s", h, err, out)
			}
		}
		// Until the survivor says its quorum is lost.
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
			if r := e.docker(m1, "node", "ls"); r.code != 0 {
				return
			}
			if time.Now().After(deadline) {
				b.Fatal("the quorum was never lost")
			}
		}
	}
	// loseQuorum makes, outside the timer, a fresh swarm of the file and kills two of its managers.
	loseQuorum := func(b *testing.B) {
		b.StopTimer()
		down()
		up()
		kill()
		b.StartTimer()
	}
	b.Run("recover/machine", func(b *testing.B) {
		for b.Loop() {
			loseQuorum(b)
			timed(b, "swarm", "recover", "-f", file)
		}
	})
	b.Run("recover/by-hand", func(b *testing.B) {
		for b.Loop() {
			loseQuorum(b)
			began := time.Now()
			// Docker's steps: force a new cluster on the survivor, take the lost managers out,
			// new hosts for them (made as machine makes them), joined as managers.
			dockerMust(m1, "swarm", "init", "--force-new-cluster", "--advertise-addr", ip(m1))
			for _, h := range []string{m2, m3} {
				_ = e.docker(m1, "node", "demote", h)
				dockerMust(m1, "node", "rm", "--force", h)
				if r := e.run("rm", "-f", "-y", h); r.code != 0 {
					b.Fatalf("rm %s: %s", h, r)
				}
				if r := e.run("create", "-d", "container", "--container-network", p+"-net", h); r.code != 0 {
					b.Fatalf("create %s: %s", h, r)
				}
			}
			token := dockerMust(m1, "swarm", "join-token", "-q", "manager")
			for _, h := range []string{m2, m3} {
				dockerMust(h, "swarm", "join", "--token", token, "--advertise-addr", ip(h), ip(m1)+":2377")
				dockerMust(h, "load", "-q", "-i", saved) // the services' image, as machine side-loads it
			}
			b.ReportMetric(waitServices(b, e, m1, began).Seconds(), "services-s")
			b.StopTimer()
			writeSSHConfig() // new hosts, new keys
			b.StartTimer()
		}
	})
}

// waitServices waits until every service of the swarm has all its tasks running (as `docker
// service ls` counts them), a global service's on every node that is Ready, and returns how long
// that was after since.
func waitServices(tb testing.TB, e *env, manager string, since time.Time) time.Duration {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		r := e.docker(manager, "service", "ls", "--format", "{{.Mode}} {{.Replicas}}")
		nodes := e.docker(manager, "node", "ls", "--format", "{{.Status}}")
		ready := strings.Count(nodes.stdout, "Ready")
		all := r.code == 0 && nodes.code == 0 && strings.TrimSpace(r.stdout) != ""
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			mode, rep, _ := strings.Cut(line, " ")
			got, want, ok := strings.Cut(rep, "/")
			if !ok || got != want || got == "0" || (mode == "global" && got != strconv.Itoa(ready)) {
				all = false
			}
		}
		if all {
			return time.Since(since)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("services never all running: %s", r)
		}
	}
}
