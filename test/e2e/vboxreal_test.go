//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/machine-tools/machine/drivers/virtualbox"
)

// The host-only network of the real VirtualBox runs (a bridge in the container's own network
// namespace; the stand-in's replay makes a Docker network of it on this machine).
const realVBoxCIDR = "192.168.231.1/24"

// vboxImage is the image with a real VirtualBox (Debian sid's), built once per recipe.
func vboxImage(t *testing.T) string { return cachedBuild(t, "MACHINE_VBOX_IMAGE", "vbox-image.sh") }

// vboxBox is a container of that image, with NET_ADMIN for the host-only bridges.
type vboxBox struct {
	t    *testing.T
	name string
}

func newVBoxBox(t *testing.T) *vboxBox {
	b := &vboxBox{t: t, name: uniq("mt-vboxreal")}
	exec.Command("docker", "rm", "-f", b.name).Run()
	if out, err := exec.Command("docker", "run", "-d", "--name", b.name, "--cap-add", "NET_ADMIN", vboxImage(t), "sleep", "infinity").CombinedOutput(); err != nil {
		t.Fatalf("starting the VirtualBox container: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", b.name).Run() })
	return b
}

func (b *vboxBox) sh(script string) result {
	return runCmd(exec.Command("docker", "exec", b.name, "bash", "-c", script), "")
}

func (b *vboxBox) cp(src, dst string) {
	b.t.Helper()
	if out, err := exec.Command("docker", "cp", src, dst).CombinedOutput(); err != nil {
		b.t.Fatalf("docker cp %s %s: %v\n%s", src, dst, err, out)
	}
}

// TestVirtualBoxRealVBoxManage runs the VirtualBox driver against a real VirtualBox 7.2 (Debian
// sid's VBoxManage and VBoxSVC, in a container; no kernel driver, so no VM can start):
//   - the driver's own test (drivers/virtualbox/real_test.go): every call of a create up to
//     startvm succeeds and what VirtualBox then has is what was asked for; startvm's real failure
//     is one line naming the kernel driver and the fix; Remove leaves nothing;
//   - `machine create -d virtualbox` as a user runs it: the same one line, nothing left behind;
//     without a host-only interface, the real `hostonlyif create` failure with its fix;
//   - the stand-in VBoxManage (test/fakevbox, which the other VirtualBox tests use) answers every
//     call of the driver that the real one answered as the real one did.
func TestVirtualBoxRealVBoxManage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	testBin := filepath.Join(dir, "virtualbox.test")
	if out, err := exec.Command("go", "test", "-c", "-tags", "vboxreal", "-o", testBin, "../../drivers/virtualbox").CombinedOutput(); err != nil {
		t.Fatalf("building the driver's real test: %v\n%s", err, out)
	}
	b := newVBoxBox(t)
	b.cp(testBin, b.name+":/virtualbox.test")
	b.cp(machineBin, b.name+":/usr/local/bin/machine")
	if r := b.sh("ip link add vboxnet0 type bridge && ip addr add " + realVBoxCIDR + " dev vboxnet0 && ip link set vboxnet0 up && truncate -s 16M /tmp/disk.img"); r.code != 0 {
		t.Fatalf("the host-only bridge: %s", r)
	}

	// The driver against the real VBoxManage.
	r := b.sh("cd / && VBOX_REAL_CIDR=" + realVBoxCIDR + " VBOX_TRANSCRIPT=/tmp/transcript.json /virtualbox.test -test.v -test.run '^TestReal'")
	if r.code != 0 || len(regexp.MustCompile(`(?m)^--- PASS: TestReal`).FindAllString(r.stdout, -1)) != 3 || strings.Contains(r.stdout, "--- FAIL") {
		t.Fatalf("the driver against a real VirtualBox: %s", r)
	}
	b.cp(b.name+":/tmp/transcript.json", filepath.Join(dir, "transcript.json"))

	// The CLI, as a user runs it.
	r = b.sh("machine create -d virtualbox --virtualbox-image /tmp/disk.img --virtualbox-hostonly-cidr " + realVBoxCIDR + " vb1")
	last := lastLine(r.stderr)
	if r.code != 1 || !strings.Contains(last, "VBoxManage startvm") || !strings.Contains(last, "no /dev/vboxdrv") ||
		!strings.Contains(last, "modprobe vboxdrv") || !strings.Contains(last, "nothing was left behind") {
		t.Errorf("create without the kernel driver: %s", r)
	}
	leftovers := `V=/usr/lib/virtualbox/VBoxManage; $V list vms; $V list hdds; $V list dvds; ls -A "$HOME/VirtualBox VMs"; machine ls -q`
	if r := b.sh(leftovers); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Errorf("left behind after the failed create: %s", r)
	}
	r = b.sh("ip link del vboxnet0 && machine create -d virtualbox --virtualbox-image /tmp/disk.img --virtualbox-hostonly-cidr " + realVBoxCIDR + " vb2")
	if last := lastLine(r.stderr); r.code != 1 || !strings.Contains(last, "VBoxManage hostonlyif create") || !strings.Contains(last, "no /dev/vboxnetctl") ||
		!strings.Contains(last, "modprobe vboxnetadp") {
		t.Errorf("create without the host-only network driver: %s", r)
	}
	if r := b.sh(leftovers); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Errorf("left behind after the failed create: %s", r)
	}

	replayOnStandIn(t, filepath.Join(dir, "transcript.json"))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// replayOnStandIn runs the driver's calls of the real run against the stand-in VBoxManage, with
