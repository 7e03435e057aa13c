//go:build e2e

package e2e

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkSwarmUp: `machine swarm up` on existing hosts (1 manager, the rest workers, a label on
// each node) against a baseline that does the same steps one host after another with the docker
// CLI, as a hand-written CI script would; first, at 5 and 8 nodes, the side by side of issue 31
// (no labels; `up` and `init` + `join`; the ratios of wall time and of the hosts' CPU).
func BenchmarkSwarmUp(b *testing.B) {
	e := benchEnv(b)
	p := uniq("bench-up")
	var all []string
	for i := 0; i < 8; i++ {
		all = append(all, fmt.Sprintf("%s-%d", p, i))
	}
	b.Cleanup(func() { e.run(append([]string{"rm", "-f", "-y"}, all...)...) })
	var fns []func()
	for _, n := range all {
		fns = append(fns, func() {
			if r := e.run("create", "-d", "container", "--container-network", p+"-net", n); r.code != 0 {
				b.Errorf("create %s: %s", n, r)
			}
		})
	}
	parallel(fns...)
	if b.Failed() {
		b.FailNow()
	}
	ips := map[string]string{}
	for _, n := range all {
		ips[n] = strings.TrimSpace(e.must("ip", n))
	}
	dockerAt := func(node string, args ...string) {
		cmd := exec.Command("docker", args...)
		dir := filepath.Join(e.store, "machines", node)
		cmd.Env = append(cleanEnv(), "DOCKER_HOST=tcp://"+ips[node]+":2376", "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("docker %v on %s: %v %s", args, node, err, out)
		}
	}
	dockerOut := func(node string, args ...string) string {
		cmd := exec.Command("docker", args...)
		dir := filepath.Join(e.store, "machines", node)
		cmd.Env = append(cleanEnv(), "DOCKER_HOST=tcp://"+ips[node]+":2376", "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH="+dir)
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("docker %v on %s: %v", args, node, err)
		}
		return strings.TrimSpace(string(out))
	}
	// A 20 MB image for the "with an image" runs: busybox and a layer of random bytes.
	img := "machine-bench/" + p + ":1"
	{
		dir := b.TempDir()
		bb, _ := os.ReadFile("/bin/busybox")
		blob := make([]byte, 20<<20)
		_, _ = rand.Read(blob)
		tarPath := filepath.Join(dir, "img.tar")
		writeTar(b, tarPath, map[string][]byte{"bin/busybox": bb, "data/blob": blob}, []string{"sh", "sleep"})
		if out, err := exec.Command("docker", "-H", "unix:///var/run/docker.sock", "import", tarPath, img).CombinedOutput(); err != nil {
			b.Fatalf("import: %v %s", err, out)
		}
		b.Cleanup(func() { _ = exec.Command("docker", "-H", "unix:///var/run/docker.sock", "rmi", img).Run() })
	}
	saved := filepath.Join(b.TempDir(), "saved.tar")
	if out, err := exec.Command("docker", "-H", "unix:///var/run/docker.sock", "save", "-o", saved, img).CombinedOutput(); err != nil {
		b.Fatalf("save: %v %s", err, out)
	}
	hostCPU := hostsCPU(b, all)
	// Side by side, as issue 31 measured it: `machine swarm up` (no labels) and `machine swarm
	// init` + `swarm join` against the docker CLI doing init, join-token and the joins one after
	// another, in alternating order; wall time and the hosts' CPU of each, and their ratios.
	for _, size := range []int{5, 8} {
		nodes := all[:size]
		file := filepath.Join(b.TempDir(), "cluster.yml")
		var sb strings.Builder
		fmt.Fprintf(&sb, "name: bench\ndriver: container\nnodes:\n  - {name: %s, role: manager}\n", nodes[0])
		for _, n := range nodes[1:] {
			fmt.Fprintf(&sb, "  - {name: %s}\n", n)
		}
		if err := os.WriteFile(file, []byte(sb.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		cli := func() {
			m := nodes[0]
			dockerAt(m, "swarm", "init", "--advertise-addr", ips[m])
			token := dockerOut(m, "swarm", "join-token", "-q", "worker")
			for _, n := range nodes[1:] {
				dockerAt(n, "swarm", "join", "--token", token, "--advertise-addr", ips[n], ips[m]+":2377")
			}
		}
		variants := map[string]func(){
			"up": func() {
				if r := e.run("swarm", "up", "-f", file); r.code != 0 {
					b.Fatalf("up: %s", r)
				}
			},
			"init+join": func() {
				if r := e.run("swarm", "init", nodes[0]); r.code != 0 {
					b.Fatalf("init: %s", r)
				}
				if r := e.run(append([]string{"swarm", "join", "--manager", nodes[0]}, nodes[1:]...)...); r.code != 0 {
					b.Fatalf("join: %s", r)
				}
			},
		}
		for _, v := range []string{"up", "init+join"} {
			b.Run(fmt.Sprintf("vs-cli/%s/nodes=%d", v, size), func(b *testing.B) {
				var mWall, cWall, mCPU, cCPU float64
				measure := func(f func(), wall, cpu *float64) {
					t0, c0 := time.Now(), hostCPU()
					f()
					*wall += time.Since(t0).Seconds()
					*cpu += hostCPU() - c0
					if r := e.run("swarm", "down", "--keep-machines", "-f", file); r.code != 0 {
						b.Fatalf("down: %s", r)
					}
				}
				i := 0
				for b.Loop() {
					if i%2 == 0 {
						measure(variants[v], &mWall, &mCPU)
						measure(cli, &cWall, &cCPU)
					} else {
						measure(cli, &cWall, &cCPU)
						measure(variants[v], &mWall, &mCPU)
					}
					i++
				}
				n := float64(i)
				b.ReportMetric(mWall/n, "machine-s")
				b.ReportMetric(cWall/n, "cli-s")
				b.ReportMetric(mWall/cWall, "ratio")
				b.ReportMetric(mCPU/n, "machine-host-cpu-s")
				b.ReportMetric(cCPU/n, "cli-host-cpu-s")
				b.ReportMetric(mCPU/cCPU, "cpu-ratio")
			})
		}
	}
	for _, withImage := range []bool{false, true} {
		for _, size := range []int{1, 3, 5, 8} {
			nodes := all[:size]
			file := filepath.Join(b.TempDir(), "cluster.yml")
			var sb strings.Builder
			fmt.Fprintf(&sb, "name: bench\ndriver: container\nnodes:\n")
			for i, n := range nodes {
				role := "worker"
				if i == 0 {
					role = "manager"
				}
				fmt.Fprintf(&sb, "  - {name: %s, role: %s, labels: {slot: \"%d\"}}\n", n, role, i)
			}
			suffix := ""
			if withImage {
				fmt.Fprintf(&sb, "images:\n  - {name: %s, source: local}\n", img)
				suffix = "+image"
			}
			if err := os.WriteFile(file, []byte(sb.String()), 0o644); err != nil {
				b.Fatal(err)
			}
			down := func() {
				if r := e.run("swarm", "down", "--keep-machines", "-f", file); r.code != 0 {
					b.Fatalf("down: %s", r)
				}
				if withImage {
					for _, n := range nodes {
						cmd := exec.Command("docker", "rmi", img)
						cmd.Env = append(cleanEnv(), "DOCKER_HOST=tcp://"+ips[n]+":2376", "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH="+filepath.Join(e.store, "machines", n))
						_ = cmd.Run()
					}
				}
			}
			b.Run(fmt.Sprintf("machine%s/nodes=%d", suffix, size), func(b *testing.B) {
				for b.Loop() {
					if r := e.run("swarm", "up", "-f", file); r.code != 0 {
						b.Fatalf("up: %s", r)
					}
					b.StopTimer()
					down()
					b.StartTimer()
				}
			})
			b.Run(fmt.Sprintf("docker-cli-sequential%s/nodes=%d", suffix, size), func(b *testing.B) {
				for b.Loop() {
					m := nodes[0]
					dockerAt(m, "swarm", "init", "--advertise-addr", ips[m])
					token := dockerOut(m, "swarm", "join-token", "-q", "worker")
					for _, n := range nodes[1:] {
						dockerAt(n, "swarm", "join", "--token", token, "--advertise-addr", ips[n], ips[m]+":2377")
					}
					for i, n := range nodes {
						dockerAt(m, "node", "update", "--label-add", fmt.Sprintf("slot=%d", i), n)
					}
					if withImage {
						for _, n := range nodes {
							dockerAt(n, "load", "-q", "-i", saved)
						}
					}
					b.StopTimer()
					down()
					b.StartTimer()
				}
			})
		}
	}
}

// BenchmarkSwarmUpFromNothing: `machine swarm up` of a cluster file none of whose machines
// exists: 5 nodes (1 manager, 4 workers), then 10, 25, 50 and 100 (3 managers, the rest workers,
// one overlay network, one side-loaded image), with and without the routing mesh (-bench
// 'SwarmUpFromNothing/nodes=25' picks one size). Besides the wall time: the whole machine's
// CPU-seconds (/proc/stat) and the peak of memory in use above what was in use before the run
// (/proc/meminfo, sampled every 200 ms), and the ratio of the wall time to the creates' floor
// (the hosts × one host's create CPU-seconds, measured first, ÷ the cores): issue 31 asks
// ≤ 1.2 at 100 nodes. `swarm down` removes them again outside the timer. A plot of the curve:
// scripts/plot-from-nothing.sh.
func BenchmarkSwarmUpFromNothing(b *testing.B) {
	e := benchEnv(b)
	img := "machine-bench/" + uniq("busybox") + ":1"
	localImage(b, img)
	// The creates' floor: one container host made alone, the whole machine's CPU-seconds for it
	// (median of three); a size's floor is its hosts × that ÷ the cores, in seconds of wall.
	// An anchor host first, so that the network is made (and kept) outside what is measured.
	floorNet, anchor := uniq("bench-floor-net"), uniq("bench-floor-anchor")
	if r := e.run("create", "-d", "container", "--container-network", floorNet, anchor); r.code != 0 {
		b.Fatalf("create: %s", r)
	}
	var perHost []float64
	for i := range 3 {
		n := uniq(fmt.Sprintf("bench-floor-%d", i))
		c0 := cpuSeconds()
		if r := e.run("create", "-d", "container", "--container-network", floorNet, n); r.code != 0 {
			b.Fatalf("create: %s", r)
		}
		perHost = append(perHost, cpuSeconds()-c0)
		e.run("rm", "-f", "-y", n)
	}
	e.run("rm", "-f", "-y", anchor)
	slices.Sort(perHost)
	hostCPU := perHost[1]
	for _, size := range []int{5, 10, 25, 50, 100} {
		for _, mesh := range []bool{true, false} {
			if size == 5 && !mesh {
				continue
			}
			p := uniq(fmt.Sprintf("bench-n%d", size))
			managers := min(3, size/5)
			var sb strings.Builder
			fmt.Fprintf(&sb, "name: %s\ndriver: container\ndriver-options: {network: %s-net}\nswarm: {routing-mesh: %t}\nnodes:\n", p, p, mesh)
			for i := range size {
				role := "worker"
				if i < managers {
					role = "manager"
				}
				fmt.Fprintf(&sb, "  - {name: %s-%03d, role: %s}\n", p, i, role)
			}
			if size > 5 {
				fmt.Fprintf(&sb, "networks: [{name: %s-app, attachable: true}]\nimages: [{name: %s, source: local}]\n", p, img)
			}
			file := filepath.Join(b.TempDir(), "cluster.yml")
			if err := os.WriteFile(file, []byte(sb.String()), 0o644); err != nil {
				b.Fatal(err)
			}
			name := fmt.Sprintf("nodes=%d", size)
			if !mesh {
				name += "/no-routing-mesh"
			}
			b.Run(name, func(b *testing.B) {
				b.Cleanup(func() { e.run("swarm", "down", "-f", file) })
				var cpu, peak float64
				for b.Loop() {
					c0, m0 := cpuSeconds(), memUsedMiB()
					stop := sampleMax(memUsedMiB)
					if r := e.run("swarm", "up", "-f", file); r.code != 0 {
						b.Fatalf("up: %s", r)
					}
					b.StopTimer()
					cpu += cpuSeconds() - c0
					peak = max(peak, stop()-m0)
					if r := e.run("swarm", "down", "-f", file); r.code != 0 {
						b.Fatalf("down: %s", r)
					}
					b.StartTimer()
				}
				floor := float64(size) * hostCPU / float64(runtime.NumCPU())
				b.ReportMetric(cpu/float64(b.N), "cpu-s/op")
				b.ReportMetric(cpu/float64(b.N)/float64(size), "cpu-s/node")
				b.ReportMetric(peak, "peak-MiB")
				b.ReportMetric(hostCPU, "create-cpu-s/host")
				b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/floor, "floor-ratio")
			})
		}
	}
}

// hostsCPU gives a function that says the CPU-seconds the container hosts named have used so far
// (their containers' cgroups: everything inside each host, its engine, sshd and their children).
func hostsCPU(b *testing.B, names []string) func() float64 {
	var files []string
	for _, n := range names {
		out, err := exec.Command("docker", "-H", "unix:///var/run/docker.sock", "inspect", "-f", "{{.Id}}", n).Output()
		if err != nil {
			b.Fatalf("inspect %s: %v", n, err)
		}
		id := strings.TrimSpace(string(out))
		f := ""
		for _, c := range []string{"/sys/fs/cgroup/cpuacct/docker/" + id + "/cpuacct.usage", "/sys/fs/cgroup/system.slice/docker-" + id + ".scope/cpu.stat", "/sys/fs/cgroup/docker/" + id + "/cpu.stat"} {
			if _, err := os.Stat(c); err == nil {
				f = c
				break
			}
		}
		if f == "" {
			b.Fatalf("no CPU accounting found for %s's container", n)
		}
		files = append(files, f)
	}
	return func() float64 {
		var sum float64
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			if strings.HasSuffix(f, "cpuacct.usage") { // cgroup v1: nanoseconds
				v, _ := strconv.ParseFloat(strings.TrimSpace(string(data)), 64)
				sum += v / 1e9
				continue
			}
			for _, line := range strings.Split(string(data), "\n") { // v2: usage_usec
				if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
					u, _ := strconv.ParseFloat(v, 64)
					sum += u / 1e6
				}
			}
		}
		return sum
	}
}

