// Package libvirt is the driver for VMs made through libvirtd, spoken to over its socket with
// github.com/digitalocean/go-libvirt (no cgo). Each machine gets a qcow2 overlay on a read-only
// base image in a storage pool, a cloud-init "cidata" ISO with its SSH key, and a domain whose
// XML is built with libvirtxml.
package libvirt

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"github.com/gofrs/flock"

	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/internal/cidata"
	"github.com/machine-tools/machine/internal/imagecache"
	"github.com/machine-tools/machine/internal/wait"
)

// Name is the driver's name.
const Name = "libvirt"

// Driver is one VM.
type Driver struct {
	// HostKey is the SSH host key made for the VM (its public half): cloud-init installs it, and
	// machine pins it before the first connection.
	HostKey string `json:"HostKey,omitempty"`
	URI     string `json:"URI"`
	Socket  string `json:"Socket"`
	Image   string `json:"Image"`
	// Checksum of the image, "sha256:HEX" (or HEX): checked after a download, and on a path.
	Checksum   string   `json:"Checksum,omitempty"`
	CPUs       int      `json:"CPUs"`
	MemoryMiB  int      `json:"MemoryMiB"`
	DiskSize   string   `json:"DiskSize"`
	Networks   []string `json:"Networks"`
	Pool       string   `json:"Pool"`
	DomainType string   `json:"DomainType"` // auto, kvm, qemu
	SSHUser    string   `json:"SSHUser"`
	Kernel     string   `json:"Kernel,omitempty"`
	Initrd     string   `json:"Initrd,omitempty"`
	Cmdline    string   `json:"Cmdline,omitempty"`
	// Set at create.
	DomainName   string   `json:"DomainName,omitempty"`
	ResolvedType string   `json:"ResolvedType,omitempty"`
	MACs         []string `json:"MACs,omitempty"`
	Overlay      string   `json:"Overlay,omitempty"`
	Base         string   `json:"Base,omitempty"` // the shared read-only copy of the image the overlay is on
	ISO          string   `json:"ISO,omitempty"`
	IP           string   `json:"IP,omitempty"`

	progress         func(string)
	downloadProgress imagecache.Progress
}

// New returns a driver with the defaults.
func New() drivers.Driver {
	return &Driver{URI: "qemu:///system", Socket: "/var/run/libvirt/libvirt-sock", CPUs: 1, MemoryMiB: 1024,
		DiskSize: "10G", Pool: "default", DomainType: "auto", SSHUser: "debian"}
}

// DriverName implements drivers.Driver.
func (d *Driver) DriverName() string { return Name }

func (d *Driver) say(format string, a ...any) {
	if d.progress != nil {
		d.progress(fmt.Sprintf(format, a...))
	}
}

// Error is a libvirt failure with the fix.
type Error struct {
	Op, Fix string
	Err     error
}

func (e *Error) Error() string {
	if e.Fix == "" {
		return fmt.Sprintf("libvirt: %s: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("libvirt: %s: %v: %s", e.Op, e.Err, e.Fix)
}
func (e *Error) Unwrap() error { return e.Err }

func (d *Driver) connect() (*golibvirt.Libvirt, error) {
	sock := d.Socket
	if sock == "" {
		sock = "/var/run/libvirt/libvirt-sock"
	}
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(sock), dialers.WithLocalTimeout(5*time.Second)))
	if err := l.ConnectToURI(golibvirt.ConnectURI(d.URI)); err != nil {
		fix := "start libvirtd (scripts/setup-libvirt.sh does), or point --libvirt-uri at a running one"
		if errors.Is(err, os.ErrPermission) || strings.Contains(err.Error(), "permission denied") {
			fix = "your user may not use libvirtd's socket " + sock + ": add it to the libvirt group, or run as root"
		}
		return nil, &Error{Op: "connecting to " + d.URI + " at " + sock, Fix: fix, Err: err}
	}
	return l, nil
}

