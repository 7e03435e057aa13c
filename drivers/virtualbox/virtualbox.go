// Package virtualbox is the driver for VirtualBox VMs, made through VBoxManage's command line as
// docker-machine's VirtualBox driver made them: a NAT NIC with SSH forwarded from 127.0.0.1 and a
// host-only NIC whose address is the machine's. Any cloud image (or an ISO) boots with the
// machine's key from a cloud-init "cidata" ISO made in Go, so no boot2docker is needed.
//
// Every VBoxManage call goes through a Runner; the plans (argv lists) are built by pure
// functions, so the whole command sequence is tested against a fake that replays VBoxManage's
// outputs (testdata/vboxmanage).
package virtualbox

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofrs/flock"

	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/internal/cidata"
	"github.com/machine-tools/machine/internal/fsutil"
	"github.com/machine-tools/machine/internal/imagecache"
	"github.com/machine-tools/machine/internal/wait"
)

// Name is the driver's name.
const Name = "virtualbox"

// DefaultImage is the image used when none is given: Ubuntu's cloud image in VirtualBox's own
// disk format, which boots with cloud-init's NoCloud seed.
const DefaultImage = "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.vmdk"

// Driver is one VirtualBox VM.
type Driver struct {
	// HostKey is the SSH host key made for the VM (its public half): cloud-init installs it, and
	// machine pins it before the first connection.
	HostKey      string `json:"HostKey,omitempty"`
	CPUs         int    `json:"CPUs"`
	MemoryMiB    int    `json:"MemoryMiB"`
	DiskSizeMB   int    `json:"DiskSizeMB"`
	HostOnlyCIDR string `json:"HostOnlyCIDR"`
	// Image is a path or URL: a disk image (vmdk, vdi, vhd, raw/img) or a bootable ISO.
	Image         string `json:"Image"`
	ImageChecksum string `json:"ImageChecksum,omitempty"`
	SSHUser       string `json:"SSHUser"`
	// NIC models and the host-only NIC's promiscuous mode, and how the VM's window is shown, as
	// docker-machine's --virtualbox-nat-nictype, -hostonly-nictype, -hostonly-nicpromisc, -ui-type.
	NATNICType      string `json:"NATNICType,omitempty"`
	HostOnlyNICType string `json:"HostOnlyNICType,omitempty"`
	HostOnlyPromisc string `json:"HostOnlyPromisc,omitempty"`
	UIType          string `json:"UIType,omitempty"`
	// Set at create.
	VMName     string `json:"VMName,omitempty"`
	UUID       string `json:"UUID,omitempty"`
	Folder     string `json:"Folder,omitempty"`
	Disk       string `json:"Disk,omitempty"`
	ISO        string `json:"ISO,omitempty"`
	BootISO    string `json:"BootISO,omitempty"` // an ISO image the VM boots from (not its own)
	HostOnlyIf string `json:"HostOnlyIf,omitempty"`
	MAC        string `json:"MAC,omitempty"` // the host-only NIC's, as VirtualBox writes it (080027C0FFEE)
	SSHPort    int    `json:"SSHPort,omitempty"`
	IP         string `json:"IP,omitempty"`

	run              Runner
	hostNets         func() ([]HostNet, error)
	freePort         func() (int, error)
	newMAC           func() string
	poll             time.Duration
	stopTimeout      time.Duration
	addressTimeout   time.Duration
	progress         func(string)
	downloadProgress imagecache.Progress
}

// New returns a driver with docker-machine's defaults.
func New() drivers.Driver {
	return &Driver{CPUs: 1, MemoryMiB: 1024, DiskSizeMB: 20000, HostOnlyCIDR: "192.168.99.1/24", SSHUser: "docker"}
}

// SetRunner replaces the VBoxManage runner (tests inject a fake).
func (d *Driver) SetRunner(r Runner) { d.run = r }

// DriverName implements drivers.Driver.
func (d *Driver) DriverName() string { return Name }