// cpuSeconds is the whole machine's busy CPU time so far (user, nice, system, irq, softirq).
func cpuSeconds() float64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		panic(err) // Linux only, as the whole suite
	}
	f := strings.Fields(strings.SplitN(string(data), "\n", 2)[0])
	var ticks float64
	for _, i := range []int{1, 2, 3, 6, 7} {
		v, _ := strconv.ParseFloat(f[i], 64)
		ticks += v
	}
	return ticks / 100 // USER_HZ
}

// memUsedMiB is the memory in use: MemTotal - MemAvailable.
func memUsedMiB() float64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		panic(err)
	}
	var total, avail float64
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			v, _ := strconv.ParseFloat(f[1], 64)
			switch f[0] {
			case "MemTotal:":
				total = v
			case "MemAvailable:":
				avail = v
			}
		}
	}
	return (total - avail) / 1024
}

// sampleMax samples f every 200 ms until the returned stop, which gives the largest value seen.
func sampleMax(f func() float64) (stop func() float64) {
	return sample(200*time.Millisecond, func() (float64, bool) { return f(), true }, func(a, b float64) float64 { return max(a, b) })
}

// sample calls f every interval until the returned stop, which gives keep of every value f gave
// (values f says are not ok are left out; the zero value when none was).
func sample[T any](interval time.Duration, f func() (T, bool), keep func(a, b T) T) (stop func() T) {
	done, out := make(chan struct{}), make(chan T)
	go func() {
		var m T
		seen := false
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if v, ok := f(); ok {
				if seen {
					m = keep(m, v)
				} else {
					m, seen = v, true
				}
			}
			select {
			case <-done:
				out <- m
				return
			case <-t.C:
			}
		}
	}()
	return func() T { close(done); return <-out }
}

