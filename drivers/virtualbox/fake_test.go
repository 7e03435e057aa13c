package virtualbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorded reads one of VBoxManage's outputs in testdata/vboxmanage.
func recorded(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "vboxmanage", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fakeVBox is VBoxManage for the tests: it keeps one VM's state, answers each call with the
// recorded output VirtualBox gives in that state, and records every argv.
type fakeVBox struct {
	t          testing.TB
	home       string // stands for /home/user: the VM folder is made under it
	state      string // "" (no VM), running, poweroff, saved, aborted, paused
	hostOnly   string // the recording `list hostonlyifs` answers with
	dhcp       string // the recording `list dhcpservers` answers with
	guestProps string // the recording `guestproperty enumerate` answers with
	acpiStops  bool   // the guest honours the ACPI power button
	fail       map[string]string
	calls      [][]string
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
			return "", NewError(args, 1, recorded(f.t, file), errors.New("exit status 1"))
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
	case "clonemedium":
		return recorded(f.t, "clonemedium.txt"), nil
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
	case "unregistervm":
		f.state = ""
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
