//go:build e2e

package e2e

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// BenchmarkPull100MB: a ~100 MB image to 1, 3 and 5 hosts, from a registry (TLS, on this
// machine's address on the hosts' network) and by side-load from the local engine, each at once
// against node after node. Side-load reports the bytes it read from the source.
func BenchmarkPull100MB(b *testing.B) {
	e := benchEnv(b)
	p := uniq("bench-pull")
	octet := os.Getpid()%200 + 20
	subnet := fmt.Sprintf("10.237.%d.0/24", octet)
	gw := fmt.Sprintf("10.237.%d.1", octet)
	registry := newTestRegistry(b, gw, 5444)
	reg, caFile, dir := registry.Addr, registry.CAFile, registry.Dir

	var names []string
	for i := 0; i < 5; i++ {
		names = append(names, fmt.Sprintf("%s-%d", p, i))
	}
	b.Cleanup(func() { e.run(append([]string{"rm", "-f", "-y"}, names...)...) })
	var fns []func()
	for _, n := range names {
		fns = append(fns, func() {
			if r := e.run("create", "-d", "container", "--container-network", p+"-net", "--container-subnet", subnet, "--engine-registry-ca", reg+"="+caFile, n); r.code != 0 {
				b.Errorf("create %s: %s", n, r)
			}
		})
	}
	parallel(fns...)
	if b.Failed() {
		b.FailNow()
	}
	registry.start(b, nil)

	img := "machine-bench/" + p + ":1"
	bb, _ := os.ReadFile("/bin/busybox")
	blob := make([]byte, 100<<20)
	_, _ = rand.Read(blob)
	tarPath := filepath.Join(dir, "img.tar")
	writeTar(b, tarPath, map[string][]byte{"bin/busybox": bb, "data/blob": blob}, []string{"sh"})
	if out, err := exec.Command("docker", "-H", "unix:///var/run/docker.sock", "import", tarPath, img).CombinedOutput(); err != nil {
		b.Fatalf("import: %v %s", err, out)
	}
	b.Cleanup(func() { _ = exec.Command("docker", "-H", "unix:///var/run/docker.sock", "rmi", img).Run() })
	remote := reg + "/bench/big:1"
	e.must("pull", "--nodes", names[0], "--from-local", img)
	if r := e.docker(names[0], "tag", img, remote); r.code != 0 {
		b.Fatal(r)
	}
	if r := e.docker(names[0], "push", remote); r.code != 0 {
		b.Fatalf("push: %s\n%s", r, registry.Log())
	}
	clean := func(nodes []string, refs ...string) {
		for _, n := range nodes {
			for _, ref := range refs {
				e.docker(n, "rmi", "-f", ref)
			}
		}
	}
	clean(names[:1], img, remote)
	readRE := regexp.MustCompile(`read (\d+) bytes once`)
	for _, n := range []int{1, 3, 5} {
		nodes := names[:n]
		modes := []struct {
			name string
			args func(nodes []string) []string
			ref  string
		}{
			{"registry", func(ns []string) []string { return []string{"pull", "--nodes", strings.Join(ns, ","), remote} }, remote},
			{"sideload", func(ns []string) []string {
				return []string{"pull", "--nodes", strings.Join(ns, ","), "--from-local", img}
			}, img},
		}
		for _, m := range modes {
			b.Run(fmt.Sprintf("%s-parallel/nodes=%d", m.name, n), func(b *testing.B) {
				for b.Loop() {
					r := e.run(m.args(nodes)...)
					if r.code != 0 {
						b.Fatalf("%s", r)
					}
					if x := readRE.FindStringSubmatch(r.stderr); x != nil {
						var bytesRead float64
						fmt.Sscan(x[1], &bytesRead)
						b.ReportMetric(bytesRead/(1<<20), "MiB-read-from-source")
					}
					b.StopTimer()
					clean(nodes, m.ref)
					b.StartTimer()
				}
			})
			b.Run(fmt.Sprintf("%s-one-after-another/nodes=%d", m.name, n), func(b *testing.B) {
				for b.Loop() {
					for _, node := range nodes {
						if r := e.run(m.args([]string{node})...); r.code != 0 {
							b.Fatalf("%s", r)
						}
					}
					b.StopTimer()
					clean(nodes, m.ref)
					b.StartTimer()
				}
			})
		}
	}
}
