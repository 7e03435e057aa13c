package scp

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// onlyFiles fails unless dir holds exactly names (no partial file is left).
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

// TestCopyReplacesWhole: a file copied over another replaces it whole, through a symbolic link
// as scp writes, and leaves no partial file.
func TestCopyReplacesWhole(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	write(t, filepath.Join(src, "a"), "new content")
	write(t, filepath.Join(dst, "a"), "old")
	if err := Copy(Local{}, []string{filepath.Join(src, "a")}, Local{}, dst, Options{Context: context.Background()}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dst, "a")); got != "new content" {
		t.Errorf("the target holds %q", got)
	}
	onlyFiles(t, dst, "a")
	// Through a link: the file it names gets the content, the link stays.
	if err := os.Symlink(filepath.Join(dst, "a"), filepath.Join(dst, "link")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(src, "b"), "via the link")
	if err := Copy(Local{}, []string{filepath.Join(src, "b")}, Local{}, filepath.Join(dst, "link"), Options{}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(filepath.Join(dst, "link")); err != nil || st.Mode()&os.ModeSymlink == 0 || read(t, filepath.Join(dst, "a")) != "via the link" {
		t.Errorf("the link was replaced, or its file not written: %v", err)
	}
	onlyFiles(t, dst, "a", "link")
}

// TestCopyInterrupted: a copy whose context has ended (Ctrl-C) writes nothing: the target keeps
// its content and no partial file is left.
func TestCopyInterrupted(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	write(t, filepath.Join(src, "a"), strings.Repeat("x", 1<<20))
	write(t, filepath.Join(dst, "a"), "old")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Copy(Local{}, []string{filepath.Join(src, "a")}, Local{}, dst, Options{Context: ctx})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if got := read(t, filepath.Join(dst, "a")); got != "old" {
		t.Errorf("the target holds %d bytes, want its old content", len(got))
	}
	onlyFiles(t, dst, "a")
}
