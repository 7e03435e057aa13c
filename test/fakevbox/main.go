// Command fakevbox stands in for VBoxManage in the end-to-end test of the VirtualBox driver,
// where VirtualBox cannot run. It answers the subset of VBoxManage's command line the driver
// uses, in VBoxManage's output formats, and makes each "VM" a systemd host container on the
// local Docker engine: the host-only network is a Docker network (the host's address is its
// gateway), the "DHCP server" hands out addresses from its range, NIC1's SSH port forward is a
// port published on 127.0.0.1, and the cloud-init seed ISO is read (with isoinfo) to let the
// machine's key in as cloud-init would. Unknown commands fail loudly, so a plan that real
// VBoxManage would refuse cannot pass here unnoticed.
//
// State lives in $FAKEVBOX_HOME; Docker objects are named $FAKEVBOX_PREFIX-*; the host image is
// $FAKEVBOX_IMAGE. With FAKEVBOX_NEW_LEASE=1 a start hands the VM a new address, as a DHCP server
// that lost its leases does.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
)

type hostOnly struct {
	IP, Mask string
}

// dhcpServer is a DHCP server of VirtualBox's, by its network's name.
type dhcpServer struct {
	IP, Mask, Low, High string
	Enabled             bool
}

type vm struct {
	Name, UUID, Folder     string
	HostOnly, MAC, SSHPort string
	ISO, Disk              string
}

type state struct {
	Nets   map[string]*hostOnly
	DHCP   map[string]*dhcpServer
	VMs    map[string]*vm
	Disks  map[string]int    // path → MB, as registered
	Leases map[string]string // MAC → address
}

var (
	home   = os.Getenv("FAKEVBOX_HOME")
	prefix = os.Getenv("FAKEVBOX_PREFIX")
)

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "VBoxManage: error: "+format+"\n", a...)
	os.Exit(1)
}

func load() *state {
	// VirtualBox's own first settings have a DHCP server for vboxnet0's network in
	// 192.168.56.0/24, whatever vboxnet0 becomes (real VBoxManage 7.2.22 lists it).
	s := &state{Nets: map[string]*hostOnly{}, VMs: map[string]*vm{}, Disks: map[string]int{}, Leases: map[string]string{},
		DHCP: map[string]*dhcpServer{"HostInterfaceNetworking-vboxnet0": {IP: "192.168.56.100", Mask: "255.255.255.0", Low: "192.168.56.101", High: "192.168.56.254", Enabled: true}}}
	if b, err := os.ReadFile(filepath.Join(home, "state.json")); err == nil {
		if err := json.Unmarshal(b, s); err != nil {
			fail("fakevbox state: %v", err)
		}
	}
	return s
}

func (s *state) save() {
	b, _ := json.MarshalIndent(s, "", " ")
	if err := os.WriteFile(filepath.Join(home, "state.json"), b, 0o644); err != nil {
		fail("fakevbox state: %v", err)
	}
}

func (s *state) find(ref string) *vm {
	for _, v := range s.VMs {
		if v.UUID == ref || v.Name == ref {
			return v
		}
	}
	if strings.Count(ref, "-") == 4 {
		fmt.Fprintf(os.Stderr, "VBoxManage: error: Could not find a registered machine with UUID {%s}\n", ref)
	} else {
		fmt.Fprintf(os.Stderr, "VBoxManage: error: Could not find a registered machine named '%s'\n", ref)
	}
	fmt.Fprintf(os.Stderr, "VBoxManage: error: Details: code VBOX_E_OBJECT_NOT_FOUND (0x80bb0001), component VirtualBoxWrap, interface IVirtualBox, callee nsISupports\n")
	os.Exit(1)
	return nil
}

