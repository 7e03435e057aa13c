//go:build vboxreal

package virtualbox

// The driver against a real VirtualBox: built with -tags vboxreal and run by the end-to-end
// test TestVirtualBoxRealVBoxManage inside the image of scripts/vbox-image.sh (Debian sid's
// virtualbox, no kernel driver), with a vboxnetN bridge made for the host-only network.
// VBOX_REAL_CIDR is that network (its host address and prefix); VBOX_TRANSCRIPT, when set, is
// where every VBoxManage call and its answer are written, one JSON object a line, for the check
// of the stand-in VBoxManage against the real one.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/internal/cidata/cidatatest"
)

// transcribing runs the real VBoxManage and keeps every call.
type transcribing struct {
	r     ExecRunner
	mu    sync.Mutex
	calls []Call
}

func (tr *transcribing) Run(ctx context.Context, args ...string) (string, error) {
	out, err := tr.r.Run(ctx, args...)
	c := Call{Args: args, Stdout: out}
	var ve *Error
	if errors.As(err, &ve) {
		c.Code, c.Stderr = ve.ExitCode, ve.Stderr
	} else if err != nil {
		c.Code, c.Stderr = -1, err.Error()
	}
	tr.mu.Lock()
	tr.calls = append(tr.calls, c)
	tr.mu.Unlock()
	return out, err
}

func (tr *transcribing) save(t *testing.T) {
	path := os.Getenv("VBOX_TRANSCRIPT")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, c := range tr.calls {
		if err := enc.Encode(c); err != nil {
			t.Fatal(err)
		}
	}
}

func realDriver(t *testing.T, cidr string) (*Driver, *transcribing) {
	t.Helper()
	// As users have it: Debian's /usr/bin/VBoxManage, the wrapper script that warns first.
	p, err := Locate(os.Getenv, exec.LookPath)
	if err != nil {
		t.Fatalf("%v: run this test inside the image of scripts/vbox-image.sh", err)
	}
	tr := &transcribing{r: ExecRunner{Path: p}}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 16<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	d := New().(*Driver)
	d.run, d.Image, d.HostOnlyCIDR = tr, img, cidr
	d.newMAC = func() string { return "080027C0FFEE" }
	return d, tr
}

