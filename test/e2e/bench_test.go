//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/machine-tools/machine/internal/sshclient"
	"github.com/machine-tools/machine/internal/store"
	"github.com/machine-tools/machine/machine"
)

// benchHost makes one container machine for a benchmark.
func benchHost(b *testing.B, e *env, name, net string) *machine.Host {
	b.Helper()
	if r := e.run("create", "-d", "container", "--container-network", net, name); r.code != 0 {
		b.Fatalf("create: %s", r)
	}
	b.Cleanup(func() { e.run("rm", "-f", "-y", name) })
	return loadHost(b, e, name)
}

// loadHost loads a machine of the test's store through the public API.
func loadHost(b testing.TB, e *env, name string) *machine.Host {
	b.Helper()
	st, err := store.Open(e.store)
	if err != nil {
		b.Fatal(err)
	}
	a := &machine.API{Store: st, Drivers: machine.Drivers()}
	h, err := a.Load(name)
	if err != nil {
		b.Fatal(err)
	}
	return h
}

func benchEnv(b *testing.B) *env {
	return &env{t: b, store: b.TempDir() + "/store"}
}

// BenchmarkSSH50Commands: 50 commands on one host over one reused connection, against 50
// connections made afresh.
func BenchmarkSSH50Commands(b *testing.B) {
	e := benchEnv(b)
	h := benchHost(b, e, uniq("bench-ssh"), uniq("bench-ssh-net"))
	b.Run("reused", func(b *testing.B) {
		for b.Loop() {
			reusedCommands(b, h, 50)
		}
	})
	b.Run("fresh", func(b *testing.B) {
		for b.Loop() {
			freshCommands(b, h, 50)
		}
	})
}

// reusedCommands runs `true` n times on h over one connection.
func reusedCommands(b *testing.B, h *machine.Host, n int) {
	ctx := context.Background()
	c, err := h.Dial(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < n; i++ {
		if out, err := c.Run(ctx, nil, "true"); err != nil {
			b.Fatalf("%v %s", err, out)
		}
	}
}

// freshCommands runs `true` n times on h, each over a connection of its own.
func freshCommands(b *testing.B, h *machine.Host, n int) {
	ctx := context.Background()
	for i := 0; i < n; i++ {
		c, err := sshclient.DialOnce(ctx, h.SSHConfig())
		if err != nil {
			b.Fatal(err)
		}
		if out, err := c.Run(ctx, nil, "true"); err != nil {
			b.Fatalf("%v %s", err, out)
		}
		c.Close()
	}
}

// BenchmarkLs50Machines: `machine ls --timeout 2` over 50 machines, 49 of them at addresses of a
// test network where no host answers (connections hang), and one real host.
func BenchmarkLs50Machines(b *testing.B) {
	e := benchEnv(b)
	net := uniq("bench-ls-net")
	benchHost(b, e, uniq("bench-ls-real"), net)
	subnet := subnetOf(b, net)
	st, _ := store.Open(e.store)
	prefix := strings.TrimSuffix(strings.Split(subnet, "/")[0], ".0")
	for i := 0; i < 49; i++ {
		genericRecord(b, st, fmt.Sprintf("ghost%02d", i), fmt.Sprintf("%s.%d", prefix, 200+i))
	}
	var last string
	for b.Loop() {
		start := time.Now()
		out, _ := exec.Command(machineBin, "-s", e.store, "ls", "--timeout", "2").CombinedOutput()
		last = string(out)
		b.ReportMetric(time.Since(start).Seconds(), "s/ls")
	}
	if !strings.Contains(last, "Running") {
		b.Fatalf("the real host is not Running in:\n%s", last)
	}
}

// genericRecord puts a record of a generic machine at ip in the store, as a create would leave
// it (no host is asked).
func genericRecord(b *testing.B, st *store.Store, name, ip string) {
	b.Helper()
	m := &store.Machine{Name: name, DriverName: "generic", State: store.StateReady,
		Driver: []byte(fmt.Sprintf(`{"IPAddress":%q,"SSHUser":"root","SSHPort":22}`, ip)),
		SSH:    store.SSH{Host: ip, Port: 22, User: "root"}, Engine: store.EngineOptions{Port: 2376}}
	if err := st.Reserve(m); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkEnv: `machine env` reads the store only: it answers as fast for a stopped host.
func BenchmarkEnv(b *testing.B) {
	e := benchEnv(b)
	name := uniq("bench-env")
	benchHost(b, e, name, uniq("bench-env-net"))
	e.run("kill", name)
	for b.Loop() {
		if out, err := exec.Command(machineBin, "-s", e.store, "env", name).Output(); err != nil || !strings.Contains(string(out), "DOCKER_HOST") {
			b.Fatalf("env of a stopped host: %v %s", err, out)
		}
	}
}

// BenchmarkContainerCreate: one host made and provisioned, and five made at once against five one
// after another.
func BenchmarkContainerCreate(b *testing.B) {
	e := benchEnv(b)
	net := uniq("bench-cc-net")
	n := 0
	mk := func(k int) []string {
		var names []string
		for i := 0; i < k; i++ {
			n++
			names = append(names, fmt.Sprintf("bench-cc-%d-%d", n, i))
		}
		return names
	}
	// create times the creates only: b is the sub-benchmark's, so that its timer is the one stopped.
	// Each run's time is noted for the median.
	var runs []time.Duration
	create := func(b *testing.B, names []string, par bool) {
		start := time.Now()
		fns := []func(){}
		for _, nm := range names {
			fns = append(fns, func() {
				if r := e.run("create", "-d", "container", "--container-network", net, nm); r.code != 0 {
					b.Errorf("create %s: %s", nm, r)
				}
			})
		}
		if par {
			parallel(fns...)
		} else {
			for _, f := range fns {
				f()
			}
		}
		b.StopTimer()
		runs = append(runs, time.Since(start))
		e.run(append([]string{"rm", "-f", "-y"}, names...)...)
		time.Sleep(2 * time.Second) // the engine finishes tearing the hosts down before the next run
		b.StartTimer()
	}
	b.Run("one", func(b *testing.B) {
		runs = nil
		for b.Loop() {
			create(b, mk(1), false)
		}
		reportMedian(b, runs)
	})
	b.Run("five-parallel", func(b *testing.B) {
		runs = nil
		for b.Loop() {
			create(b, mk(5), true)
		}
		reportMedian(b, runs)
	})
	b.Run("five-sequential", func(b *testing.B) {
		runs = nil
		for b.Loop() {
			create(b, mk(5), false)
		}
		reportMedian(b, runs)
	})
}

// reportMedian adds the median of the runs (seconds) to a benchmark's figures.
func reportMedian(b *testing.B, runs []time.Duration) {
	if len(runs) == 0 {
		return
	}
	sorted := slices.Clone(runs)
	slices.Sort(sorted)
	m := sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		m = (sorted[len(sorted)/2-1] + m) / 2
	}
	b.ReportMetric(m.Seconds(), "median-s")
}