func docker(args ...string) (string, error) {
	out, err := exec.Command("docker", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func mustDocker(args ...string) string {
	out, err := docker(args...)
	if err != nil {
		fail("fakevbox: docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

func flag(args []string, name string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == name {
			return args[i+1]
		}
	}
	return ""
}

func ctrName(v *vm) string      { return prefix + "-" + v.Name }
func netName(ifc string) string { return prefix + "-" + ifc }

func main() {
	if home == "" || prefix == "" {
		fail("fakevbox needs FAKEVBOX_HOME and FAKEVBOX_PREFIX")
	}
	args := os.Args[1:]
	if len(args) == 0 {
		fail("no command")
	}
	// One VBoxManage at a time, as VBoxSVC serialises them: the state is one file.
	lock, err := os.OpenFile(filepath.Join(home, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil || syscall.Flock(int(lock.Fd()), syscall.LOCK_EX) != nil {
		fail("fakevbox: locking %s: %v", home, err)
	}
	s := load()
	defer s.save()
	switch args[0] {
	case "--version":
		fmt.Println("7.2.22_Debianr175245")
	case "list":
		list(s, args[1])
	case "hostonlyif":
		switch args[1] {
		case "create":
			name := fmt.Sprintf("vboxnet%d", len(s.Nets))
			s.Nets[name] = &hostOnly{}
			fmt.Println("0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%")
			fmt.Printf("Interface '%s' was successfully created\n", name)
		case "ipconfig":
			n, ok := s.Nets[args[2]]
			if !ok {
				fail("The host network interface named '%s' could not be found", args[2])
			}
			n.IP, n.Mask = flag(args, "--ip"), flag(args, "--netmask")
			m := net.IPMask(net.ParseIP(n.Mask).To4())
			ones, _ := m.Size()
			sub := &net.IPNet{IP: net.ParseIP(n.IP).Mask(m), Mask: m}
			mustDocker("network", "create", "--label", "io.machine.fakevbox="+prefix, "--subnet", fmt.Sprintf("%s/%d", sub.IP, ones), "--gateway", n.IP, netName(args[2]))
		default:
			fail("Invalid parameter '%s'", args[1])
		}
	case "dhcpserver":
		name := flag(args, "--netname")
		srv, exists := s.DHCP[name]
		switch {
		case args[1] == "add" && exists:
			fmt.Fprintln(os.Stderr, "VBoxManage: error: DHCP server already exists")
			os.Exit(2)
		case args[1] == "add":
			srv = &dhcpServer{}
			s.DHCP[name] = srv
		case args[1] == "modify" && !exists:
			fail("DHCP server does not exist")
		case args[1] != "modify":
			fail("fakevbox: dhcpserver %s is not known", args[1])
		}
		for f, p := range map[string]*string{"--ip": &srv.IP, "--netmask": &srv.Mask, "--lowerip": &srv.Low, "--upperip": &srv.High} {
			if v := flag(args, f); v != "" {
				*p = v
			}
		}
		srv.Enabled = srv.Enabled || contains(args, "--enable")
	case "createvm":
		name := flag(args, "--name")
		for _, v := range s.VMs {
			if v.Name == name {
				fail("Machine settings file '%s' already exists", filepath.Join(v.Folder, name+".vbox"))
			}
		}
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		id := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
		v := &vm{Name: name, UUID: id, Folder: filepath.Join(home, "VirtualBox VMs", name)}
		if err := os.MkdirAll(v.Folder, 0o755); err != nil {
			fail("%v", err)
		}
		_ = os.WriteFile(filepath.Join(v.Folder, name+".vbox"), []byte("<VirtualBox/>\n"), 0o644)
		s.VMs[id] = v
		fmt.Printf("Virtual machine '%s' is created and registered.\nUUID: %s\nSettings file: '%s'\n", name, id, filepath.Join(v.Folder, name+".vbox"))
	case "modifyvm":
		v := s.find(args[1])
		if a := flag(args, "--hostonlyadapter2"); a != "" {
			if _, ok := s.Nets[a]; !ok {
				fail("Host-only adapter '%s' does not exist", a)
			}
			v.HostOnly = a
		}
		if m := flag(args, "--macaddress2"); m != "" {
			v.MAC = m
		}
		if pf := flag(args, "--natpf1"); pf != "" {
			f := strings.Split(pf, ",")
			if len(f) != 6 || f[2] != "127.0.0.1" || f[5] != "22" {
				fail("fakevbox: unexpected forward %q", pf)
			}
			v.SSHPort = f[3]
		}
	case "storagectl":
		s.find(args[1])
	case "storageattach":
		v := s.find(args[1])
		switch m := flag(args, "--medium"); {
		case flag(args, "--type") == "hdd":
			v.Disk = m
		case filepath.Base(m) == "cidata.iso":
			v.ISO = m
		}
	case "clonemedium", "createmedium", "convertfromraw":
		dst, src := flag(args, "--filename"), ""
		if dst == "" {
			src, dst = args[len(args)-4], args[len(args)-3]
		}
		if _, err := os.Stat(dst); err == nil {
			fail("Cannot register the hard disk '%s' because a hard disk with UUID already exists", dst)
		}
		if err := os.WriteFile(dst, []byte("<<< Oracle VM VirtualBox Disk Image >>>\n"), 0o644); err != nil {
			fail("%v", err)
		}
		// Its size: the source's (a raw file's in whole MB), or --size.
		mb, known := s.Disks[src]
		if st, err := os.Stat(src); !known && err == nil {
			mb = int((st.Size() + 1<<20 - 1) >> 20)
		}
		if args[0] == "createmedium" {
			fmt.Sscan(flag(args, "--size"), &mb)
		}
		s.Disks[dst] = mb
		switch args[0] {
		case "clonemedium":
			fmt.Fprintln(os.Stderr, "0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%")
			fmt.Println("Clone medium created in format 'VDI'. UUID: 0d4c8a47-2b93-4f0c-a1e8-6a9d5f3c7b20")
		case "convertfromraw":
			fmt.Printf("Converting from raw image file=%q to file=%q...\nCreating dynamic image with size %d bytes (%dMB)...\n", src, dst, mb<<20, mb)
		}
	case "showmediuminfo":
		p := args[len(args)-1]
		mb, ok := s.Disks[p]
		if !ok {
			fail("Could not find file for the medium '%s' (VERR_FILE_NOT_FOUND)", p)
		}
		fmt.Printf("UUID:           0d4c8a47-2b93-4f0c-a1e8-6a9d5f3c7b20\nParent UUID:    base\nState:          created\nType:           normal (base)\nLocation:       %s\nStorage format: VDI\nFormat variant: dynamic default\nCapacity:       %d MBytes\nSize on disk:   2 MBytes\nEncryption:     disabled\n", p, mb)
	case "modifymedium":
		p := args[2]
		if _, ok := s.Disks[p]; !ok {
			fail("Could not find file for the medium '%s' (VERR_FILE_NOT_FOUND)", p)
		}
		var b int64
		if _, err := fmt.Sscan(flag(args, "--resizebyte"), &b); err != nil {
			// VirtualBox 7.1 and later refuse --resize to many times the size; the driver gives bytes.
			fail("fakevbox: modifymedium without --resizebyte: %q", strings.Join(args, " "))
		}
		s.Disks[p] = int(b >> 20)
	case "closemedium":
		p := args[2]
		if args[1] == "disk" {
			delete(s.Disks, p)
			if contains(args, "--delete") {
				_ = os.Remove(p)
			}
		}
	case "startvm":
		start(s, s.find(args[1]))
	case "controlvm":
		v := s.find(args[1])
		switch args[2] {
		case "acpipowerbutton":
			mustDocker("stop", "-t", "60", ctrName(v))
		case "poweroff":
			mustDocker("kill", ctrName(v))
		case "resume":
			mustDocker("unpause", ctrName(v))
		default:
			fail("Invalid parameter '%s'", args[2])
		}
	case "showvminfo":
		v := s.find(args[1])
		st := "poweroff"
		if out, err := docker("inspect", "-f", "{{.State.Status}}", ctrName(v)); err == nil {
			st = map[string]string{"running": "running", "paused": "paused"}[out]
			if st == "" {
				st = "poweroff"
			}
		}
		fmt.Printf("name=%q\nUUID=%q\nCfgFile=%q\nVMState=%q\nnic1=\"nat\"\nForwarding(0)=\"ssh,tcp,127.0.0.1,%s,,22\"\nhostonlyadapter2=%q\nmacaddress2=%q\nnic2=\"hostonly\"\n",
			v.Name, v.UUID, filepath.Join(v.Folder, v.Name+".vbox"), st, v.SSHPort, v.HostOnly, v.MAC)
	case "guestproperty":
		v := s.find(args[2])
		if st, _ := docker("inspect", "-f", "{{.State.Status}}", ctrName(v)); st != "running" {
			fmt.Println("No properties found.") // a VM that does not run has none (7.2.22)
			break
		}
		fmt.Println("/VirtualBox/HostInfo/VBoxVer        = '7.2.22' @ 2026-12-01T10:41:07.613Z")
	case "unregistervm":
		v := s.find(args[1])
		_, _ = docker("rm", "-f", "-v", ctrName(v))
		if contains(args, "--delete") { // the VM's files and its hard disks, not its DVDs
			_ = os.Remove(v.Disk)
			delete(s.Disks, v.Disk)
			_ = os.Remove(filepath.Join(v.Folder, v.Name+".vbox"))
			_ = os.Remove(v.Folder)
		}
		delete(s.Leases, v.MAC)
		delete(s.VMs, v.UUID)
	default:
		fail("fakevbox does not know the command %q (a plan real VBoxManage may refuse too)", strings.Join(args, " "))
	}
}

func contains(a []string, x string) bool {
	for _, s := range a {
		if s == x {
			return true
		}
	}
	return false
}

func list(s *state, what string) {
	switch what {
	case "vms":
		for _, v := range s.VMs {
			fmt.Printf("%q {%s}\n", v.Name, v.UUID)
		}
	case "hostonlyifs": // as 7.2.22 lists them
		for _, name := range slices.Sorted(maps.Keys(s.Nets)) {
			n := s.Nets[name]
			fmt.Printf("Name:            %s\nGUID:            f00001a6-dae8-4abf-8000-0a0027000000\nDHCP:            Disabled\nIPAddress:       %s\nNetworkMask:     %s\nIPV6Address:     \nIPV6NetworkMaskPrefixLength: 0\nHardwareAddress: 0a:00:27:00:00:00\nMediumType:      Ethernet\nWireless:        No\nStatus:          Up\nVBoxNetworkName: HostInterfaceNetworking-%s\n\n", name, n.IP, n.Mask, name)
		}
	case "dhcpservers":
		for i, name := range slices.Sorted(maps.Keys(s.DHCP)) {
			d := s.DHCP[name]
			if i > 0 {
				fmt.Println()
			}
			enabled := map[bool]string{true: "Yes", false: "No"}[d.Enabled]
			fmt.Printf("NetworkName:    %s\nDhcpd IP:       %s\nLowerIPAddress: %s\nUpperIPAddress: %s\nNetworkMask:    %s\nEnabled:        %s\nGlobal Configuration:\n    minLeaseTime:     default\n    defaultLeaseTime: default\n    maxLeaseTime:     default\n    Forced options:   None\n    Suppressed opts.: None\n        1/legacy: %s\nGroups:               None\nIndividual Configs:   None\n", name, d.IP, d.Low, d.High, d.Mask, enabled, d.Mask)
		}
	default:
		fail("fakevbox: list %s is not known", what)
	}
}

// lease hands out an address from the network's DHCP range.
func lease(s *state, v *vm, n *dhcpServer) string {
	if ip, ok := s.Leases[v.MAC]; ok && os.Getenv("FAKEVBOX_NEW_LEASE") != "1" {
		return ip
	}
	used := map[string]bool{}
	for _, ip := range s.Leases {
		used[ip] = true
	}
	ip := net.ParseIP(n.Low).To4() // (its own old lease counts as used: a new one differs)
	for used[ip.String()] {
		ip[3]++
	}
	s.Leases[v.MAC] = ip.String()
	return ip.String()
}

func colonMAC(m string) string {
	var parts []string
	for i := 0; i+1 < len(m); i += 2 {
		parts = append(parts, strings.ToLower(m[i:i+2]))
	}
	return strings.Join(parts, ":")
}

func start(s *state, v *vm) {
	n, ok := s.Nets[v.HostOnly]
	srv := s.DHCP["HostInterfaceNetworking-"+v.HostOnly]
	if !ok || srv == nil || !srv.Enabled {
		fail("fakevbox: %s has no host-only network with DHCP", v.Name)
	}
	// A server whose range is not on the interface's network hands out nothing that reaches it.
	m := net.IPMask(net.ParseIP(n.Mask).To4())
	sub := &net.IPNet{IP: net.ParseIP(n.IP).Mask(m), Mask: m}
	if !sub.Contains(net.ParseIP(srv.Low)) || !sub.Contains(net.ParseIP(srv.High)) {
		fail("fakevbox: the DHCP server of %s hands out %s-%s, not on %s: the VM would get no address", v.HostOnly, srv.Low, srv.High, sub)
	}
	ip := lease(s, v, srv)
	c := ctrName(v)
	if _, err := docker("inspect", c); err == nil {
		cur, _ := docker("inspect", "-f", "{{(index .NetworkSettings.Networks \""+netName(v.HostOnly)+"\").IPAddress}}", c)
		if cur != ip {
			mustDocker("network", "disconnect", netName(v.HostOnly), c)
			mustDocker("network", "connect", "--ip", ip, netName(v.HostOnly), c)
		}
		mustDocker("start", c)
		return
	}
	if err := run(c, v, ip); err != nil {
		fail("fakevbox: starting %s: %v", c, err)
	}
	cloudInit(v, c)
}

// run makes and starts the VM's container through the Engine API (the docker CLI here is newer
// than the engine and will not set a MAC on API 1.41).
func run(name string, v *vm, ip string) error {
	ctx := context.Background()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	cfg := &container.Config{
		Image: os.Getenv("FAKEVBOX_IMAGE"), Hostname: v.Name, Env: []string{"container=docker"}, Tty: true,
		StopSignal: "SIGRTMIN+3", Labels: map[string]string{"io.machine.fakevbox": prefix},
		MacAddress: colonMAC(v.MAC), ExposedPorts: nat.PortSet{"22/tcp": {}},
		Volumes: map[string]struct{}{"/var/lib/docker": {}},
	}
	hc := &container.HostConfig{
		Tmpfs:        map[string]string{"/run": "rw,exec", "/run/lock": "rw", "/tmp": "rw,exec"},
		Binds:        []string{"/sys/fs/cgroup:/sys/fs/cgroup:rw"},
		CapAdd:       []string{"ALL"},
		CapDrop:      []string{"SYS_RESOURCE"},
		SecurityOpt:  []string{"seccomp=unconfined", "apparmor=unconfined"},
		MaskedPaths:  []string{},
		PortBindings: nat.PortMap{"22/tcp": {{HostIP: "127.0.0.1", HostPort: v.SSHPort}}},
	}
	hc.ReadonlyPaths = []string{}
	hc.NetworkMode = container.NetworkMode(netName(v.HostOnly)) // the container-wide MAC applies to this network
	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		netName(v.HostOnly): {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: ip}},
	}}
	if _, err := cli.ContainerCreate(ctx, cfg, hc, nc, nil, name); err != nil {
		return err
	}
	return cli.ContainerStart(ctx, name, container.StartOptions{})
}

// cloudInit does what cloud-init's NoCloud source does with the driver's seed: the user, its
// key and passwordless sudo.
func cloudInit(v *vm, c string) {
	out, err := exec.Command("isoinfo", "-i", v.ISO, "-x", "/user-data;1").Output()
	if err != nil {
		fail("fakevbox: reading the seed %s: %v", v.ISO, err)
	}
	user, key := "", ""
	lines := strings.Split(string(out), "\n")
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "- name: ") {
			user = strings.TrimPrefix(t, "- name: ")
		}
		if t == "ssh_authorized_keys:" && i+1 < len(lines) {
			key = strings.TrimPrefix(strings.TrimSpace(lines[i+1]), "- ")
		}
	}
	if user == "" || key == "" || strings.ContainsAny(user, " '\"$;") {
		fail("fakevbox: the seed has no user or key:\n%s", out)
	}
	// ssh_keys: the host key the driver made; cloud-init installs it as the host's only one.
	var priv []string
	pub := ""
	for i, l := range lines {
		if strings.TrimSpace(l) == "ed25519_private: |" {
			for _, k := range lines[i+1:] {
				if !strings.HasPrefix(k, "    ") {
					break
				}
				priv = append(priv, strings.TrimPrefix(k, "    "))
			}
		}
		if t := strings.TrimSpace(l); strings.HasPrefix(t, "ed25519_public: ") {
			pub = strings.TrimPrefix(t, "ed25519_public: ")
		}
	}
	if len(priv) > 0 && pub != "" {
		keyScript := `set -e
rm -f /etc/ssh/ssh_host_*
cat > /etc/ssh/ssh_host_ed25519_key; chmod 600 /etc/ssh/ssh_host_ed25519_key
echo "$1" > /etc/ssh/ssh_host_ed25519_key.pub
! systemctl is-active --quiet ssh || systemctl restart ssh`
		cmd := exec.Command("docker", "exec", "-i", c, "sh", "-c", keyScript, "sh", pub)
		cmd.Stdin = strings.NewReader(strings.Join(priv, "\n") + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			fail("fakevbox: cloud-init's ssh_keys in %s: %v: %s", c, err, out)
		}
	}
	script := `set -e
u="$1"
getent passwd "$u" >/dev/null || { if getent group "$u" >/dev/null; then useradd -m -s /bin/bash -g "$u" "$u"; else useradd -m -s /bin/bash -U "$u"; fi; }
install -d -m 700 -o "$u" "/home/$u/.ssh"
cat > "/home/$u/.ssh/authorized_keys"
chown "$u" "/home/$u/.ssh/authorized_keys"; chmod 600 "/home/$u/.ssh/authorized_keys"
echo "$u ALL=(ALL) NOPASSWD:ALL" > /etc/sudoers.d/90-cloud-init-users`
	cmd := exec.Command("docker", "exec", "-i", c, "sh", "-c", script, "sh", user)
	cmd.Stdin = strings.NewReader(key + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		fail("fakevbox: cloud-init in %s: %v: %s", c, err, out)
	}
}