// ParseSize reads sizes such as 20G, 512M, 1024 (MiB).
func ParseSize(s string) (uint64, error) {
	s = strings.TrimSpace(strings.ToUpper(s))
	mult := uint64(1 << 20)
	switch {
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	case strings.HasSuffix(s, "M"):
		s = strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "T"):
		mult, s = 1<<40, strings.TrimSuffix(s, "T")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("size %q: use a number with M, G or T, e.g. 20G", s)
	}
	return n * mult, nil
}

// Validate checks flags and libvirt's answers before anything is made.
func (d *Driver) Validate(ctx context.Context, name string) error {
	if d.Image == "" {
		return errors.New("the libvirt driver needs a disk image: pass --libvirt-image PATH_OR_URL (a qcow2 or raw cloud image)")
	}
	if _, err := ParseSize(d.DiskSize); err != nil {
		return fmt.Errorf("--libvirt-disk-size: %w", err)
	}
	switch d.DomainType {
	case "auto", "kvm", "qemu":
	default:
		return fmt.Errorf("--libvirt-domain-type %q: use auto, kvm or qemu", d.DomainType)
	}
	if (d.Kernel == "") != (d.Initrd == "") && d.Initrd != "" {
		return errors.New("--libvirt-initrd needs --libvirt-kernel")
	}
	if !imagecache.IsURL(d.Image) {
		if _, err := os.Stat(d.Image); err != nil {
			return fmt.Errorf("--libvirt-image %s: %v: give the path of a qcow2 or raw image, or a URL", d.Image, err)
		}
	}
	for _, p := range []string{d.Kernel, d.Initrd} {
		if p != "" {
			if _, err := os.Stat(p); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
	}
	networks := d.Networks
	if len(networks) == 0 {
		networks = []string{"default"}
	}
	l, err := d.connect()
	if err != nil {
		return err
	}
	defer l.Disconnect()
	for _, n := range networks {
		if _, err := l.NetworkLookupByName(n); err != nil {
			return &Error{Op: "network " + n, Fix: "create it (virsh net-define) or name another with --libvirt-network", Err: err}
		}
	}
	if _, err := l.DomainLookupByName(name); err == nil {
		return fmt.Errorf("libvirt already has a domain named %q: pick another machine name, or remove it (virsh undefine %s)", name, name)
	}
	return nil
}

// KVMWorks boots QEMU's firmware under KVM for a moment: KVM counts as working when the
// firmware runs and QEMU does not warn that the host lacks CPU features it asks for (on such
// hosts guests abort or hang). It returns why not otherwise. QEMU is stopped as soon as the
// answer is known.
func KVMWorks(ctx context.Context) (bool, string) {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		return false, "/dev/kvm does not exist"
	}
	ctx, cancel := context.WithTimeout(ctx, 6*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-accel", "kvm", "-machine", "pc", "-m", "64", "-display", "none",
		"-nodefaults", "-no-reboot", "-chardev", "stdio,id=dbg", "-device", "isa-debugcon,iobase=0x402,chardev=dbg")
	var mu sync.Mutex
	var out, errb strings.Builder
	decided := make(chan struct{}, 1)
	watch := func(dst *strings.Builder) io.Writer {
		return writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			dst.Write(p)
			done := strings.Contains(out.String(), "Running on KVM") || strings.Contains(errb.String(), "doesn't support requested feature")
			mu.Unlock()
			if done {
				select {
				case decided <- struct{}{}:
				default:
				}
			}
			return len(p), nil
		})
	}
	cmd.Stdout, cmd.Stderr = watch(&out), watch(&errb)
	if err := cmd.Start(); err != nil {
		return false, "cannot run qemu-system-x86_64: " + err.Error()
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	select {
	case <-decided:
		time.Sleep(50 * time.Millisecond) // let a warning that comes with the output arrive
		cancel()
	case <-exited:
	case <-ctx.Done():
	}
	<-exited
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(errb.String(), "doesn't support requested feature") {
		return false, "KVM's virtual CPU lacks features QEMU asks for (" + firstLine(errb.String()) + ")"
	}
	if !strings.Contains(out.String(), "Running on KVM") {
		msg := firstLine(errb.String())
		if msg == "" {
			msg = "the firmware did not run"
		}
		return false, "QEMU under KVM failed: " + msg
	}
	return true, ""
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func randomMAC() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[0], b[1], b[2])
}