func (d *Driver) say(format string, a ...any) {
	if d.progress != nil {
		d.progress(fmt.Sprintf(format, a...))
	}
}

func (d *Driver) vbm(ctx context.Context, args ...string) (string, error) {
	if d.run == nil {
		p, err := Locate(os.Getenv, exec.LookPath)
		if err != nil {
			return "", err
		}
		d.run = ExecRunner{Path: p}
	}
	// VBoxManage reaches VirtualBox through VBoxSVC, which it starts on demand and which exits a
	// few seconds after its last client: a call that comes while it exits (or before it is up,
	// on a loaded host) fails with "Failed to create the VirtualBox object!" although nothing is
	// wrong (seen here: a create right after another VBoxManage client). That answer, and only
	// it, is asked again, for a few seconds.
	for attempt := 1; ; attempt++ {
		out, err := d.run.Run(ctx, args...)
		if err == nil || attempt == vboxSVCAttempts || !strings.Contains(err.Error(), "Failed to create the VirtualBox object") {
			return out, err
		}
		if werr := wait.Sleep(ctx, vboxSVCPause); werr != nil {
			return out, err
		}
	}
}

// vboxSVCAttempts bounds the calls made while VBoxSVC is starting or exiting, vboxSVCPause
// apart.
const vboxSVCAttempts = 5

var vboxSVCPause = time.Second

func (d *Driver) timing() (poll, stop, addr time.Duration) {
	poll, stop, addr = d.poll, d.stopTimeout, d.addressTimeout
	if poll == 0 {
		poll = time.Second
	}
	if stop == 0 {
		stop = 90 * time.Second
	}
	if addr == 0 {
		addr = 2 * time.Minute
	}
	return
}

// ref is how VBoxManage is told which VM: its UUID, so that a VM renamed or made by someone
// else under the same name is never touched.
func (d *Driver) ref() string {
	if d.UUID != "" {
		return d.UUID
	}
	return d.VMName
}

// HostOnlyPlan is the host-only network a CIDR asks for: the host's address on it and the
// DHCP server's range.
type HostOnlyPlan struct {
	HostIP, Netmask, ServerIP, LowerIP, UpperIP string
	Net                                         *net.IPNet
}

// PlanHostOnly reads --virtualbox-hostonly-cidr (the host's address and the prefix, e.g.
// 192.168.99.1/24).
func PlanHostOnly(cidr string) (HostOnlyPlan, error) {
	ip, n, err := net.ParseCIDR(cidr)
	if err != nil || ip.To4() == nil {
		return HostOnlyPlan{}, fmt.Errorf("--virtualbox-hostonly-cidr %q: give the host's IPv4 address and prefix, e.g. 192.168.99.1/24", cidr)
	}
	ones, _ := n.Mask.Size()
	if ones > 24 || ones < 8 {
		return HostOnlyPlan{}, fmt.Errorf("--virtualbox-hostonly-cidr %q: use a prefix from /8 to /24, e.g. 192.168.99.1/24", cidr)
	}
	if ip.Equal(n.IP) {
		return HostOnlyPlan{}, fmt.Errorf("--virtualbox-hostonly-cidr %q is the network's own address: give the host's address on it, e.g. %s", cidr, nth(n, 1)+"/"+strconv.Itoa(ones))
	}
	server := nth(n, 2)
	if server == ip.String() {
		server = nth(n, 3)
	}
	bcast := make(net.IP, 4)
	for i := range bcast {
		bcast[i] = n.IP.To4()[i] | ^n.Mask[i]
	}
	bcast[3]--
	return HostOnlyPlan{HostIP: ip.String(), Netmask: net.IP(n.Mask).String(), ServerIP: server,
		LowerIP: nth(n, 100), UpperIP: bcast.String(), Net: n}, nil
}

