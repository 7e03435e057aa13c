package virtualbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorded reads one of VBoxManage's outputs in testdata/vboxmanage, without its first line (which
// says where it comes from: recorded from a real VBoxManage by testdata/record.sh, or written).
func recorded(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "vboxmanage", name))
	if err != nil {
		t.Fatal(err)
	}
	head, rest, _ := strings.Cut(string(b), "\n")
	if !strings.HasPrefix(head, "# recorded from VBoxManage ") && !strings.HasPrefix(head, "# hand-written in ") {
		t.Fatalf("testdata/vboxmanage/%s does not say where it comes from in its first line", name)
	}
	return rest
}

// fakeVBox is VBoxManage for the tests: it keeps one VM's state, answers each call with the
// recorded output VirtualBox gives in that state, and records every argv.
type fakeVBox struct {
	t        testing.TB
	home     string // stands for /home/user: the VM folder is made under it
	state    string // "" (no VM), running, poweroff, saved, aborted, paused
	hostOnly string // the recording `list hostonlyifs` answers with
	// hostOnlyOut, when set, is the answer instead.
	hostOnlyOut string
	dhcp        string // the recording `list dhcpservers` answers with
	guestProps  string // the recording `guestproperty enumerate` answers with
	acpiStops   bool   // the guest honours the ACPI power button
	attached    string // the disk attached to the VM
	fail        map[string]string
	calls       [][]string
}

func newFake(t testing.TB) *fakeVBox {
	return &fakeVBox{t: t, home: t.TempDir(), hostOnly: "list-hostonlyifs.txt", dhcp: "list-dhcpservers.txt",
		guestProps: "guestproperty-enumerate-no-additions.txt", acpiStops: true, fail: map[string]string{}}
}

func (f *fakeVBox) Run(ctx context.Context, args ...string) (string, error) {
	f.calls = append(f.calls, args)
	key := args[0]
	if len(args) > 1 {
		key += " " + args[1]
	}
	for _, k := range []string{key, args[0]} {
		if file, ok := f.fail[k]; ok {
			e := NewError(args, 1, recorded(f.t, file), errors.New("exit status 1"))
			e.NoKernelDriver = file == "error-kernel-driver.txt" // recorded on a host without /dev/vboxdrv
			return "", e
		}
	}
	switch args[0] {
	case "--version":
		return recorded(f.t, "version.txt"), nil
	case "list":
		switch args[1] {
		case "vms": // the recording lists manager1 and "worker 1": manager1 only while it exists
			out := recorded(f.t, "list-vms.txt")
			if f.state == "" {
				out = out[strings.Index(out, "\n")+1:]
			}
			return out, nil
		case "hostonlyifs":
			if f.hostOnlyOut != "" {
				return f.hostOnlyOut, nil
			}
			return recorded(f.t, f.hostOnly), nil
		case "dhcpservers":
			return recorded(f.t, f.dhcp), nil
		}
	case "hostonlyif":
		if args[1] == "create" {
			return recorded(f.t, "hostonlyif-create.txt"), nil
		}
		return "", nil
	case "createvm":
		out := strings.ReplaceAll(recorded(f.t, "createvm.txt"), "/home/user", f.home)
		if err := os.MkdirAll(filepath.Join(f.home, "VirtualBox VMs", "manager1"), 0o755); err != nil {
			f.t.Fatal(err)
		}
		f.state = "poweroff"
		return out, nil
	case "clonemedium", "convertfromraw", "createmedium":
		// The disk file is made, as VirtualBox makes it (and registers it).
		dst := args[len(args)-3]
		if args[0] == "createmedium" {
			dst = args[3]
		}
		if err := os.WriteFile(dst, []byte("<<< Oracle VM VirtualBox Disk Image >>>\n"), 0o600); err != nil {
			f.t.Fatal(err)
		}
		if args[0] == "clonemedium" {
			return recorded(f.t, "clonemedium.txt"), nil
		}
	case "showmediuminfo":
		return recorded(f.t, "showmediuminfo.txt"), nil
	case "showvminfo":
		if f.state == "" {
			return "", NewError(args, 1, recorded(f.t, "error-not-found.txt"), errors.New("exit status 1"))
		}
		return recorded(f.t, "showvminfo-"+f.state+".txt"), nil
	case "guestproperty":
		return recorded(f.t, f.guestProps), nil
	case "startvm":
		f.state = "running"
	case "controlvm":
		switch args[2] {
		case "poweroff":
			f.state = "poweroff"
		case "acpipowerbutton":
			if f.acpiStops {
				f.state = "poweroff"
			}
		case "resume":
			f.state = "running"
		}
	case "storageattach":
		if args[len(args)-3] == "hdd" {
			f.attached = args[len(args)-1]
		}
	case "unregistervm":
		f.state = ""
		if f.attached != "" { // --delete takes the VM's disks with it
			_ = os.Remove(f.attached)
		}
	}
	return "", nil
}

// argvs renders the recorded calls one per line, with the temporary folder named $HOME.
func (f *fakeVBox) argvs() []string {
	var out []string
	for _, c := range f.calls {
		out = append(out, strings.ReplaceAll(strings.Join(c, " "), f.home, "$HOME"))
	}
	return out
}

func (f *fakeVBox) reset() { f.calls = nil }