// imageInfo reads a local image's format and virtual size (qcow2 header, else raw).
func imageInfo(path string) (format string, virtual uint64, size uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", 0, 0, err
	}
	hdr := make([]byte, 32)
	if _, err := io.ReadFull(f, hdr); err == nil && string(hdr[:4]) == "QFI\xfb" {
		return "qcow2", binary.BigEndian.Uint64(hdr[24:32]), uint64(st.Size()), nil
	}
	return "raw", uint64(st.Size()), uint64(st.Size()), nil
}

func (d *Driver) fetch(ctx context.Context) (string, error) {
	return imagecache.Fetch(ctx, d.Image, d.Checksum, d.downloadProgress, d.say)
}

func (d *Driver) pool(l *golibvirt.Libvirt) (golibvirt.StoragePool, error) {
	p, err := l.StoragePoolLookupByName(d.Pool)
	if err == nil {
		if state, _, _, _, err := l.StoragePoolGetInfo(p); err == nil && state != uint8(golibvirt.StoragePoolRunning) {
			if err := l.StoragePoolCreate(p, 0); err != nil {
				return p, &Error{Op: "starting pool " + d.Pool, Err: err}
			}
		}
		return p, nil
	}
	dir := "/var/lib/libvirt/images"
	if d.Pool != "default" {
		dir = filepath.Join("/var/lib/libvirt", "machine-"+d.Pool)
	}
	d.say("creating storage pool %s at %s", d.Pool, dir)
	x, _ := DirPoolXML(d.Pool, dir)
	p, err = l.StoragePoolDefineXML(x, 0)
	if err != nil {
		return p, &Error{Op: "defining pool " + d.Pool, Err: err}
	}
	if err := l.StoragePoolBuild(p, 0); err != nil {
		return p, &Error{Op: "building pool " + d.Pool, Err: err}
	}
	_ = l.StoragePoolSetAutostart(p, 1)
	if err := l.StoragePoolCreate(p, 0); err != nil {
		return p, &Error{Op: "starting pool " + d.Pool, Err: err}
	}
	return p, nil
}

// upload makes a raw volume of data's length in the pool and writes data into it.
func upload(l *golibvirt.Libvirt, p golibvirt.StoragePool, name string, r io.Reader, size uint64) (string, error) {
	x, _ := RawVolumeXML(name, size)
	v, err := l.StorageVolCreateXML(p, x, 0)
	if err != nil {
		return "", &Error{Op: "creating volume " + name, Fix: "is the pool full? (virsh pool-info)", Err: err}
	}
	if err := l.StorageVolUpload(v, r, 0, size, 0); err != nil {
		_ = l.StorageVolDelete(v, 0)
		return "", &Error{Op: "uploading volume " + name, Err: err}
	}
	return l.StorageVolGetPath(v)
}

