package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestReserveIsExclusiveAcrossGoroutines(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, lost := 0, 0
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Reserve(&Machine{Name: "web1", DriverName: fmt.Sprint(i)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, ErrExists):
				lost++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if won != 1 || lost != 19 {
		t.Fatalf("won=%d lost=%d: want exactly one reservation", won, lost)
	}
}

func TestSaveLoadAndModes(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "st"))
	if err != nil {
		t.Fatal(err)
	}
	m := &Machine{Name: "db.1", DriverName: "generic", SSH: SSH{Host: "10.0.0.5", Port: 22, User: "root"}}
	if err := s.Reserve(m); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load("db.1")
	if err != nil {
		t.Fatal(err)
	}
	if got.SSH.Host != "10.0.0.5" || got.State != StateCreating || got.Dir() != m.Dir() {
		t.Fatalf("loaded %+v", got)
	}
	for _, p := range []string{s.Root, m.Dir()} {
		st, _ := os.Stat(p)
		if st.Mode().Perm() != 0o700 {
			t.Errorf("%s mode %o, want 0700", p, st.Mode().Perm())
		}
	}
	st, _ := os.Stat(m.ConfigPath())
	if st.Mode().Perm() != 0o600 {
		t.Errorf("config mode %o", st.Mode().Perm())
	}
	names, _ := s.List()
	if len(names) != 1 || names[0] != "db.1" {
		t.Fatalf("List = %v", names)
	}
	if _, err := s.Load("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load(nope) = %v", err)
	}
	if err := s.Remove("db.1"); err != nil || s.Exists("db.1") {
		t.Fatalf("Remove: %v", err)
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"web1", "a", "node-1.lab", "X9"} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-x", ".x", "a b", "a/b", "../x", "x_y", string(make([]byte, 70)), "a..b", "web1."} {
		if err := ValidateName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// A new machine's host name keeps every character: no part ends or starts with a hyphen.
	for _, bad := range []string{"web-", "web-.lab", "web.-lab", "a.b-"} {
		if err := ValidateNewName(bad); err == nil || !strings.Contains(err.Error(), "starts or ends with a hyphen") {
			t.Errorf("%q: %v", bad, err)
		}
		if err := ValidateName(bad); err != nil {
			t.Errorf("an existing machine %q is no longer loaded: %v", bad, err)
		}
	}
	if err := ValidateNewName("node-1.lab"); err != nil {
		t.Error(err)
	}
}

// TestOneCAAcrossProcesses runs several processes that all ask for the store's authority at once:
// the lock must leave exactly one CA that every one of them read.
func TestOneCAAcrossProcesses(t *testing.T) {
	if os.Getenv("STORE_HELPER") == "1" {
		s, err := Open(os.Getenv("STORE_ROOT"))
		if err != nil {
			fmt.Print("ERR ", err)
			os.Exit(1)
		}
		a, err := s.Authority(context.Background())
		if err != nil {
			fmt.Print("ERR ", err)
			os.Exit(1)
		}
		fmt.Print(a.CA.Cert.SerialNumber.String())
		os.Exit(0)
	}
	root := t.TempDir()
	var wg sync.WaitGroup
	serials := make([]string, 8)
	for i := range serials {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestOneCAAcrossProcesses$")
			cmd.Env = append(os.Environ(), "STORE_HELPER=1", "STORE_ROOT="+root)
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("helper: %v %s", err, out)
			}
			serials[i] = string(out)
		}()
	}
	wg.Wait()
	for _, s := range serials[1:] {
		if s != serials[0] {
			t.Fatalf("processes saw different CAs: %v", serials)
		}
	}
}

func TestLockTimesOut(t *testing.T) {
	s, _ := Open(t.TempDir())
	unlock, err := s.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	// flock locks belong to the open file description: a second handle in this process waits.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := s.Lock(ctx); err == nil {
		t.Fatal("a second lock was granted while the first is held")
	}
}

// TestReserveOnAFullStore: a store whose file system is full (a 64 KiB tmpfs, filled) refuses
// the name with the cause and the fix, and leaves no folder behind (the next try is not told
// the machine exists).
func TestReserveOnAFullStore(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("mounting a tmpfs needs root")
		}
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	s, err := Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	fill, _ := os.Create(filepath.Join(dir, "fill"))
	_, _ = fill.Write(make([]byte, 128<<10))
	fill.Close()
	for i := 0; i < 2; i++ {
		err := s.Reserve(&Machine{Name: "m1"})
		if err == nil || !strings.Contains(err.Error(), "is full") || !strings.Contains(err.Error(), "MACHINE_STORAGE_PATH") {
			t.Fatalf("try %d: %v", i+1, err)
		}
		if s.Exists("m1") {
			t.Fatalf("try %d: a folder was left", i+1)
		}
	}
}