// mustVBM is a call of the test's own, not in the transcript of the driver's calls.
func (d *Driver) mustVBM(t *testing.T, args ...string) string {
	t.Helper()
	out, err := ExecRunner{Path: "/usr/lib/virtualbox/VBoxManage"}.Run(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRealCreate: every call of a create succeeds against the real VBoxSVC up to startvm, which
// fails for want of the kernel driver with one line that names it and the fix; what was made is
// read back and is what the driver asked for; Remove leaves nothing registered or on disk. For
// each kind of image: a raw disk (convertfromraw), a VMDK (clonemedium), an ISO (createmedium).
func TestRealCreate(t *testing.T) {
	cidr := os.Getenv("VBOX_REAL_CIDR")
	plan, err := PlanHostOnly(cidr)
	if err != nil {
		t.Fatalf("VBOX_REAL_CIDR: %v", err)
	}
	for _, kind := range []string{"raw", "vmdk", "iso"} {
		t.Run(kind, func(t *testing.T) { realCreate(t, plan, kind) })
	}
}

func realCreate(t *testing.T, plan HostOnlyPlan, kind string) {
	d, tr := realDriver(t, plan.HostIP+"/24")
	defer tr.save(t)
	ctx := context.Background()
	name := "real-" + kind
	switch kind {
	case "vmdk": // a cloud image's format, made by VirtualBox itself
		d.Image = filepath.Join(t.TempDir(), "cloud.vmdk")
		d.mustVBM(t, "createmedium", "disk", "--filename", d.Image, "--size", "64", "--format", "VMDK")
		d.mustVBM(t, "closemedium", "disk", d.Image) // a downloaded image is not registered
	case "iso":
		d.Image = filepath.Join(t.TempDir(), "live.iso")
		if out, err := exec.Command("genisoimage", "-quiet", "-V", "live", "-o", d.Image, "/etc/hostname").CombinedOutput(); err != nil {
			t.Fatalf("genisoimage: %v\n%s", err, out)
		}
	}
	if err := d.Validate(ctx, name); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	err := d.Create(ctx, drivers.CreateSpec{Name: name, AuthorizedKey: testKey})
	var ve *Error
	if !errors.As(err, &ve) || ve.Args[0] != "startvm" {
		t.Fatalf("the create should fail at startvm, for want of the kernel driver: %v", err)
	}
	for _, w := range []string{"terminated unexpectedly during startup", "no /dev/vboxdrv", "modprobe vboxdrv", "/sbin/vboxconfig", "Secure Boot", "VT-x/AMD-V"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("startvm's error lacks %q: %v", w, err)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("startvm's error is not one line: %q", err)
	}
	for i, c := range tr.calls[:len(tr.calls)-1] {
		// VBoxSVC exiting as the call came (it does a few seconds after its last client) is
		// asked again by the driver: the call that follows with the same arguments counts.
		if c.Code != 0 && strings.Contains(c.Stderr, "Failed to create the VirtualBox object") && slices.Equal(tr.calls[i+1].Args, c.Args) {
			continue
		}
		if c.Code != 0 {
			t.Errorf("VBoxManage %s failed before startvm: %s", strings.Join(c.Args, " "), c.Stderr)
		}
	}

	// What VirtualBox has now is what the driver asked for.
	m := ParseMachineReadable(d.mustVBM(t, "showvminfo", d.UUID, "--machinereadable"))
	want := map[string]string{
		"name": name, "UUID": d.UUID, "VMState": "poweroff", "cpus": "1", "memory": "1024", "firmware": "BIOS",
		"boot1": "disk", "boot2": "dvd", "boot3": "none", "boot4": "none", "acpi": "on", "ioapic": "on", "rtcuseutc": "on",
		"nic1": "nat", "nictype1": "virtio", "cableconnected1": "on",
		"Forwarding(0)": fmt.Sprintf("ssh,tcp,127.0.0.1,%d,,22", d.SSHPort),
		"nic2":          "hostonly", "nictype2": "virtio", "hostonlyadapter2": d.HostOnlyIf,
		"macaddress2": "080027C0FFEE", "cableconnected2": "on",
		"storagecontrollername0": "SATA", "storagecontrollertype0": "IntelAhci", "storagecontrollerportcount0": "3",
		"SATA-0-0": d.Disk, "SATA-1-0": d.ISO, "SATA-2-0": "none",
	}
	if kind == "iso" { // the BIOS boots the first DVD drive: the image's, then the seed
		want["SATA-1-0"], want["SATA-2-0"] = d.Image, d.ISO
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("showvminfo %s=%q, want %q", k, m[k], v)
		}
	}
	// Not in the machine-readable form: the promiscuous mode (the other form's NIC line) and the
	// NAT's use of the host's resolver (the settings file).
	if human := d.mustVBM(t, "showvminfo", d.UUID); !strings.Contains(human, "Attachment: Host-only Interface '"+d.HostOnlyIf+"'") || !strings.Contains(human, "Promisc Policy: deny") {
		t.Errorf("showvminfo: NIC 2 is not host-only on %s with promiscuous mode deny:\n%s", d.HostOnlyIf, human)
	}
	if cfg, err := os.ReadFile(m["CfgFile"]); err != nil || !strings.Contains(string(cfg), `<DNS use-host-resolver="true"/>`) {
		t.Errorf("the settings file %s: NIC 1's NAT does not use the host's resolver (%v)", m["CfgFile"], err)
	}
	if mb, err := ParseCapacityMB(d.mustVBM(t, "showmediuminfo", "disk", d.Disk)); err != nil || mb != 20000 {
		t.Errorf("the disk is %d MB (%v), want 20000", mb, err)
	}
	srv, ok := ParseDHCPServers(d.mustVBM(t, "list", "dhcpservers"))["HostInterfaceNetworking-"+d.HostOnlyIf]
	if !ok || !srv.Enabled || !srv.On(plan.Net) || srv.IP != plan.ServerIP || srv.Lower != plan.LowerIP {
		t.Errorf("the DHCP server of %s: %+v, want one on %s", d.HostOnlyIf, srv, plan.Net)
	}
	if ifs := ParseHostOnlyIfs(d.mustVBM(t, "list", "hostonlyifs")); findHostOnly(ifs, plan) == nil || findHostOnly(ifs, plan).Name != d.HostOnlyIf {
		t.Errorf("the host-only interface %s is not listed on %s: %+v", d.HostOnlyIf, plan.Net, ifs)
	}
	cidatatest.Check(t, d.ISO, testKey)
	// The address is read from the Guest Additions' properties first: a VM that never ran has none
	// (and its guest cannot be asked), so the wait ends with what it saw.
	d.addressTimeout, d.poll = time.Millisecond, time.Millisecond
	noGuest := func(context.Context, ...string) (string, error) { return "", errors.New("the VM is not running") }
	if err := d.ProbeAddress(ctx, noGuest); err == nil || !strings.Contains(err.Error(), "got no IPv4 address") {
		t.Errorf("ProbeAddress of a VM that never ran: %v", err)
	}

	// Remove: the VM, its disk, the seed, the folder.
	if err := d.Remove(ctx); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if st, err := d.State(ctx); err != nil || st != drivers.NotFound {
		t.Errorf("after Remove: %s %v", st, err)
	}
	for _, what := range []string{"vms", "hdds", "dvds"} {
		out := d.mustVBM(t, "list", what)
		for _, left := range []string{name, d.UUID, d.Disk, d.ISO, d.Image} {
			if strings.Contains(out, left) {
				t.Errorf("list %s still has %s:\n%s", what, left, out)
			}
		}
	}
	if _, err := os.Stat(d.Folder); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the VM's folder %s is left: %v", d.Folder, err)
	}
}