// Create makes the volumes and the domain, and boots it.
func (d *Driver) Create(ctx context.Context, spec drivers.CreateSpec) error {
	if spec.Progress != nil {
		d.progress = spec.Progress
	}
	d.downloadProgress = spec.Download
	d.DomainName = spec.Name
	if len(d.Networks) == 0 {
		d.Networks = []string{"default"}
	}
	switch d.DomainType {
	case "kvm", "qemu":
		d.ResolvedType = d.DomainType
	default:
		if ok, why := KVMWorks(ctx); ok {
			d.ResolvedType = "kvm"
		} else {
			d.ResolvedType = "qemu"
			d.say("warning: KVM is not usable here (%s): using QEMU's software emulation (TCG), which is much slower", why)
		}
	}
	img, err := d.fetch(ctx)
	if err != nil {
		return err
	}
	format, virtual, size, err := imageInfo(img)
	if err != nil {
		return fmt.Errorf("reading the image %s: %w", img, err)
	}
	l, err := d.connect()
	if err != nil {
		return err
	}
	defer l.Disconnect()
	p, err := d.pool(l)
	if err != nil {
		return err
	}
	// The base: one read-only copy per image in the pool, named by the image's identity.
	st, _ := os.Stat(img)
	id := sha256.Sum256([]byte(fmt.Sprintf("%s|%d|%d", img, st.Size(), st.ModTime().UnixNano())))
	baseName := "machine-base-" + hex.EncodeToString(id[:8]) + "." + format
	// Held while the base is looked up and copied: VMs made at the same time from one image
	// wait for the first copy instead of booting from a half-written base.
	lock := flock.New(filepath.Join(os.TempDir(), "machine-libvirt-"+d.Pool+"-"+baseName+".lock"))
	if _, err := lock.TryLockContext(ctx, 100*time.Millisecond); err != nil {
		return fmt.Errorf("waiting for the image's copy in pool %s: %w", d.Pool, err)
	}
	var basePath string
	if v, err := l.StorageVolLookupByName(p, baseName); err == nil {
		basePath, _ = l.StorageVolGetPath(v)
	} else {
		d.say("copying the image into pool %s (once per image)", d.Pool)
		f, err := os.Open(img)
		if err != nil {
			_ = lock.Unlock()
			return err
		}
		basePath, err = upload(l, p, baseName, f, size)
		f.Close()
		if err != nil {
			_ = lock.Unlock()
			return err
		}
	}
	_ = lock.Unlock()
	d.Base = basePath
	want, _ := ParseSize(d.DiskSize)
	if want < virtual {
		want = virtual
	}
	ox, _ := OverlayXML(spec.Name+".qcow2", want, basePath, format)
	ov, err := l.StorageVolCreateXML(p, ox, 0)
	if err != nil {
		return &Error{Op: "creating the overlay " + spec.Name + ".qcow2", Err: err}
	}
	if d.Overlay, err = l.StorageVolGetPath(ov); err != nil {
		return err
	}
	hk, err := cidata.NewHostKey("root@" + spec.Name)
	if err != nil {
		return err
	}
	d.HostKey = hk.Public
	iso, err := cidata.Seed(spec.Name, d.SSHUser, spec.AuthorizedKey, spec.Name+"-"+randomMAC()[9:], hk)
	if err != nil {
		return fmt.Errorf("making the cloud-init ISO: %w", err)
	}
	if d.ISO, err = upload(l, p, spec.Name+"-cidata.iso", bytes.NewReader(iso), uint64(len(iso))); err != nil {
		return err
	}
	d.MACs = nil
	for range d.Networks {
		d.MACs = append(d.MACs, randomMAC())
	}
	x, err := DomainXML(DomainSpec{Name: spec.Name, Type: d.ResolvedType, CPUs: d.CPUs, MemoryMiB: d.MemoryMiB,
		Overlay: d.Overlay, CidataISO: d.ISO, Networks: d.Networks, MACs: d.MACs,
		Kernel: d.Kernel, Initrd: d.Initrd, Cmdline: d.Cmdline})
	if err != nil {
		return err
	}
	dom, err := l.DomainDefineXML(x)
	if err != nil {
		return &Error{Op: "defining domain " + spec.Name, Err: err}
	}
	d.say("booting %s (%s)", spec.Name, d.ResolvedType)
	if err := d.startDomain(ctx, l, dom); err != nil {
		return &Error{Op: "starting domain " + spec.Name, Err: err}
	}
	con := d.followConsole(dom)
	defer con.close()
	return d.waitLease(ctx, l, d.leaseWait(), con)
}