func nth(n *net.IPNet, k int) string {
	ip := make(net.IP, 4)
	copy(ip, n.IP.To4())
	v := uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
	v += uint32(k)
	return net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).String()
}

// HostNet is a network the host already routes (an interface's subnet or a route).
type HostNet struct {
	Via string
	Net net.IPNet
}

// hostNetworks lists the host's interface subnets and its routes (Linux: /proc/net/route),
// without VirtualBox's own host-only interfaces.
func hostNetworks() ([]HostNet, error) {
	var out []HostNet
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 || strings.HasPrefix(ifc.Name, "vboxnet") {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				out = append(out, HostNet{Via: ifc.Name, Net: net.IPNet{IP: ipn.IP.Mask(ipn.Mask), Mask: ipn.Mask}})
			}
		}
	}
	if b, err := os.ReadFile("/proc/net/route"); err == nil {
		out = append(out, ParseProcRoutes(string(b))...)
	}
	return out, nil
}

// ParseProcRoutes reads /proc/net/route's destinations (not the default route).
func ParseProcRoutes(s string) []HostNet {
	var out []HostNet
	for _, line := range strings.Split(s, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 8 || strings.HasPrefix(f[0], "vboxnet") {
			continue
		}
		dst, err1 := strconv.ParseUint(f[1], 16, 32)
		mask, err2 := strconv.ParseUint(f[7], 16, 32)
		if err1 != nil || err2 != nil || mask == 0 {
			continue
		}
		le := func(v uint64) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }
		out = append(out, HostNet{Via: f[0], Net: net.IPNet{IP: net.IP(le(dst)), Mask: net.IPMask(le(mask))}})
	}
	return out
}

// Collision names the host network that overlaps n, if one does.
func Collision(n *net.IPNet, host []HostNet) (HostNet, bool) {
	for _, h := range host {
		if n.Contains(h.Net.IP) || h.Net.Contains(n.IP) {
			return h, true
		}
	}
	return HostNet{}, false
}

// Validate checks the flags and VirtualBox before anything is made.
func (d *Driver) Validate(ctx context.Context, name string) error {
	if d.MemoryMiB < 256 {
		return fmt.Errorf("--virtualbox-memory %d: give at least 256 (MiB)", d.MemoryMiB)
	}
	if d.DiskSizeMB < 1024 {
		return fmt.Errorf("--virtualbox-disk-size %d: give at least 1024 (MB)", d.DiskSizeMB)
	}
	plan, err := PlanHostOnly(d.HostOnlyCIDR)
	if err != nil {
		return err
	}
	if err := validNICs(d.NATNICType, d.HostOnlyNICType, d.HostOnlyPromisc, d.UIType); err != nil {
		return err
	}
	if d.Image != "" && !imagecache.IsURL(d.Image) {
		if _, err := imageKind(d.Image); err != nil {
			return err
		}
	}
	if _, err := d.vbm(ctx, "--version"); err != nil {
		return err
	}
	out, err := d.vbm(ctx, "list", "vms")
	if err != nil {
		return err
	}
	for _, vm := range ParseVMList(out) {
		if vm == name {
			return fmt.Errorf("VirtualBox already has a VM named %q: pick another machine name, or remove that VM (VBoxManage unregistervm %q --delete)", name, name)
		}
	}
	out, err = d.vbm(ctx, "list", "hostonlyifs")
	if err != nil {
		return err
	}
	if findHostOnly(ParseHostOnlyIfs(out), plan) != nil {
		return nil
	}
	nets := d.hostNets
	if nets == nil {
		nets = hostNetworks
	}
	host, err := nets()
	if err != nil {
		return err
	}
	if h, clash := Collision(plan.Net, host); clash {
		return fmt.Errorf("the host-only network %s would collide with %s, which this host already reaches through %s: pick a free range with --virtualbox-hostonly-cidr (e.g. 192.168.56.1/24)", plan.Net, h.Net.String(), h.Via)
	}
	return nil
}

