//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/machine-tools/machine/internal/store"
)

// BenchmarkLsFleet: `machine ls --timeout 5` over a store of 100 and of 1,000 machines of which a
// tenth answer and the rest do not (issue 31's fleet: "ls over 1,000 records of which 900 do
// not answer finishes within its timeout"). The answering ones are records of one real
// container host (its certificates, its address), so a tenth of the store is as many engines'
// answers through one engine; the others are at addresses of a test network where nothing
// answers (its /20; connections hang). Besides the wall time: the client's peak resident memory and its
// CPU-seconds (its rusage).
func BenchmarkLsFleet(b *testing.B) {
	e := benchEnv(b)
	net := uniq("bench-fleet-net")
	real := uniq("bench-fleet-real")
	third := 16 * (os.Getpid() % 15)
	if r := e.run("create", "-d", "container", "--container-network", net, "--container-subnet", fmt.Sprintf("10.247.%d.0/20", third), real); r.code != 0 {
		b.Fatalf("create: %s", r)
	}
	b.Cleanup(func() { e.run("rm", "-f", "-y", real) })
	h := loadHost(b, e, real)
	st, err := store.Open(e.store)
	if err != nil {
		b.Fatal(err)
	}
	made := 1
	add := func(total int) {
		for ; made < total; made++ {
			name, ip := fmt.Sprintf("m%04d", made), h.IP()
			if made%10 != 0 { // nine in ten do not answer
				ip = fmt.Sprintf("10.247.%d.%d", third+1+made/250, 1+made%250) // in the test network: nothing there
			}
			genericRecord(b, st, name, ip)
			for _, f := range []string{"ca.pem", "cert.pem", "key.pem"} {
				data, err := os.ReadFile(filepath.Join(e.store, "machines", real, f))
				if err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(e.store, "machines", name, f), data, 0o600); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	for _, total := range []int{100, 1000} {
		add(total)
		b.Run(fmt.Sprintf("machines=%d", total), func(b *testing.B) {
			var wall, cpu, rss float64
			var last string
			for b.Loop() {
				cmd := exec.Command(machineBin, "-s", e.store, "ls", "--timeout", "5")
				start := time.Now()
				out, _ := cmd.CombinedOutput()
				wall = max(wall, time.Since(start).Seconds())
				ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
				cpu += float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
				rss = max(rss, float64(ru.Maxrss)/1024)
				last = string(out)
			}
			if n := strings.Count(last, "Running"); n < total/10 {
				b.Fatalf("%d of the %d answering machines listed Running:\n%s", n, total/10, last)
			}
			q := time.Now()
			_ = exec.Command(machineBin, "-s", e.store, "ls", "-q").Run()
			b.ReportMetric(time.Since(q).Seconds(), "s/ls-q")
			q = time.Now()
			_ = exec.Command(machineBin, "-s", e.store, "ls", "--timeout", "1").Run()
			b.ReportMetric(time.Since(q).Seconds(), "s/ls-timeout-1")
			b.ReportMetric(wall, "max-s/ls")
			b.ReportMetric(cpu/float64(b.N), "client-cpu-s")
			b.ReportMetric(rss, "peak-RSS-MiB")
		})
	}
}
