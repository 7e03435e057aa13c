package virtualbox

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/internal/cidata/cidatatest"
)

const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIVirtualBoxTestKey machine-manager1"

// newTestDriver is a driver on the fake, with a fixed port and MAC and a host whose only
// network is 10.0.0.0/24 on eth0.
func newTestDriver(t *testing.T, f *fakeVBox) *Driver {
	d := New().(*Driver)
	d.SetRunner(f)
	d.freePort = func() (int, error) { return 42187, nil }
	d.newMAC = func() string { return "080027C0FFEE" }
	d.hostNets = func() ([]HostNet, error) {
		return []HostNet{{Via: "eth0", Net: net.IPNet{IP: net.IPv4(10, 0, 0, 0).To4(), Mask: net.CIDRMask(24, 32)}}}, nil
	}
	d.poll, d.stopTimeout, d.addressTimeout = time.Millisecond, 20*time.Millisecond, 50*time.Millisecond
	d.Image = filepath.Join(f.home, "cloud.vmdk")
	if err := os.WriteFile(d.Image, []byte("# Disk DescriptorFile\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.CPUs, d.MemoryMiB = 2, 2048
	return d
}

func create(t *testing.T, f *fakeVBox, d *Driver) {
	t.Helper()
	ctx := context.Background()
	if err := d.Validate(ctx, "manager1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Create(ctx, drivers.CreateSpec{Name: "manager1", AuthorizedKey: testKey}); err != nil {
		t.Fatal(err)
	}
}

func sameSequence(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s: the VBoxManage calls were\n  %s\nwant\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestCreateSequence: the whole ordered command sequence of a create on a host without the
// 192.168.99.1/24 host-only network (made, with its DHCP server), from a cloud disk image.
func TestCreateSequence(t *testing.T) {
	f := newFake(t)
	f.hostOnly, f.dhcp = "list-hostonlyifs-one.txt", "list-dhcpservers-one.txt"
	d := newTestDriver(t, f)
	create(t, f, d)
	vm := "4b0a5a3e-6c1d-4f8e-9d36-1f0b7c9a2e51"
	dir := "$HOME/VirtualBox VMs/manager1"
	sameSequence(t, "create", f.argvs(), []string{
		"--version",
		"list vms",
		"list hostonlyifs",
		"list hostonlyifs",
		"hostonlyif create",
		"hostonlyif ipconfig vboxnet1 --ip 192.168.99.1 --netmask 255.255.255.0",
		"list dhcpservers",
		"dhcpserver add --netname HostInterfaceNetworking-vboxnet1 --ip 192.168.99.2 --netmask 255.255.255.0 --lowerip 192.168.99.100 --upperip 192.168.99.254 --enable",
		"createvm --name manager1 --ostype Linux_64 --register",
		"modifyvm " + vm + " --firmware bios --cpus 2 --memory 2048 --acpi on --ioapic on --rtcuseutc on --boot1 disk --boot2 dvd --boot3 none --boot4 none",
		"modifyvm " + vm + " --nic1 nat --nictype1 virtio --cableconnected1 on --natdnshostresolver1 on --natpf1 ssh,tcp,127.0.0.1,42187,,22",
		"modifyvm " + vm + " --nic2 hostonly --nictype2 virtio --nicpromisc2 deny --hostonlyadapter2 vboxnet1 --macaddress2 080027C0FFEE --cableconnected2 on",
		"storagectl " + vm + " --name SATA --add sata --portcount 3 --hostiocache on",
		"clonemedium disk $HOME/cloud.vmdk " + dir + "/disk.vdi --format VDI",
		"closemedium disk $HOME/cloud.vmdk",
		"showmediuminfo disk " + dir + "/disk.vdi",
		"modifymedium disk " + dir + "/disk.vdi --resizebyte 20971520000",
		"storageattach " + vm + " --storagectl SATA --port 0 --device 0 --type hdd --medium " + dir + "/disk.vdi",
		"storageattach " + vm + " --storagectl SATA --port 1 --device 0 --type dvddrive --medium " + dir + "/cidata.iso",
		"startvm " + vm + " --type headless",
	})
	// The seed the VM boots with is read back by a real tool and holds the key.
	cidatatest.Check(t, d.ISO, testKey)
	ep, _ := d.Endpoint(context.Background())
	if ep.SSHHost != "127.0.0.1" || ep.SSHPort != 42187 || ep.SSHUser != "docker" || ep.IP != "" {
		t.Errorf("endpoint before the address is read: %+v", ep)
	}
}

// TestCreateReusesNetworkAndBootsISO: an existing host-only network and DHCP server are used as
// they are; an ISO gets an empty disk of the asked size and the first DVD drive (the BIOS boots
// from it), the seed the second.
func TestCreateReusesNetworkAndBootsISO(t *testing.T) {
	f := newFake(t)
	d := newTestDriver(t, f)
	d.Image = filepath.Join(f.home, "live.iso")
	if err := os.WriteFile(d.Image, []byte("CD001"), 0o644); err != nil {
		t.Fatal(err)
	}
	create(t, f, d)
	got := strings.Join(f.argvs(), "\n")
	for _, absent := range []string{"hostonlyif create", "dhcpserver add", "dhcpserver modify", "clonemedium", "modifymedium"} {
		if strings.Contains(got, absent) {
			t.Errorf("%q was called:\n%s", absent, got)
		}
	}
	for _, want := range []string{
		"createmedium disk --filename $HOME/VirtualBox VMs/manager1/disk.vdi --size 20000 --format VDI",
		"--hostonlyadapter2 vboxnet1",
		"storageattach 4b0a5a3e-6c1d-4f8e-9d36-1f0b7c9a2e51 --storagectl SATA --port 1 --device 0 --type dvddrive --medium $HOME/live.iso",
		"storageattach 4b0a5a3e-6c1d-4f8e-9d36-1f0b7c9a2e51 --storagectl SATA --port 2 --device 0 --type dvddrive --medium $HOME/VirtualBox VMs/manager1/cidata.iso",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
}

// TestProbeAddress: the host-only address from Guest Additions (7.x and 6.x outputs), and from
// `ip` over SSH when the guest has none, waiting for the DHCP lease.
func TestProbeAddress(t *testing.T) {
	noSSH := func(ctx context.Context, argv ...string) (string, error) {
		return "", errors.New("SSH must not be needed")
	}
	for _, props := range []string{"guestproperty-enumerate-7.txt", "guestproperty-enumerate-6.txt"} {
		f := newFake(t)
		f.guestProps = props
		d := newTestDriver(t, f)
		create(t, f, d)
		if err := d.ProbeAddress(context.Background(), noSSH); err != nil || d.IP != "192.168.99.101" {
			t.Errorf("%s: %q, %v", props, d.IP, err)
		}
	}

	f := newFake(t)
	d := newTestDriver(t, f)
	create(t, f, d)
	calls := 0
	ssh := func(ctx context.Context, argv ...string) (string, error) {
		calls++
		switch strings.Join(argv, " ") {
		case "ip -o link":
			return recorded(t, "guest-ip-link.txt"), nil
		case "ip -o -4 addr":
			if calls < 4 { // the first look is before the lease
				return recorded(t, "guest-ip-addr-no-lease.txt"), nil
			}
			return recorded(t, "guest-ip-addr.txt"), nil
		}
		return "", errors.New("unexpected command " + strings.Join(argv, " "))
	}
	if err := d.ProbeAddress(context.Background(), ssh); err != nil || d.IP != "192.168.99.101" || calls != 4 {
		t.Fatalf("over SSH: %q, %v after %d commands", d.IP, err, calls)
	}
	ep, _ := d.Endpoint(context.Background())
	if ep.IP != "192.168.99.101" || ep.SSHHost != "127.0.0.1" || len(ep.Addresses) != 1 {
		t.Errorf("endpoint: %+v", ep)
	}

	// No lease ever: the error names the NIC and what was last seen.
	d.IP = ""
	never := func(ctx context.Context, argv ...string) (string, error) {
		if argv[2] == "link" {
			return recorded(t, "guest-ip-link.txt"), nil
		}
		return recorded(t, "guest-ip-addr-no-lease.txt"), nil
	}
	err := d.ProbeAddress(context.Background(), never)
	if err == nil || !strings.Contains(err.Error(), "080027C0FFEE") || !strings.Contains(err.Error(), "10.0.2.15/24") || !strings.Contains(err.Error(), "dhcpservers") {
		t.Errorf("no lease: %v", err)
	}
}

// TestLifecycleSequences: start, stop (ACPI honoured, and not), kill, restart of a paused VM,
// and rm, each as its ordered command sequence.
func TestLifecycleSequences(t *testing.T) {
	ctx := context.Background()
	vm := "4b0a5a3e-6c1d-4f8e-9d36-1f0b7c9a2e51"
	f := newFake(t)
	d := newTestDriver(t, f)
	create(t, f, d)
	info := "showvminfo " + vm + " --machinereadable"

	f.reset()
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	sameSequence(t, "stop", f.argvs(), []string{info, "controlvm " + vm + " acpipowerbutton", info})
	if st, _ := d.State(ctx); st != drivers.Stopped {
		t.Errorf("after stop: %s", st)
	}

	f.reset()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	sameSequence(t, "start", f.argvs(), []string{info, "startvm " + vm + " --type headless"})

	f.reset()
	f.acpiStops = false
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	got := f.argvs()
	if len(got) < 4 || got[1] != "controlvm "+vm+" acpipowerbutton" || got[len(got)-1] != "controlvm "+vm+" poweroff" {
		t.Errorf("stop of a guest that ignores ACPI: %v", got)
	}

	for _, st := range []string{"saved", "aborted"} {
		f.state = st
		f.reset()
		if err := d.Start(ctx); err != nil {
			t.Fatal(err)
		}
		sameSequence(t, "start from "+st, f.argvs(), []string{info, "startvm " + vm + " --type headless"})
	}

	f.state = "paused"
	f.reset()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	sameSequence(t, "start of a paused VM", f.argvs(), []string{info, "controlvm " + vm + " resume"})

	f.reset()
	if err := d.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	sameSequence(t, "kill", f.argvs(), []string{info, "controlvm " + vm + " poweroff"})

	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	iso := d.ISO
	f.reset()
	if err := d.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	sameSequence(t, "rm", f.argvs(), []string{info, "controlvm " + vm + " poweroff", "unregistervm " + vm + " --delete",
		"closemedium dvd $HOME/VirtualBox VMs/manager1/cidata.iso"})
	if _, err := os.Stat(iso); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the seed ISO is left: %v", err)
	}
	// rm again, the VM gone: no error, nothing unregistered.
	f.reset()
	if err := d.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := d.State(ctx); st != drivers.NotFound {
		t.Errorf("state of a removed VM: %s", st)
	}
	for _, c := range f.argvs() {
		if strings.HasPrefix(c, "unregistervm") || strings.HasPrefix(c, "controlvm") {
			t.Errorf("second rm called %q", c)
		}
	}
}

// TestRecordedShowVMInfo: every recorded showvminfo parses, with its state and the facts the
// driver reads.
func TestRecordedShowVMInfo(t *testing.T) {
	for file, want := range map[string]drivers.State{
		"showvminfo-running.txt": drivers.Running, "showvminfo-poweroff.txt": drivers.Stopped,
		"showvminfo-saved.txt": drivers.Stopped, "showvminfo-aborted.txt": drivers.Stopped,
		"showvminfo-paused.txt": drivers.Paused, "showvminfo-poweroff-7.0.txt": drivers.Stopped,
	} {
		m := ParseMachineReadable(recorded(t, file))
		if got := StateOf(m["VMState"]); got != want {
			t.Errorf("%s: state %s, want %s", file, got, want)
		}
		if m["macaddress2"] != "080027C0FFEE" || m["hostonlyadapter2"] != "vboxnet1" || m["Forwarding(0)"] != "ssh,tcp,127.0.0.1,42187,,22" ||
			m["SATA-1-0"] != "/home/user/VirtualBox VMs/manager1/cidata.iso" || m["memory"] != "2048" || m["name"] != "manager1" {
			t.Errorf("%s: facts misread: %v", file, m)
		}
		if _, ok := m["Encryption:     disabled"]; ok {
			t.Errorf("%s: a line of another shape was read as a key", file)
		}
	}
	if m := ParseMachineReadable(recorded(t, "showvminfo-saved.txt")); !strings.HasSuffix(m["VMStateFile"], ".sav") {
		t.Errorf("saved state file: %q", m["VMStateFile"])
	}
	if StateOf("gurumeditation") != drivers.Error {
		t.Error("an unknown state must be an error state")
	}
}

// TestRecordedLists: hostonlyifs, dhcpservers, vms, createvm, hostonlyif create, showmediuminfo.
func TestRecordedLists(t *testing.T) {
	ifs := ParseHostOnlyIfs(recorded(t, "list-hostonlyifs.txt"))
	if len(ifs) != 2 || ifs[1].Name != "vboxnet1" || ifs[1].IP.String() != "192.168.99.1" || ifs[1].Mask.String() != "ffffff00" ||
		ifs[1].DHCP || ifs[1].Status != "Up" || ifs[1].NetworkName != "HostInterfaceNetworking-vboxnet1" {
		t.Errorf("hostonlyifs: %+v", ifs)
	}
	if old := ParseHostOnlyIfs(recorded(t, "list-hostonlyifs-7.0.txt")); len(old) != 2 || old[1].Name != "vboxnet1" || old[1].IP.String() != "192.168.99.1" || old[1].NetworkName != "HostInterfaceNetworking-vboxnet1" {
		t.Errorf("hostonlyifs of 7.0: %+v", old)
	}
	dh := ParseDHCPServers(recorded(t, "list-dhcpservers.txt"))
	_, n99, _ := net.ParseCIDR("192.168.99.0/24")
	if s := dh["HostInterfaceNetworking-vboxnet1"]; len(dh) != 2 || s != (DHCPServer{NetworkName: "HostInterfaceNetworking-vboxnet1", IP: "192.168.99.2",
		Mask: "255.255.255.0", Lower: "192.168.99.100", Upper: "192.168.99.254", Enabled: true}) || !s.On(n99) {
		t.Errorf("dhcpservers: %+v", dh)
	}
	// VirtualBox's own default server for vboxnet0 is on 192.168.56.0/24, whatever vboxnet0 is.
	if s := ParseDHCPServers(recorded(t, "list-dhcpservers-one.txt"))["HostInterfaceNetworking-vboxnet0"]; s.IP != "192.168.56.100" || s.On(n99) {
		t.Errorf("the default server: %+v", s)
	}
	// VirtualBox 6.0 and before: the same facts, other keys.
	old := "NetworkName:    HostInterfaceNetworking-vboxnet0\nIP:             192.168.99.2\nNetworkMask:    255.255.255.0\nlowerIPAddress: 192.168.99.100\nupperIPAddress: 192.168.99.254\nEnabled:        No\n"
	if s := ParseDHCPServers(old)["HostInterfaceNetworking-vboxnet0"]; s.IP != "192.168.99.2" || s.Lower != "192.168.99.100" || s.Upper != "192.168.99.254" || s.Enabled || !s.On(n99) {
		t.Errorf("a 6.0 server: %+v", s)
	}
	if p := ParseGuestProperties(recorded(t, "guestproperty-enumerate-stopped.txt")); len(p) != 0 {
		t.Errorf("a stopped VM's properties: %v", p)
	}
	if vms := ParseVMList(recorded(t, "list-vms.txt")); len(vms) != 2 || vms[1] != "worker 1" {
		t.Errorf("vms: %q", vms)
	}
	if n, err := ParseCreatedIf(recorded(t, "hostonlyif-create.txt")); err != nil || n != "vboxnet1" {
		t.Errorf("hostonlyif create: %q %v", n, err)
	}
	if _, err := ParseCreatedIf("0%...100%\n"); err == nil {
		t.Error("hostonlyif create without a name accepted")
	}
	out := recorded(t, "createvm.txt")
	if p, err := ParseSettingsFile(out); err != nil || p != "/home/user/VirtualBox VMs/manager1/manager1.vbox" || ParseCreatedUUID(out) != "4b0a5a3e-6c1d-4f8e-9d36-1f0b7c9a2e51" {
		t.Errorf("createvm: %q %v", p, err)
	}
	if mb, err := ParseCapacityMB(recorded(t, "showmediuminfo.txt")); err != nil || mb != 2252 {
		t.Errorf("showmediuminfo: %d %v", mb, err)
	}
	if p := ParseGuestProperties(recorded(t, "guestproperty-enumerate-no-additions.txt")); AddressFromGuestProperties(p, "080027C0FFEE") != "" || p["/VirtualBox/HostInfo/VBoxVer"] != "7.0.14" {
		t.Errorf("guest properties without additions: %v", p)
	}
}

// TestRecordedErrors: VBoxManage's own message surfaces, with the fix for the known ones.
func TestRecordedErrors(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		fail, file string
		want       []string
	}{
		{"startvm", "error-vtx.txt", []string{"VBoxManage startvm", "VT-x is disabled in the BIOS for all CPU modes", "enable hardware virtualization"}},
		{"hostonlyif ipconfig", "error-hostonly-denied.txt", []string{"Access denied", "192.168.56.0/21", "/etc/vbox/networks.conf"}},
		{"createvm", "error-name-clash.txt", []string{"manager1.vbox' already exists", "unregistervm"}},
		{"modifyvm", "error-locked.txt", []string{"already locked for a session", "close it"}},
		{"clonemedium", "error-kernel-driver-oracle.txt", []string{"WARNING: The vboxdrv kernel module is not loaded", "vboxconfig"}},
		{"startvm", "error-kernel-driver.txt", []string{"terminated unexpectedly during startup", "no /dev/vboxdrv", "modprobe vboxdrv", "/sbin/vboxconfig", "Secure Boot", "VT-x/AMD-V"}},
		{"hostonlyif create", "error-hostonlyif-create.txt", []string{"Failed to create the host-only adapter", "no /dev/vboxnetctl", "modprobe vboxnetadp", "vboxconfig"}},
	}
	for _, c := range cases {
		f := newFake(t)
		f.hostOnly = "list-hostonlyifs-one.txt"
		f.fail[c.fail] = c.file
		d := newTestDriver(t, f)
		err := d.Validate(ctx, "manager1")
		if err == nil {
			err = d.Create(ctx, drivers.CreateSpec{Name: "manager1", AuthorizedKey: testKey})
		}
		if err == nil {
			t.Errorf("%s failing: no error", c.fail)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s failing: %q lacks %q", c.fail, err, w)
			}
		}
		if strings.Count(err.Error(), "\n") > 0 {
			t.Errorf("%s failing: the error is not one line: %q", c.fail, err)
		}
		// What the failed create made is removed; a VM it did not make is never touched.
		f.reset()
		if err := d.Remove(ctx); err != nil {
			t.Errorf("%s failing, then rm: %v", c.fail, err)
		}
		for _, call := range f.argvs() {
			if c.fail == "createvm" && (strings.HasPrefix(call, "unregistervm") || strings.HasPrefix(call, "controlvm")) {
				t.Errorf("rm after a name clash touched the other VM: %q", call)
			}
		}
		if c.fail != "createvm" && f.state != "" {
			t.Errorf("%s failing, then rm: the VM is left (%s)", c.fail, f.state)
		}
	}
}

// TestValidate: bad flags, a VM name VirtualBox already has, and a host-only range that collides
// with a network the host reaches, each refused before anything is made.
func TestValidate(t *testing.T) {
	ctx := context.Background()
	f := newFake(t)
	d := newTestDriver(t, f)
	d.HostOnlyCIDR = "192.168.99.0/24"
	if err := d.Validate(ctx, "manager1"); err == nil || !strings.Contains(err.Error(), "192.168.99.1/24") {
		t.Errorf("network address as the host's: %v", err)
	}
	d.HostOnlyCIDR = "192.168.99.1/30"
	if err := d.Validate(ctx, "manager1"); err == nil || !strings.Contains(err.Error(), "prefix") {
		t.Errorf("tiny network: %v", err)
	}
	d.HostOnlyCIDR = "172.31.5.1/24"
	d.hostNets = func() ([]HostNet, error) {
		return ParseProcRoutes("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n" +
			"eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n" +
			"tun0\t0000100A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n" +
			"wg0\t000010AC\t00000000\t0001\t0\t0\t0\t0000F0FF\t0\t0\t0\n"), nil
	}
	err := d.Validate(ctx, "manager1")
	if err == nil || !strings.Contains(err.Error(), "172.16.0.0/12") || !strings.Contains(err.Error(), "wg0") {
		t.Errorf("collision with a route: %v", err)
	}
	d.HostOnlyCIDR = "192.168.99.1/24" // collides too, but VirtualBox already has it: fine
	d.hostNets = func() ([]HostNet, error) {
		return []HostNet{{Via: "eth1", Net: net.IPNet{IP: net.IPv4(192, 168, 99, 0).To4(), Mask: net.CIDRMask(24, 32)}}}, nil
	}
	if err := d.Validate(ctx, "manager1"); err != nil {
		t.Errorf("an existing host-only network: %v", err)
	}
	if err := d.Validate(ctx, "worker 1"); err == nil || !strings.Contains(err.Error(), "already has a VM named") {
		t.Errorf("name clash: %v", err)
	}
	qcow := filepath.Join(f.home, "debian.qcow2")
	_ = os.WriteFile(qcow, []byte("QFI\xfb\x00\x00\x00\x03"), 0o644)
	d.Image = qcow
	if err := d.Validate(ctx, "manager1"); err == nil || !strings.Contains(err.Error(), "qemu-img convert") {
		t.Errorf("qcow2: %v", err)
	}
	d.Image = filepath.Join(f.home, "missing.vmdk")
	if err := d.Validate(ctx, "manager1"); err == nil || !strings.Contains(err.Error(), "--virtualbox-image") {
		t.Errorf("missing image: %v", err)
	}
	for _, c := range f.calls {
		if c[0] != "--version" && c[0] != "list" {
			t.Errorf("Validate changed something: %v", c)
		}
	}
}

// TestDockerMachineNICFlags: docker-machine's NIC and UI flags reach the plan, and bad values are
// refused before anything is made.
func TestDockerMachineNICFlags(t *testing.T) {
	f := newFake(t)
	d := newTestDriver(t, f)
	d.NATNICType, d.HostOnlyNICType, d.HostOnlyPromisc, d.UIType = "82540EM", "Am79C973", "allow-all", "gui"
	create(t, f, d)
	got := strings.Join(f.argvs(), "\n")
	for _, want := range []string{"--nictype1 82540EM", "--nictype2 Am79C973 --nicpromisc2 allow-all", "startvm 4b0a5a3e-6c1d-4f8e-9d36-1f0b7c9a2e51 --type gui"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
	for _, bad := range []func(*Driver){
		func(d *Driver) { d.NATNICType = "e1000" },
		func(d *Driver) { d.HostOnlyPromisc = "all" },
		func(d *Driver) { d.UIType = "window" },
	} {
		d := newTestDriver(t, newFake(t))
		bad(d)
		if err := d.Validate(context.Background(), "manager1"); err == nil || !strings.Contains(err.Error(), "--virtualbox-") {
			t.Errorf("accepted: %v", err)
		}
	}
}

func TestPlanHostOnly(t *testing.T) {
	p, err := PlanHostOnly("192.168.99.1/24")
	if err != nil || p.HostIP != "192.168.99.1" || p.Netmask != "255.255.255.0" || p.ServerIP != "192.168.99.2" ||
		p.LowerIP != "192.168.99.100" || p.UpperIP != "192.168.99.254" {
		t.Errorf("%+v %v", p, err)
	}
	if p, _ := PlanHostOnly("10.20.0.2/16"); p.ServerIP != "10.20.0.3" || p.UpperIP != "10.20.255.254" {
		t.Errorf("%+v", p)
	}
	for _, bad := range []string{"", "192.168.99.1", "fd00::1/64", "nonsense/24"} {
		if _, err := PlanHostOnly(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestCreateMovesDHCPServer: VirtualBox's own settings have a DHCP server for vboxnet0 in
// 192.168.56.0/24 (recorded); when vboxnet0 is on the machine's network instead, its server is
// set to hand out that network's addresses.
func TestCreateMovesDHCPServer(t *testing.T) {
	f := newFake(t)
	f.hostOnlyOut = strings.ReplaceAll(recorded(t, "list-hostonlyifs-one.txt"), "192.168.56.1", "192.168.99.1")
	f.dhcp = "list-dhcpservers-one.txt"
	d := newTestDriver(t, f)
	create(t, f, d)
	got := strings.Join(f.argvs(), "\n")
	if !strings.Contains(got, "dhcpserver modify --netname HostInterfaceNetworking-vboxnet0 --ip 192.168.99.2 --netmask 255.255.255.0 --lowerip 192.168.99.100 --upperip 192.168.99.254 --enable") ||
		strings.Contains(got, "hostonlyif create") || !strings.Contains(got, "--hostonlyadapter2 vboxnet0") {
		t.Errorf("the calls:\n%s", got)
	}
}

// TestFailedCreateClosesTheDisk: a create that fails after the disk was made but before it was
// attached leaves it registered with no VM (real VirtualBox does): Remove closes and deletes it.
func TestFailedCreateClosesTheDisk(t *testing.T) {
	f := newFake(t)
	f.fail["modifymedium"] = "error-locked.txt"
	d := newTestDriver(t, f)
	if err := d.Validate(context.Background(), "manager1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Create(context.Background(), drivers.CreateSpec{Name: "manager1", AuthorizedKey: testKey}); err == nil {
		t.Fatal("the create did not fail")
	}
	f.reset()
	if err := d.Remove(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(f.argvs(), "\n")
	if !strings.Contains(got, "unregistervm 4b0a5a3e-6c1d-4f8e-9d36-1f0b7c9a2e51 --delete") || !strings.Contains(got, "closemedium disk $HOME/VirtualBox VMs/manager1/disk.vdi --delete") {
		t.Errorf("rm after a failed create:\n%s", got)
	}
}