// startDomain boots a defined domain. A start that libvirt gave up on while it placed QEMU's
// threads in their cgroups (seen once in many hundred starts on cgroup v1: "Failed to create v1
// controller cpu for group: No such file or directory", QEMU already stopped again) is tried
// twice more, a second apart; any other failure is returned at once.
func (d *Driver) startDomain(ctx context.Context, l *golibvirt.Libvirt, dom golibvirt.Domain) error {
	for attempt := 1; ; attempt++ {
		err := l.DomainCreate(dom)
		if err == nil || attempt == 3 || !cgroupSetupFailed(err) {
			return err
		}
		d.say("libvirt could not set up the domain's cgroups (%v): starting it again", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// cgroupSetupFailed tells libvirt's cgroup setup failures from others.
func cgroupSetupFailed(err error) bool {
	s := err.Error()
	return strings.Contains(s, "controller") && strings.Contains(s, "for group") ||
		strings.Contains(s, "Unable to create cgroup")
}

// leaseWait is how long a booting guest may take to get its first lease: 5 minutes, 15 under
// QEMU's emulation (TCG), where the test guest took 77 s on an idle 2-core machine and over 5
// minutes beside the rest of the e2e suite.
func (d *Driver) leaseWait() time.Duration {
	if d.ResolvedType == "qemu" {
		return 15 * time.Minute
	}
	return 5 * time.Minute
}

// waitLease waits for the first NIC's DHCP lease and records the address; a guest whose kernel
// panics (on its console) ends the wait at once.
func (d *Driver) waitLease(ctx context.Context, l *golibvirt.Libvirt, within time.Duration, con *console) error {
	d.say("waiting for a DHCP lease on %s for %s", d.Networks[0], d.MACs[0])
	deadline := time.Now().Add(within)
	last := "no lease yet"
	for {
		ips, err := d.leases(l)
		if err == nil && len(ips) > 0 && ips[0] != "" {
			d.IP = ips[0]
			return nil
		}
		if err != nil {
			last = err.Error()
		}
		if p := con.panicked(); p != "" {
			return fmt.Errorf("the guest's kernel panicked while booting (its console: %q): check the image, and --libvirt-kernel, --libvirt-initrd and --libvirt-cmdline if given", p)
		}
		if time.Now().After(deadline) {
			seen := "is the guest booting? see virsh console " + d.DomainName
			if line := con.lastLine(); line != "" {
				seen = fmt.Sprintf("the guest's console last printed %q", line)
			}
			return fmt.Errorf("no DHCP lease for %s (MAC %s) on network %s within %s (last: %s): %s",
				d.DomainName, d.MACs[0], d.Networks[0], within, last, seen)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// leases returns each NIC's IPv4 address, in NIC order ("" where none is known yet). The sources,
// each asked only for what the ones before left unknown: the domain's interface addresses from
// the DHCP leases, the networks' lease tables by MAC, the QEMU guest agent (images that run it),
// then the host's ARP table (any network, once the guest has spoken).
func (d *Driver) leases(l *golibvirt.Libvirt) ([]string, error) {
	out := make([]string, len(d.MACs))
	missing := func() bool {
		for _, ip := range out {
			if ip == "" {
				return true
			}
		}
		return false
	}
	dom, derr := d.domain(l)
	if derr == nil {
		if ifs, err := l.DomainInterfaceAddresses(dom, uint32(golibvirt.DomainInterfaceAddressesSrcLease), 0); err == nil {
			fill(out, AddressesByMAC(ifs, d.MACs))
		}
	}
	var lastErr error
	if missing() {
		for i, n := range d.Networks {
			if out[i] != "" || i >= len(d.MACs) {
				continue
			}
			net, err := l.NetworkLookupByName(n)
			if err != nil {
				lastErr = err
				continue
			}
			ls, _, err := l.NetworkGetDhcpLeases(net, golibvirt.OptString{d.MACs[i]}, 1, 0)
			if err != nil {
				lastErr = err
				continue
			}
			for _, le := range ls {
				if le.Type == int32(golibvirt.IPAddrTypeIpv4) {
					out[i] = le.Ipaddr
				}
			}
		}
	}
	if derr == nil {
		for _, src := range []golibvirt.DomainInterfaceAddressesSource{golibvirt.DomainInterfaceAddressesSrcAgent, golibvirt.DomainInterfaceAddressesSrcArp} {
			if !missing() {
				break
			}
			if ifs, err := l.DomainInterfaceAddresses(dom, uint32(src), 0); err == nil {
				fill(out, AddressesByMAC(ifs, d.MACs))
			}
		}
	}
	if (len(out) == 0 || out[0] == "") && lastErr != nil {
		return out, lastErr
	}
	return out, nil
}

// AddressesByMAC picks each MAC's IPv4 address from libvirt's interface list.
func AddressesByMAC(ifs []golibvirt.DomainInterface, macs []string) []string {
	out := make([]string, len(macs))
	for i, mac := range macs {
		for _, ifc := range ifs {
			if len(ifc.Hwaddr) == 0 || !strings.EqualFold(ifc.Hwaddr[0], mac) {
				continue
			}
			for _, a := range ifc.Addrs {
				if a.Type == int32(golibvirt.IPAddrTypeIpv4) && out[i] == "" {
					out[i] = a.Addr
				}
			}
		}
	}
	return out
}

func fill(dst, src []string) {
	for i := range dst {
		if dst[i] == "" && i < len(src) {
			dst[i] = src[i]
		}
	}
}

func (d *Driver) domain(l *golibvirt.Libvirt) (golibvirt.Domain, error) {
	return l.DomainLookupByName(d.DomainName)
}

// State maps libvirt's domain state.
func (d *Driver) State(ctx context.Context) (drivers.State, error) {
	l, err := d.connect()
	if err != nil {
		return drivers.Error, err
	}
	defer l.Disconnect()
	dom, err := d.domain(l)
	if err != nil {
		return drivers.NotFound, nil
	}
	st, _, err := l.DomainGetState(dom, 0)
	if err != nil {
		return drivers.Error, err
	}
	switch golibvirt.DomainState(st) {
	case golibvirt.DomainRunning, golibvirt.DomainBlocked:
		return drivers.Running, nil
	case golibvirt.DomainPaused, golibvirt.DomainPmsuspended:
		return drivers.Paused, nil
	case golibvirt.DomainShutdown:
		return drivers.Stopping, nil
	case golibvirt.DomainShutoff, golibvirt.DomainCrashed:
		return drivers.Stopped, nil
	}
	return drivers.Error, nil
}

// Endpoint reads the addresses from the leases (the recorded one when there is none now).
func (d *Driver) Endpoint(ctx context.Context) (drivers.Endpoint, error) {
	ep := drivers.Endpoint{IP: d.IP, SSHPort: 22, SSHUser: d.SSHUser}
	if l, err := d.connect(); err == nil {
		defer l.Disconnect()
		if ips, err := d.leases(l); err == nil && len(ips) > 0 {
			if ips[0] != "" {
				ep.IP = ips[0]
			}
			for _, ip := range ips {
				if ip != "" {
					ep.Addresses = append(ep.Addresses, ip)
				}
			}
		}
	}
	if ep.IP == "" {
		return ep, errors.New("the VM has no address yet")
	}
	if len(ep.Addresses) == 0 {
		ep.Addresses = []string{ep.IP}
	}
	return ep, nil
}

// withDomain runs f with a connection and the machine's domain.
func (d *Driver) withDomain(f func(l *golibvirt.Libvirt, dom golibvirt.Domain) error) error {
	l, err := d.connect()
	if err != nil {
		return err
	}
	defer l.Disconnect()
	dom, err := d.domain(l)
	if err != nil {
		return &Error{Op: "domain " + d.DomainName, Err: err}
	}
	return f(l, dom)
}

// Start boots the domain and waits for its lease.
func (d *Driver) Start(ctx context.Context) error {
	return d.withDomain(func(l *golibvirt.Libvirt, dom golibvirt.Domain) error {
		if err := d.startDomain(ctx, l, dom); err != nil {
			return &Error{Op: "starting " + d.DomainName, Err: err}
		}
		con := d.followConsole(dom)
		defer con.close()
		return d.waitLease(ctx, l, d.leaseWait(), con)
	})
}

// Stop asks the guest to shut down (ACPI) and destroys it after a minute.
func (d *Driver) Stop(ctx context.Context) error {
	return d.withDomain(func(l *golibvirt.Libvirt, dom golibvirt.Domain) error { return d.shutdown(ctx, l, dom) })
}

func (d *Driver) shutdown(ctx context.Context, l *golibvirt.Libvirt, dom golibvirt.Domain) error {
	if err := l.DomainShutdown(dom); err != nil {
		return &Error{Op: "shutting down " + d.DomainName, Err: err}
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if st, _, err := l.DomainGetState(dom, 0); err == nil && golibvirt.DomainState(st) == golibvirt.DomainShutoff {
			return nil
		}
		if err := wait.Sleep(ctx, time.Second); err != nil {
			return err
		}
	}
	d.say("the guest did not shut down within a minute: destroying it")
	return l.DomainDestroy(dom)
}

// Kill destroys the domain at once.
func (d *Driver) Kill(ctx context.Context) error {
	return d.withDomain(func(l *golibvirt.Libvirt, dom golibvirt.Domain) error { return l.DomainDestroy(dom) })
}

// Remove destroys and undefines the domain and deletes its overlay and ISO (never the base).
func (d *Driver) Remove(ctx context.Context) error {
	l, err := d.connect()
	if err != nil {
		return err
	}
	defer l.Disconnect()
	if d.DomainName != "" {
		if dom, err := d.domain(l); err == nil {
			_ = l.DomainDestroy(dom)
			if err := l.DomainUndefineFlags(dom, golibvirt.DomainUndefineNvram); err != nil {
				// Drivers without NVRAM support refuse the flag: undefine plainly.
				if err2 := l.DomainUndefineFlags(dom, 0); err2 != nil {
					return &Error{Op: "undefining " + d.DomainName, Err: err}
				}
			}
		}
	}
	p, err := l.StoragePoolLookupByName(d.Pool)
	if err != nil {
		return nil
	}
	for _, v := range []string{d.DomainName + ".qcow2", d.DomainName + "-cidata.iso"} {
		if d.DomainName == "" {
			break
		}
		if vol, err := l.StorageVolLookupByName(p, v); err == nil {
			if err := l.StorageVolDelete(vol, 0); err != nil {
				return &Error{Op: "deleting volume " + v, Err: err}
			}
		}
	}
	return nil
}

// EngineWait implements drivers.SlowBooter: a guest emulated by QEMU (no KVM) boots in minutes.
func (d *Driver) EngineWait() time.Duration { return 5 * time.Minute }

// Describe adds the VM's facts to inspect.
func (d *Driver) Describe(ctx context.Context) map[string]any {
	out := map[string]any{"DomainType": d.ResolvedType, "Overlay": d.Overlay, "Base": d.Base, "CidataISO": d.ISO, "MACs": d.MACs}
	if l, err := d.connect(); err == nil {
		defer l.Disconnect()
		if ips, err := d.leases(l); err == nil {
			nets := map[string]string{}
			for i, n := range d.Networks {
				if i < len(ips) {
					nets[n] = ips[i]
				}
			}
			out["Networks"] = nets
		}
	}
	return out
}

// HostKeys is the host key made for the VM before it booted (drivers.HostKeyReader).
func (d *Driver) HostKeys(ctx context.Context) ([]string, error) {
	if d.HostKey == "" {
		return nil, nil
	}
	return []string{d.HostKey}, nil
}