// validNICs checks the NIC models, the promiscuous mode and the UI type against VBoxManage's values.
func validNICs(nat, hostOnly, promisc, ui string) error {
	models := []string{"Am79C970A", "Am79C973", "82540EM", "82543GC", "82545EM", "virtio"}
	for flag, v := range map[string]string{"--virtualbox-nat-nictype": nat, "--virtualbox-hostonly-nictype": hostOnly} {
		if v != "" && !slices.Contains(models, v) {
			return fmt.Errorf("%s %q: use one of %s", flag, v, strings.Join(models, ", "))
		}
	}
	if promisc != "" && !slices.Contains([]string{"deny", "allow-vms", "allow-all"}, promisc) {
		return fmt.Errorf("--virtualbox-hostonly-nicpromisc %q: use deny, allow-vms or allow-all", promisc)
	}
	if ui != "" && !slices.Contains([]string{"headless", "gui", "sdl", "separate"}, ui) {
		return fmt.Errorf("--virtualbox-ui-type %q: use headless, gui, sdl or separate", ui)
	}
	return nil
}

// ParseVMList reads `list vms`: "name" {uuid} lines.
func ParseVMList(out string) []string {
	var names []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if i := strings.LastIndex(line, `" {`); strings.HasPrefix(line, `"`) && i > 0 {
			names = append(names, line[1:i])
		}
	}
	return names
}

func findHostOnly(ifs []HostOnlyIf, p HostOnlyPlan) *HostOnlyIf {
	want := net.ParseIP(p.HostIP)
	for i, h := range ifs {
		// VirtualBox on Windows 10 reports the mask of a new interface as 15.0.0.0.
		if h.IP.Equal(want) && (h.Mask.String() == p.Net.Mask.String() || h.Mask.String() == "0f000000") {
			return &ifs[i]
		}
	}
	return nil
}

// imageKind tells an image's kind by its name, and refuses formats VirtualBox cannot use.
func imageKind(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("the image %s cannot be read (%v): pass a disk image or ISO with --virtualbox-image, or a URL with --virtualbox-boot2docker-url", p, err)
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err == nil && string(magic) == "QFI\xfb" {
		return "", fmt.Errorf("the image %s is qcow2, which VirtualBox cannot boot: convert it first (qemu-img convert -O vdi %s disk.vdi)", p, p)
	}
	switch ext := strings.ToLower(filepath.Ext(p)); ext {
	case ".iso":
		return "iso", nil
	case ".vmdk", ".vdi", ".vhd", ".vhdx":
		return ext[1:], nil
	case ".img", ".raw":
		return "raw", nil
	}
	return "", fmt.Errorf("the image %s is not a kind VirtualBox boots: give a .vmdk, .vdi, .vhd, .img/.raw disk or an .iso", p)
}

