//go:build e2e

package e2e

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkLibvirtCreate: `machine create -d libvirt` split into phases by the times its progress
// lines appear: prepare (the tool: KVM probe, volumes, ISO, define), boot to lease and lease to
// SSH (the guest), provision (remote work and the TLS check).
func BenchmarkLibvirtCreate(b *testing.B) {
	img := libvirtImageTB(b)
	e := benchEnv(b)
	for i := 0; b.Loop(); i++ {
		name := uniq("bench-vm") + "-" + string(rune('a'+i))
		cmd := exec.Command(machineBin, "create", "-d", "libvirt", "--libvirt-image", filepath.Join(img, "base.qcow2"),
			"--libvirt-kernel", filepath.Join(img, "vmlinuz"), "--libvirt-initrd", filepath.Join(img, "initrd.img"),
			"--libvirt-cmdline", "root=/dev/vda rw console=ttyS0", name)
		cmd.Env = append(cleanEnv(), "MACHINE_STORAGE_PATH="+e.store)
		stderr, _ := cmd.StderrPipe()
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		at := map[string]time.Duration{}
		sc := bufio.NewScanner(stderr)
		var lines []string
		for sc.Scan() {
			l := sc.Text()
			lines = append(lines, l)
			for _, k := range []string{"booting", "waiting for SSH", "detecting the operating system", "ready in"} {
				if strings.Contains(l, k) {
					if _, ok := at[k]; !ok {
						at[k] = time.Since(start)
					}
				}
			}
		}
		if err := cmd.Wait(); err != nil {
			b.Fatalf("create: %v\n%s", err, strings.Join(lines, "\n"))
		}
		b.StopTimer()
		b.ReportMetric(at["booting"].Seconds(), "s-prepare")
		b.ReportMetric((at["waiting for SSH"] - at["booting"]).Seconds(), "s-boot-to-lease")
		b.ReportMetric((at["detecting the operating system"] - at["waiting for SSH"]).Seconds(), "s-lease-to-ssh")
		b.ReportMetric((at["ready in"] - at["detecting the operating system"]).Seconds(), "s-provision")
		e.run("rm", "-f", "-y", name)
		b.StartTimer()
	}
}

func libvirtImageTB(b *testing.B) string {
	out, err := exec.Command("bash", filepath.Join("..", "..", "scripts", "libvirt-test-image.sh")).Output()
	if err != nil {
		b.Fatalf("test guest: %v", err)
	}
	return strings.TrimSpace(string(out))
}
