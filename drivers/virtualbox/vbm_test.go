package virtualbox

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLocate: VBoxManage on PATH first, then VBOX_MSI_INSTALL_PATH / VBOX_INSTALL_PATH, and a
// clear error without either.
func TestLocate(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "VBoxManage")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	none := func(string) (string, error) { return "", exec.ErrNotFound }
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if p, err := Locate(env(nil), func(n string) (string, error) {
		if n == "VBoxManage" {
			return exe, nil
		}
		return "", exec.ErrNotFound
	}); err != nil || p != exe {
		t.Errorf("PATH: %q %v", p, err)
	}
	for _, k := range []string{"VBOX_MSI_INSTALL_PATH", "VBOX_INSTALL_PATH"} {
		if p, err := Locate(env(map[string]string{k: "/nonexistent" + string(os.PathListSeparator) + dir}), none); err != nil || p != exe {
			t.Errorf("%s: %q %v", k, p, err)
		}
	}
	_, err := Locate(env(map[string]string{"VBOX_INSTALL_PATH": t.TempDir()}), none)
	if !errors.Is(err, ErrNoVBoxManage) || !strings.Contains(err.Error(), "install VirtualBox") {
		t.Errorf("none: %v", err)
	}
}

// TestExecRunner runs a stand-in VBoxManage program: argv arrives as separate words (a path with
// spaces stays one), standard output is returned, and a failure carries VirtualBox's message.
func TestExecRunner(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "argv")
	script := `#!/bin/sh
for a in "$@"; do printf '%s\n' "$a" >> ` + log + `; done
if [ "$1" = startvm ]; then cat ` + filepath.Join(mustAbs(t, "testdata/vboxmanage"), "error-vtx.txt") + ` >&2; exit 1; fi
tail -n +2 ` + filepath.Join(mustAbs(t, "testdata/vboxmanage"), "wrapper-version.txt") + `
`
	exe := filepath.Join(dir, "VBoxManage")
	if err := os.WriteFile(exe, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r := ExecRunner{Path: exe}
	out, err := r.Run(context.Background(), "storageattach", "vm", "--medium", "/home/u/VirtualBox VMs/vm/disk.vdi")
	// The wrapper's warning is not part of the output.
	if err != nil || out != "7.2.22_Debianr175245\n" {
		t.Fatalf("%q %v", out, err)
	}
	b, _ := os.ReadFile(log)
	if got := strings.Split(strings.TrimSpace(string(b)), "\n"); len(got) != 4 || got[3] != "/home/u/VirtualBox VMs/vm/disk.vdi" {
		t.Errorf("argv arrived as %q", got)
	}
	_, err = r.Run(context.Background(), "startvm", "vm", "--type", "headless")
	var ve *Error
	if !errors.As(err, &ve) || ve.ExitCode != 1 || ve.Message() != "VT-x is disabled in the BIOS for all CPU modes (VERR_VMX_MSR_ALL_VMX_DISABLED)" {
		t.Errorf("failure: %v", err)
	}
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestSplitWarning: the warning Debian's wrapper prints before the output (recorded) comes off;
// an output without one is left as it is.
func TestSplitWarning(t *testing.T) {
	b, err := os.ReadFile("testdata/vboxmanage/wrapper-version.txt")
	if err != nil {
		t.Fatal(err)
	}
	_, out, _ := strings.Cut(string(b), "\n") // the line that says where it comes from
	w, rest := SplitWarning(out)
	if rest != "7.2.22_Debianr175245\n" || !strings.HasPrefix(w, "WARNING: The character device /dev/vboxdrv does not exist.") || !strings.HasSuffix(w, "until this problem is fixed.") {
		t.Errorf("warning %q, rest %q", w, rest)
	}
	if w, rest := SplitWarning("Name:            vboxnet0\n"); w != "" || rest != "Name:            vboxnet0\n" {
		t.Errorf("no warning: %q %q", w, rest)
	}
}