// Create makes the VM, its disks and its network, and boots it. The address is read later, once
// SSH answers (ProbeAddress).
func (d *Driver) Create(ctx context.Context, spec drivers.CreateSpec) error {
	d.progress, d.downloadProgress = spec.Progress, spec.Download
	if d.Image == "" {
		d.Image = DefaultImage
	}
	plan, err := PlanHostOnly(d.HostOnlyCIDR)
	if err != nil {
		return err
	}
	img, err := imagecache.Fetch(ctx, d.Image, d.ImageChecksum, d.downloadProgress, d.say)
	if err != nil {
		return err
	}
	kind, err := imageKind(img)
	if err != nil {
		return err
	}
	if d.HostOnlyIf, err = d.hostOnlyNetwork(ctx, plan); err != nil {
		return err
	}
	if d.SSHPort == 0 {
		port := d.freePort
		if port == nil {
			port = freeLocalPort
		}
		if d.SSHPort, err = port(); err != nil {
			return err
		}
	}
	if d.newMAC != nil {
		d.MAC = d.newMAC()
	} else {
		d.MAC = randomMAC()
	}

	if d.CPUs < 1 { // docker-machine's -1: all of this computer's
		d.CPUs = min(runtime.NumCPU(), 32)
	}
	d.say("creating the VM")
	out, err := d.vbm(ctx, "createvm", "--name", spec.Name, "--ostype", "Linux_64", "--register")
	if err != nil {
		return err
	}
	d.VMName, d.UUID = spec.Name, ParseCreatedUUID(out)
	settings, err := ParseSettingsFile(out)
	if err != nil {
		return err
	}
	d.Folder = filepath.Dir(settings)
	for _, argv := range ConfigurePlan(d.ref(), d.CPUs, d.MemoryMiB, d.SSHPort, d.HostOnlyIf, d.MAC, d.nics()) {
		if _, err := d.vbm(ctx, argv...); err != nil {
			return err
		}
	}

	d.say("making the disk")
	d.Disk = filepath.Join(d.Folder, "disk.vdi")
	switch kind {
	case "iso":
		_, err = d.vbm(ctx, "createmedium", "disk", "--filename", d.Disk, "--size", strconv.Itoa(d.DiskSizeMB), "--format", "VDI")
	case "raw":
		_, err = d.vbm(ctx, "convertfromraw", img, d.Disk, "--format", "VDI")
	default:
		_, err = d.vbm(ctx, "clonemedium", "disk", img, d.Disk, "--format", "VDI")
		// clonemedium registers its source, and nothing unregisters it: the image would stay in
		// VirtualBox's media registry after every machine made from it is gone.
		_, _ = d.vbm(ctx, "closemedium", "disk", img)
	}
	if err != nil {
		return err
	}
	if kind != "iso" {
		out, err := d.vbm(ctx, "showmediuminfo", "disk", d.Disk)
		if err != nil {
			return err
		}
		capMB, err := ParseCapacityMB(out)
		if err != nil {
			return err
		}
		if d.DiskSizeMB > capMB {
			// In bytes: VirtualBox 7.1 and later refuse `--resize MB` to many times the size.
			if _, err := d.vbm(ctx, "modifymedium", "disk", d.Disk, "--resizebyte", strconv.FormatInt(int64(d.DiskSizeMB)<<20, 10)); err != nil {
				return err
			}
		}
	}
	if _, err := d.vbm(ctx, attach(d.ref(), 0, "hdd", d.Disk)...); err != nil {
		return err
	}

	d.say("writing the cloud-init seed")
	hk, err := cidata.NewHostKey("root@" + spec.Name)
	if err != nil {
		return err
	}
	d.HostKey = hk.Public
	iso, err := cidata.Seed(spec.Name, d.SSHUser, spec.AuthorizedKey, spec.Name+"-"+d.MAC, hk)
	if err != nil {
		return err
	}
	d.ISO = filepath.Join(d.Folder, "cidata.iso")
	if err := fsutil.WriteFileAtomic(d.ISO, iso, 0o600); err != nil { // it holds the VM's host key
		return err
	}
	// The BIOS boots from the first DVD drive only: a bootable ISO goes before the seed.
	seedPort := 1
	if kind == "iso" {
		if _, err := d.vbm(ctx, attach(d.ref(), 1, "dvddrive", img)...); err != nil {
			return err
		}
		d.BootISO, seedPort = img, 2
	}
	if _, err := d.vbm(ctx, attach(d.ref(), seedPort, "dvddrive", d.ISO)...); err != nil {
		return err
	}
	d.say("booting")
	_, err = d.vbm(ctx, "startvm", d.ref(), "--type", d.uiType())
	return err
}

func (d *Driver) uiType() string {
	if d.UIType == "" {
		return "headless"
	}
	return d.UIType
}

// ParseCreatedUUID reads the UUID line of `createvm`.
func ParseCreatedUUID(out string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "UUID: ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "UUID: "))
		}
	}
	return ""
}