// running is how many of a service's tasks run, as `docker service ls` through manager says.
func (e *env) running(manager, service string) (int, bool) {
	out := e.docker(manager, "service", "ls", "--filter", "name="+service, "--format", "{{.Replicas}}").stdout
	n, err := strconv.Atoi(strings.SplitN(strings.TrimSpace(out), "/", 2)[0])
	return n, err == nil
}

// leastRunning samples how many of a service's tasks run until the returned stop, which gives
// the fewest seen.
func (e *env) leastRunning(manager, service string) (stop func() int) {
	return sample(400*time.Millisecond, func() (int, bool) { return e.running(manager, service) }, func(a, b int) int { return min(a, b) })
}

// BenchmarkSwarmDay2: on an 8-node cluster of container hosts (3 managers, 5 workers, a label on
// each worker), `swarm plan` and a no-op `swarm up` (they read state and change nothing), and a
// rolling engine change over every node (an engine env value: dockerd restarts), one node at a
// time.
func BenchmarkSwarmDay2(b *testing.B) {
	e := benchEnv(b)
	p := uniq("bench-d2")
	var nodes []string
	for i := 0; i < 8; i++ {
		nodes = append(nodes, fmt.Sprintf("%s-%d", p, i))
	}
	b.Cleanup(func() { e.run(append([]string{"rm", "-f", "-y"}, nodes...)...) })
	file := func(env string) string {
		var sb strings.Builder
		fmt.Fprintf(&sb, "name: d2\ndriver: container\ndriver-options: {network: %s-net}\nengine: {env: [BENCH=%s]}\nnodes:\n", p, env)
		for i, n := range nodes {
			if i < 3 {
				fmt.Fprintf(&sb, "  - {name: %s, role: manager}\n", n)
			} else {
				fmt.Fprintf(&sb, "  - {name: %s, labels: {zone: z%d}}\n", n, i%2)
			}
		}
		f := filepath.Join(b.TempDir(), "cluster.yml")
		if err := os.WriteFile(f, []byte(sb.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		return f
	}
	if r := e.run("swarm", "up", "-f", file("0")); r.code != 0 {
		b.Fatalf("swarm up: %s", r)
	}
	cl := file("0")
	b.Run("plan/nodes=8", func(b *testing.B) {
		for b.Loop() {
			if r := e.run("swarm", "plan", "-f", cl); r.code != 0 {
				b.Fatalf("plan: %s", r)
			}
		}
	})
	b.Run("noop-up/nodes=8", func(b *testing.B) {
		for b.Loop() {
			if r := e.run("swarm", "up", "-f", cl); r.code != 0 || !strings.Contains(r.stderr, "nothing to change") {
				b.Fatalf("up: %s", r)
			}
		}
	})
	v := 0
	b.Run("rolling-engine-change/nodes=8", func(b *testing.B) {
		for b.Loop() {
			v++
			if r := e.run("swarm", "up", "-f", file(fmt.Sprint(v))); r.code != 0 || strings.Count(r.stderr, "re-provisioning with the new engine options") != 8 {
				b.Fatalf("rolling change: %s", r)
			}
		}
	})
}

// BenchmarkSwarmSoak: up and down of a 5-node swarm (1 manager, 4 workers, a label on each) on
// the same container hosts, again and again (`-benchtime 50x`: issue 31's soak), each cycle
// checked: `up` exits 0 and says nothing was stuck or repaired, the manager lists 5 nodes Ready,
// each with its label, and `down --keep-machines` leaves every engine out of any swarm with
// nothing listening on the engine's swarm ports (a kept gossip port is what made later joins time
// out); an ingress sandbox left behind by a leave is counted.
// It stops at the first cycle that is not good; up-s and down-s are the means.
func BenchmarkSwarmSoak(b *testing.B) {
	e := benchEnv(b)
	p := uniq("bench-soak")
	var nodes []string
	for i := range 5 {
		nodes = append(nodes, fmt.Sprintf("%s-%d", p, i))
	}
	b.Cleanup(func() { e.run(append([]string{"rm", "-f", "-y"}, nodes...)...) })
	var sb strings.Builder
	fmt.Fprintf(&sb, "name: %s\ndriver: container\ndriver-options: {network: %s-net}\nnodes:\n", p, p)
	for i, n := range nodes {
		role := "worker"
		if i == 0 {
			role = "manager"
		}
		fmt.Fprintf(&sb, "  - {name: %s, role: %s, labels: {slot: \"%d\"}}\n", n, role, i)
	}
	file := filepath.Join(b.TempDir(), "cluster.yml")
	if err := os.WriteFile(file, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	if r := e.run("swarm", "up", "-f", file); r.code != 0 {
		b.Fatalf("the first up (the machines made): %s", r)
	}
	if r := e.run("swarm", "down", "--keep-machines", "-f", file); r.code != 0 {
		b.Fatalf("the first down: %s", r)
	}
	var upS, downS float64
	cycle, ingressLeft := 0, 0
	for b.Loop() {
		cycle++
		t0 := time.Now()
		r := e.run("swarm", "up", "-f", file)
		upS += time.Since(t0).Seconds()
		if r.code != 0 {
			b.Fatalf("cycle %d: up: %s", cycle, r)
		}
		for _, said := range []string{"stuck", "left it, and joins again", "restart"} {
			if strings.Contains(r.stderr, said) {
				b.Fatalf("cycle %d: up had to repair a node (%q):\n%s", cycle, said, r.stderr)
			}
		}
		ls := e.docker(nodes[0], "node", "ls", "--format", "{{.Hostname}} {{.Status}}")
		if ls.code != 0 || strings.Count(ls.stdout, " Ready") != 5 {
			b.Fatalf("cycle %d: nodes: %s", cycle, ls)
		}
		for i, n := range nodes {
			if got := e.docker(nodes[0], "node", "inspect", "-f", "{{index .Spec.Labels \"slot\"}}", n); strings.TrimSpace(got.stdout) != strconv.Itoa(i) {
				b.Fatalf("cycle %d: %s's label: %s", cycle, n, got)
			}
		}
		t0 = time.Now()
		r = e.run("swarm", "down", "--keep-machines", "-f", file)
		downS += time.Since(t0).Seconds()
		if r.code != 0 {
			b.Fatalf("cycle %d: down: %s", cycle, r)
		}
		for _, n := range nodes {
			if st := e.docker(n, "info", "-f", "{{.Swarm.LocalNodeState}}"); strings.TrimSpace(st.stdout) != "inactive" {
				b.Fatalf("cycle %d: %s after down: %s", cycle, n, st)
			}
			// 7946 (gossip) and 2377 are the engine's own: bound after down, they are kept. 4789
			// is the kernel's VXLAN socket of the ingress sandbox: a worker that leaves while its
			// engine is still setting that sandbox up leaves it behind ("timeout while waiting for
			// ingress network removal" in its log) until its next join clears it; counted.
			for _, l := range strings.Split(e.must("ssh", n, "ss", "-Htuln"), "\n") {
				f := strings.Fields(l)
				if len(f) < 5 {
					continue
				}
				if strings.HasSuffix(f[4], ":7946") || strings.HasSuffix(f[4], ":2377") {
					b.Fatalf("cycle %d: %s still listens on a swarm port after down: %s", cycle, n, l)
				}
				if strings.HasSuffix(f[4], ":4789") {
					ingressLeft++
				}
			}
		}
	}
	b.ReportMetric(upS/float64(cycle), "up-s")
	b.ReportMetric(downS/float64(cycle), "down-s")
	b.ReportMetric(float64(cycle), "good-cycles")
	b.ReportMetric(float64(ingressLeft), "ingress-sandboxes-left")
}