// TestRealFailedCreateClosesTheDisk: a create that fails between making the disk and attaching it
// (the disk is then registered, with no VM) is undone by Remove: nothing registered or on disk.
func TestRealFailedCreateClosesTheDisk(t *testing.T) {
	d, tr := realDriver(t, os.Getenv("VBOX_REAL_CIDR"))
	defer tr.save(t)
	d.run = failing{tr, "storageattach"}
	ctx := context.Background()
	if err := d.Create(ctx, drivers.CreateSpec{Name: "real-half", AuthorizedKey: testKey}); err == nil {
		t.Fatal("the create did not fail")
	}
	if !strings.Contains(d.mustVBM(t, "list", "hdds"), d.Disk) {
		t.Fatalf("the disk %s was not registered before the failure", d.Disk)
	}
	if err := d.Remove(ctx); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if out := d.mustVBM(t, "list", "hdds"); strings.Contains(out, d.Disk) {
		t.Errorf("the disk is still registered:\n%s", out)
	}
	if _, err := os.Stat(d.Folder); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the VM's folder %s is left: %v", d.Folder, err)
	}
}

// failing fails one VBoxManage command (as a disk full or a crash would) and runs the others.
type failing struct {
	r    Runner
	verb string
}

func (f failing) Run(ctx context.Context, args ...string) (string, error) {
	if args[0] == f.verb {
		return "", NewError(args, 1, "VBoxManage: error: the test fails "+f.verb, errors.New("exit status 1"))
	}
	return f.r.Run(ctx, args...)
}

// TestRealHostOnlyCreate: without a host-only interface for the range, the create tries to make
// one; without VirtualBox's vboxnetadp module that fails, in one line with the fix, before any VM
// is made.
func TestRealHostOnlyCreate(t *testing.T) {
	d, tr := realDriver(t, "192.168.57.1/24")
	defer tr.save(t)
	ctx := context.Background()
	if err := d.Validate(ctx, "real2"); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	err := d.Create(ctx, drivers.CreateSpec{Name: "real2", AuthorizedKey: testKey})
	var ve *Error
	if !errors.As(err, &ve) || strings.Join(ve.Args, " ") != "hostonlyif create" {
		t.Fatalf("the create should fail at hostonlyif create: %v", err)
	}
	for _, w := range []string{"Failed to create the host-only adapter", "no /dev/vboxnetctl", "modprobe vboxnetadp", "vboxconfig"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the error lacks %q: %v", w, err)
		}
	}
	if d.UUID != "" || strings.Contains(d.mustVBM(t, "list", "vms"), "real2") {
		t.Errorf("a VM was made: %q", d.UUID)
	}
}