// NICs are the NIC models and the host-only NIC's promiscuous mode.
type NICs struct{ NATType, HostOnlyType, Promisc string }

func (d *Driver) nics() NICs {
	n := NICs{NATType: d.NATNICType, HostOnlyType: d.HostOnlyNICType, Promisc: d.HostOnlyPromisc}
	if n.NATType == "" {
		n.NATType = "virtio"
	}
	if n.HostOnlyType == "" {
		n.HostOnlyType = "virtio"
	}
	if n.Promisc == "" {
		n.Promisc = "deny"
	}
	return n
}

// ConfigurePlan is the modifyvm and storagectl calls that shape a new VM: CPUs and memory, NIC1
// NAT with SSH forwarded from 127.0.0.1:sshPort, NIC2 on the host-only network with mac, and a
// SATA controller.
func ConfigurePlan(vm string, cpus, memMiB, sshPort int, hostOnlyIf, mac string, n NICs) [][]string {
	return [][]string{
		{"modifyvm", vm, "--firmware", "bios", "--cpus", strconv.Itoa(cpus), "--memory", strconv.Itoa(memMiB),
			"--acpi", "on", "--ioapic", "on", "--rtcuseutc", "on", "--boot1", "disk", "--boot2", "dvd", "--boot3", "none", "--boot4", "none"},
		{"modifyvm", vm, "--nic1", "nat", "--nictype1", n.NATType, "--cableconnected1", "on", "--natdnshostresolver1", "on",
			"--natpf1", fmt.Sprintf("ssh,tcp,127.0.0.1,%d,,22", sshPort)},
		{"modifyvm", vm, "--nic2", "hostonly", "--nictype2", n.HostOnlyType, "--nicpromisc2", n.Promisc, "--hostonlyadapter2", hostOnlyIf,
			"--macaddress2", mac, "--cableconnected2", "on"},
		{"storagectl", vm, "--name", "SATA", "--add", "sata", "--portcount", "3", "--hostiocache", "on"},
	}
}

func attach(vm string, port int, typ, medium string) []string {
	return []string{"storageattach", vm, "--storagectl", "SATA", "--port", strconv.Itoa(port), "--device", "0", "--type", typ, "--medium", medium}
}

// hostOnlyNetwork finds the host-only interface for the plan, or makes one with a DHCP server.
// A file lock makes VMs created at the same time (`swarm up`) share one network instead of each
// making its own for the same range.
func (d *Driver) hostOnlyNetwork(ctx context.Context, p HostOnlyPlan) (string, error) {
	lock := flock.New(filepath.Join(os.TempDir(), "machine-virtualbox-hostonly.lock"))
	if _, err := lock.TryLockContext(ctx, 50*time.Millisecond); err != nil {
		return "", fmt.Errorf("waiting for the host-only network lock: %w", err)
	}
	defer lock.Unlock()
	out, err := d.vbm(ctx, "list", "hostonlyifs")
	if err != nil {
		return "", err
	}
	name := ""
	if h := findHostOnly(ParseHostOnlyIfs(out), p); h != nil {
		name = h.Name
	} else {
		d.say("creating a host-only network for %s", p.Net)
		out, err := d.vbm(ctx, "hostonlyif", "create")
		if err != nil {
			return "", err
		}
		if name, err = ParseCreatedIf(out); err != nil {
			return "", err
		}
		if _, err := d.vbm(ctx, "hostonlyif", "ipconfig", name, "--ip", p.HostIP, "--netmask", p.Netmask); err != nil {
			return "", err
		}
	}
	out, err = d.vbm(ctx, "list", "dhcpservers")
	if err != nil {
		return "", err
	}
	netName := "HostInterfaceNetworking-" + name
	srv, exists := ParseDHCPServers(out)[netName]
	addrs := []string{"--netname", netName, "--ip", p.ServerIP, "--netmask", p.Netmask, "--lowerip", p.LowerIP, "--upperip", p.UpperIP, "--enable"}
	switch {
	case !exists:
		_, err = d.vbm(ctx, append([]string{"dhcpserver", "add"}, addrs...)...)
	case !srv.On(p.Net):
		// VirtualBox's own settings come with a server for vboxnet0 in 192.168.56.0/24, kept
		// when the interface is given another network: its leases would never reach the VMs.
		d.say("the DHCP server of %s hands out %s-%s, not on %s: setting it to %s-%s", name, srv.Lower, srv.Upper, p.Net, p.LowerIP, p.UpperIP)
		_, err = d.vbm(ctx, append([]string{"dhcpserver", "modify"}, addrs...)...)
	case !srv.Enabled:
		_, err = d.vbm(ctx, "dhcpserver", "modify", "--netname", netName, "--enable")
	}
	return name, err
}

func freeLocalPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// randomMAC is a MAC in VirtualBox's range (08:00:27), written as VBoxManage wants it.
func randomMAC() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("080027%02X%02X%02X", b[0], b[1], b[2])
}

// ProbeAddress reads the host-only NIC's address: from the Guest Additions' properties when the
// guest has them, otherwise from `ip` inside the guest over SSH, matched by the NIC's MAC. It
// waits for the DHCP lease within a deadline and says what it last saw.
func (d *Driver) ProbeAddress(ctx context.Context, run drivers.GuestRunner) error {
	poll, _, within := d.timing()
	deadline := time.Now().Add(within)
	last := ""
	for {
		if out, err := d.vbm(ctx, "guestproperty", "enumerate", d.ref()); err == nil {
			if ip := AddressFromGuestProperties(ParseGuestProperties(out), d.MAC); ip != "" {
				d.IP = ip
				return nil
			}
		}
		links, err1 := run(ctx, "ip", "-o", "link")
		addrs, err2 := run(ctx, "ip", "-o", "-4", "addr")
		if err := errors.Join(err1, err2); err != nil {
			last = err.Error()
		} else if ip := AddressFromIP(links, addrs, d.MAC); ip != "" {
			d.IP = ip
			return nil
		} else {
			last = strings.Join(strings.Fields(addrs), " ")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the host-only NIC (MAC %s on %s) got no IPv4 address within %s (last seen: %s): check that %s has an enabled DHCP server (VBoxManage list dhcpservers)", d.MAC, d.HostOnlyIf, within, last, d.HostOnlyIf)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// info reads the VM's machine-readable state.
func (d *Driver) info(ctx context.Context) (map[string]string, error) {
	out, err := d.vbm(ctx, "showvminfo", d.ref(), "--machinereadable")
	if err != nil {
		return nil, err
	}
	return ParseMachineReadable(out), nil
}

// State implements drivers.Driver.
func (d *Driver) State(ctx context.Context) (drivers.State, error) {
	if d.ref() == "" {
		return drivers.NotFound, nil
	}
	m, err := d.info(ctx)
	if errors.Is(err, errVMNotFound) {
		return drivers.NotFound, nil
	}
	if err != nil {
		return drivers.Error, err
	}
	return StateOf(m["VMState"]), nil
}

// Endpoint implements drivers.Driver: SSH through the NAT port forward, everything else at the
// host-only address.
func (d *Driver) Endpoint(ctx context.Context) (drivers.Endpoint, error) {
	ep := drivers.Endpoint{IP: d.IP, SSHHost: "127.0.0.1", SSHPort: d.SSHPort, SSHUser: d.SSHUser}
	if d.IP != "" {
		ep.Addresses = []string{d.IP}
	}
	return ep, nil
}

// Start boots a stopped or saved VM and resumes a paused one.
func (d *Driver) Start(ctx context.Context) error {
	st, err := d.State(ctx)
	if err != nil {
		return err
	}
	switch st {
	case drivers.Running, drivers.Starting:
		return nil
	case drivers.Paused:
		_, err = d.vbm(ctx, "controlvm", d.ref(), "resume")
	case drivers.NotFound:
		return fmt.Errorf("VirtualBox has no VM %s any more: remove the machine with `machine rm -f`", d.ref())
	default:
		_, err = d.vbm(ctx, "startvm", d.ref(), "--type", d.uiType())
	}
	return err
}

// Stop presses the ACPI power button and powers the VM off when it has not stopped in time.
func (d *Driver) Stop(ctx context.Context) error {
	st, err := d.State(ctx)
	if err != nil || st == drivers.Stopped || st == drivers.NotFound {
		return err
	}
	if st == drivers.Paused {
		return d.Kill(ctx)
	}
	if _, err := d.vbm(ctx, "controlvm", d.ref(), "acpipowerbutton"); err != nil {
		return err
	}
	poll, within, _ := d.timing()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
		if st, err := d.State(ctx); err == nil && st == drivers.Stopped {
			return nil
		}
	}
	d.say("no ACPI shutdown within %s: powering off", within)
	_, err = d.vbm(ctx, "controlvm", d.ref(), "poweroff")
	return err
}

// Kill powers the VM off at once.
func (d *Driver) Kill(ctx context.Context) error {
	st, err := d.State(ctx)
	if err != nil || st == drivers.Stopped || st == drivers.NotFound {
		return err
	}
	_, err = d.vbm(ctx, "controlvm", d.ref(), "poweroff")
	return err
}

// Remove powers the VM off, unregisters it with its disk, and removes the seed ISO.
func (d *Driver) Remove(ctx context.Context) error {
	if d.ref() != "" {
		st, err := d.State(ctx)
		if err != nil {
			return err
		}
		if st != drivers.NotFound {
			if st != drivers.Stopped {
				if _, err := d.vbm(ctx, "controlvm", d.ref(), "poweroff"); err != nil {
					return err
				}
			}
			if _, err := d.vbm(ctx, "unregistervm", d.ref(), "--delete"); err != nil {
				return err
			}
		}
	}
	if d.Disk != "" {
		// A disk made before it was attached (a create that failed in between) is registered
		// but no VM's: unregistervm --delete left it.
		if _, err := os.Stat(d.Disk); err == nil {
			if _, err := d.vbm(ctx, "closemedium", "disk", d.Disk, "--delete"); err != nil {
				if err := os.Remove(d.Disk); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
			}
		}
	}
	if d.BootISO != "" {
		// Registered when attached, and kept by unregistervm: closed, not deleted (it is the
		// image, shared by the machines made from it).
		_, _ = d.vbm(ctx, "closemedium", "dvd", d.BootISO)
	}
	if d.ISO != "" {
		// The seed stays in VirtualBox's media registry after the VM is gone: close it.
		_, _ = d.vbm(ctx, "closemedium", "dvd", d.ISO)
		if err := os.Remove(d.ISO); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if d.Folder != "" {
		_ = os.Remove(d.Folder) // only when VirtualBox left it empty
	}
	return nil
}

// EngineWait implements drivers.SlowBooter: a VM boots slower than a container.
func (d *Driver) EngineWait() time.Duration { return 3 * time.Minute }

// Describe adds the VM's facts to `machine inspect`.
func (d *Driver) Describe(ctx context.Context) map[string]any {
	return map[string]any{"VM": d.VMName, "UUID": d.UUID, "HostOnlyInterface": d.HostOnlyIf, "HostOnlyMAC": d.MAC,
		"SSHForward": fmt.Sprintf("127.0.0.1:%d", d.SSHPort), "Disk": d.Disk, "CidataISO": d.ISO, "Image": d.Image}
}

// HostKeys is the host key made for the VM before it booted (drivers.HostKeyReader).
func (d *Driver) HostKeys(ctx context.Context) ([]string, error) {
	if d.HostKey == "" {
		return nil, nil
	}
	return []string{d.HostKey}, nil
}