// the real run's names mapped to the stand-in's (the VM's UUID, its folder, the source image),
// and compares each answer as the driver reads it. Calls that failed on the real one (startvm
// and hostonlyif create, for want of kernel drivers) are where the stand-in goes on instead.
func replayOnStandIn(t *testing.T, transcript string) {
	f, err := os.Open(transcript)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var calls []virtualbox.Call
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var c virtualbox.Call
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		calls = append(calls, c)
	}
	if len(calls) < 20 {
		t.Fatalf("the transcript has %d calls", len(calls))
	}
	envv := fakeVBox(t, uniq("fvr"))
	home := ""
	for _, kv := range envv {
		if v, ok := strings.CutPrefix(kv, "FAKEVBOX_HOME="); ok {
			home = v
		}
	}
	fake := func(args ...string) (string, string, int) {
		cmd := exec.Command(filepath.Join(fakeVBoxDir, "VBoxManage"), args...)
		cmd.Env = append(os.Environ(), envv...)
		r := runCmd(cmd, "")
		return r.stdout, r.stderr, r.code
	}
	// The real run's bridge lived in its own container; the stand-in's vboxnet0 is a network of
	// this machine's engine, whose own address pools may hold 192.168.231.0/24 already (the
	// engine hands out 192.168.0.0/16 in /20s once 172.16.0.0/12 is used up). The stand-in gets a
	// subnet of this run's own, mapped in every argument and mapped back in every answer.
	realNet := strings.TrimSuffix(realVBoxCIDR, "1/24")
	ownNet := fmt.Sprintf("10.213.%d.", os.Getpid()%250)
	for _, argv := range [][]string{{"hostonlyif", "create"}, {"hostonlyif", "ipconfig", "vboxnet0", "--ip", ownNet + "1", "--netmask", "255.255.255.0"}} {
		if _, se, code := fake(argv...); code != 0 {
			t.Fatalf("stand-in %s: %s", strings.Join(argv, " "), se)
		}
	}
	repl := map[string]string{"/root/VirtualBox VMs": home + "/VirtualBox VMs", realNet: ownNet}
	mapArgs := func(args []string) []string {
		out := make([]string, len(args))
		for i, a := range args {
			for from, to := range repl {
				a = strings.ReplaceAll(a, from, to)
			}
			out[i] = a
		}
		return out
	}
	version := regexp.MustCompile(`^\d+\.\d+\.\d+\S*\n$`)
	readKeys := []string{"name", "VMState", "nic1", "Forwarding(0)", "nic2", "hostonlyadapter2", "macaddress2"}
	compared := 0
	for i, c := range calls {
		if c.Code != 0 && c.Args[0] != "showvminfo" {
			continue // where the real one needs a kernel driver
		}
		if c.Args[0] == "convertfromraw" || c.Args[0] == "clonemedium" {
			// The same image here: a file of the size the real one then reported (the stand-in
			// takes a source's size from its file).
			src := c.Args[len(c.Args)-4]
			mb := 0
			for _, n := range calls[i+1:] {
				if n.Args[0] == "showmediuminfo" {
					_, o := virtualbox.SplitWarning(n.Stdout)
					mb, _ = virtualbox.ParseCapacityMB(o)
					break
				}
			}
			img := filepath.Join(t.TempDir(), filepath.Base(src))
			if err := os.WriteFile(img, nil, 0o644); err != nil || os.Truncate(img, int64(mb)<<20) != nil {
				t.Fatal(err)
			}
			repl[src] = img
		}
		args := mapArgs(c.Args)
		out, stderr, code := fake(args...)
		out = strings.ReplaceAll(out, ownNet, realNet)
		what := "VBoxManage " + strings.Join(c.Args, " ")
		if (code == 0) != (c.Code == 0) {
			t.Errorf("%s: the real one exited %d, the stand-in %d: %s", what, c.Code, code, stderr)
			continue
		}
		compared++
		_, realOut := virtualbox.SplitWarning(c.Stdout)
		key := c.Args[0]
		if len(c.Args) > 1 && c.Args[0] == "list" {
			key += " " + c.Args[1]
		}
		differ := func(real, stand any) {
			if !reflect.DeepEqual(real, stand) {
				t.Errorf("%s: read from the real one %+v, from the stand-in %+v", what, real, stand)
			}
		}
		switch key {
		case "--version":
			if !version.MatchString(realOut) || !version.MatchString(out) {
				t.Errorf("--version: %q, stand-in %q", realOut, out)
			}
		case "list vms":
			differ(virtualbox.ParseVMList(realOut), virtualbox.ParseVMList(out))
		case "list hostonlyifs":
			differ(hostOnlyFacts(virtualbox.ParseHostOnlyIfs(realOut)), hostOnlyFacts(virtualbox.ParseHostOnlyIfs(out)))
		case "list dhcpservers":
			differ(virtualbox.ParseDHCPServers(realOut), virtualbox.ParseDHCPServers(out))
		case "createvm":
			ru, fu := virtualbox.ParseCreatedUUID(realOut), virtualbox.ParseCreatedUUID(out)
			rs, err1 := virtualbox.ParseSettingsFile(realOut)
			fs, err2 := virtualbox.ParseSettingsFile(out)
			if ru == "" || fu == "" || err1 != nil || err2 != nil || filepath.Base(rs) != filepath.Base(fs) {
				t.Errorf("createvm: real %q %q %v, stand-in %q %q %v", ru, rs, err1, fu, fs, err2)
			}
			repl[ru] = fu
		case "showmediuminfo":
			rm, err1 := virtualbox.ParseCapacityMB(realOut)
			fm, err2 := virtualbox.ParseCapacityMB(out)
			if err1 != nil || err2 != nil || rm != fm {
				t.Errorf("showmediuminfo: real %d MB %v, stand-in %d MB %v", rm, err1, fm, err2)
			}
		case "showvminfo":
			if c.Code != 0 { // after unregistervm: both know no such VM
				if !strings.Contains(c.Stderr, "Could not find a registered machine") || !strings.Contains(stderr, "Could not find a registered machine") {
					t.Errorf("showvminfo of a removed VM: real %q, stand-in %q", c.Stderr, stderr)
				}
				continue
			}
			rm, fm := virtualbox.ParseMachineReadable(realOut), virtualbox.ParseMachineReadable(out)
			for _, k := range readKeys {
				if rm[k] != fm[k] {
					t.Errorf("showvminfo %s: real %q, stand-in %q", k, rm[k], fm[k])
				}
			}
		case "guestproperty":
			differ(virtualbox.ParseGuestProperties(realOut), virtualbox.ParseGuestProperties(out))
		}
	}
	if compared < 18 {
		t.Errorf("only %d of the driver's %d calls were compared", compared, len(calls))
	}
	t.Logf("the stand-in answered %d of the driver's calls as the real VBoxManage did", compared)
}

// hostOnlyFacts is what the driver reads of a host-only interface.
func hostOnlyFacts(ifs []virtualbox.HostOnlyIf) []string {
	var out []string
	for _, h := range ifs {
		out = append(out, fmt.Sprintf("%s %s %s %s %s dhcp=%v", h.Name, h.IP, h.Mask, h.Status, h.NetworkName, h.DHCP))
	}
	return out
}
