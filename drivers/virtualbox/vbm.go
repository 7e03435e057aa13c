package virtualbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Runner runs VBoxManage with an argv (never a shell string) and returns its standard output.
// Every VBoxManage call of the driver goes through one; tests inject a fake.
type Runner interface {
	Run(ctx context.Context, args ...string) (string, error)
}

// ErrNoVBoxManage is a machine without VirtualBox.
var ErrNoVBoxManage = errors.New("VBoxManage was not found on PATH, nor in VBOX_MSI_INSTALL_PATH or VBOX_INSTALL_PATH: install VirtualBox (https://www.virtualbox.org/wiki/Downloads), or put VBoxManage on PATH")

// errVMNotFound is VBoxManage's answer for a VM it does not know.
var errVMNotFound = errors.New("no such VirtualBox VM")

// Locate finds VBoxManage: on PATH, then in the folders VirtualBox's installers name in
// VBOX_MSI_INSTALL_PATH (Windows) and VBOX_INSTALL_PATH.
func Locate(getenv func(string) string, lookPath func(string) (string, error)) (string, error) {
	for _, name := range []string{"VBoxManage", "vboxmanage"} {
		if p, err := lookPath(name); err == nil {
			return p, nil
		}
	}
	exe := "VBoxManage"
	if runtime.GOOS == "windows" {
		exe += ".exe"
	}
	for _, env := range []string{"VBOX_MSI_INSTALL_PATH", "VBOX_INSTALL_PATH"} {
		for _, dir := range filepath.SplitList(getenv(env)) {
			if dir == "" {
				continue
			}
			p := filepath.Join(dir, exe)
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p, nil
			}
		}
	}
	return "", ErrNoVBoxManage
}

// Call is one VBoxManage call and its answer, as a transcript of a run keeps them (the driver's
// test against a real VirtualBox writes one; the stand-in VBoxManage is checked against it).
type Call struct {
	Args   []string `json:"args"`
	Stdout string   `json:"stdout"`
	Stderr string   `json:"stderr,omitempty"`
	Code   int      `json:"code"`
}

// ExecRunner runs the real VBoxManage at Path.
type ExecRunner struct{ Path string }

// Run implements Runner.
func (r ExecRunner) Run(ctx context.Context, args ...string) (string, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, r.Path, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	warning, stdout := SplitWarning(out.String())
	if err != nil {
		code := -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		e := NewError(args, code, errb.String(), err)
		e.Warning = warning
		if runtime.GOOS == "linux" {
			_, serr := os.Stat("/dev/vboxdrv")
			e.NoKernelDriver = errors.Is(serr, os.ErrNotExist)
		}
		return stdout, e
	}
	return stdout, nil
}

// SplitWarning takes off the warning that Linux packages' VBoxManage wrapper (/usr/bin/VBoxManage,
// a shell script) prints on standard output before every command's own output when VirtualBox's
// kernel driver is missing: a "WARNING: " line and the indented or blank lines after it.
func SplitWarning(out string) (warning, rest string) {
	if !strings.HasPrefix(out, "WARNING: ") {
		return "", out
	}
	lines := strings.SplitAfter(out, "\n")
	i := 1
	for i < len(lines) && (strings.TrimSpace(lines[i]) == "" || lines[i][0] == ' ' || lines[i][0] == '\t') {
		i++
	}
	return strings.TrimSpace(strings.Join(lines[:i], "")), strings.Join(lines[i:], "")
}

// Error is a failed VBoxManage call: its argv, exit code and VirtualBox's own message, with the
// fix when the message is a known one.
type Error struct {
	Args     []string
	ExitCode int
	Stderr   string
	Err      error
	// Warning is what the VBoxManage wrapper printed before the output (SplitWarning).
	Warning string
	// NoKernelDriver: the call failed on a Linux host without /dev/vboxdrv.
	NoKernelDriver bool
}

// NewError builds the error of a failed call from what VBoxManage printed.
func NewError(args []string, code int, stderr string, err error) *Error {
	return &Error{Args: args, ExitCode: code, Stderr: stderr, Err: err}
}

// Message is VirtualBox's first line of error, without the "VBoxManage: error: " prefix.
func (e *Error) Message() string {
	var first string
	for _, line := range strings.Split(e.Stderr, "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "VBoxManage: error: "); ok {
			return rest
		}
		if first == "" && line != "" {
			first = line
		}
	}
	if first != "" {
		return first
	}
	if e.Err != nil {
		return e.Err.Error()
	}
	return fmt.Sprintf("exit status %d", e.ExitCode)
}

// Fix is what to do about a known failure ("" when unknown).
func (e *Error) Fix() string {
	s := e.Stderr
	verb := ""
	if len(e.Args) > 0 {
		verb = e.Args[0]
	}
	switch {
	case strings.Contains(s, "VT-x is disabled") || strings.Contains(s, "AMD-V is disabled") ||
		strings.Contains(s, "VERR_VMX_") || strings.Contains(s, "VERR_SVM_"):
		return "enable hardware virtualization (VT-x or AMD-V) in the BIOS/UEFI; on a VM host, turn on nested virtualization, and make sure no other hypervisor (KVM, Hyper-V) holds it"
	case strings.Contains(s, "E_ACCESSDENIED") && verb == "hostonlyif":
		return "VirtualBox 6.1.28 and later allow host-only networks only in 192.168.56.0/21: pass --virtualbox-hostonly-cidr 192.168.56.1/24, or allow the range with a line such as `* 192.168.99.0/24` in /etc/vbox/networks.conf"
	case strings.Contains(s, "already exists") && verb == "createvm":
		return "VirtualBox already has a VM of this name: pick another machine name, or remove that VM (VBoxManage unregistervm NAME --delete)"
	case strings.Contains(s, "already locked"):
		return "another VBoxManage or the VirtualBox window is using the VM: wait for it or close it, then run the command again"
	case strings.Contains(s, "vboxdrv kernel module is not loaded") || strings.Contains(s, "VERR_VM_DRIVER_NOT_INSTALLED") ||
		(verb == "startvm" && e.NoKernelDriver && strings.Contains(s, "terminated unexpectedly during startup")):
		return "VirtualBox's kernel driver is not loaded (no /dev/vboxdrv), so no VM can start: load it with `sudo modprobe vboxdrv`, or build it with `sudo /sbin/vboxconfig` (Debian and Ubuntu: install virtualbox-dkms and linux-headers-$(uname -r) first); with Secure Boot on, sign the module or turn Secure Boot off; VMs also need VT-x/AMD-V enabled in the BIOS/UEFI"
	case strings.Contains(s, "/dev/vboxnetctl") || (verb == "hostonlyif" && strings.Contains(s, "Failed to create the host-only adapter")):
		return "VirtualBox's host-only network driver is not loaded (no /dev/vboxnetctl): load it with `sudo modprobe vboxnetadp`, or build VirtualBox's kernel modules with `sudo /sbin/vboxconfig`; or give --virtualbox-hostonly-cidr the address of a host-only network that exists (VBoxManage list hostonlyifs)"
	}
	return ""
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("VBoxManage %s: %s", strings.Join(e.Args, " "), e.Message())
	if fix := e.Fix(); fix != "" {
		msg += ": " + fix
	}
	return msg
}

func (e *Error) Unwrap() error {
	if strings.Contains(e.Stderr, "Could not find a registered machine") || strings.Contains(e.Stderr, "VBOX_E_OBJECT_NOT_FOUND") {
		return errVMNotFound
	}
	return e.Err
}
