// Package scp copies files and trees between the local machine and machines, and from machine to
// machine, over SFTP on the machines' own SSH connections (no scp binary needed). A copy between
// two machines streams through the client.
package scp

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pkg/sftp"
)

// FS is one side of a copy: the local file system or a machine's SFTP.
type FS interface {
	Stat(p string) (fs.FileInfo, error)
	Open(p string) (io.ReadCloser, error)
	Create(p string, mode fs.FileMode) (io.WriteCloser, error)
	Mkdir(p string, mode fs.FileMode) error
	ReadDir(p string) ([]fs.FileInfo, error)
	Join(elem ...string) string
	Base(p string) string
	Name() string
}

// Local is the local file system.
type Local struct{}

func (Local) Stat(p string) (fs.FileInfo, error)   { return os.Stat(p) }
func (Local) Open(p string) (io.ReadCloser, error) { return os.Open(p) }
func (Local) Create(p string, mode fs.FileMode) (io.WriteCloser, error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode.Perm())
	if err != nil {
		return nil, err
	}
	return f, os.Chmod(p, mode.Perm())
}
func (Local) Mkdir(p string, mode fs.FileMode) error {
	if err := os.Mkdir(p, mode.Perm()); err != nil && !os.IsExist(err) {
		return err
	}
	return os.Chmod(p, mode.Perm())
}
func (Local) ReadDir(p string) ([]fs.FileInfo, error) {
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil, err
	}
	var out []fs.FileInfo
	for _, e := range ents {
		i, err := e.Info()
		if err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	return out, nil
}
func (Local) Join(elem ...string) string { return filepath.Join(elem...) }
func (Local) Base(p string) string       { return filepath.Base(p) }
func (Local) Name() string               { return "local" }

// Remote is a machine's file system over SFTP.
type Remote struct {
	Machine string
	C       *sftp.Client
}

func (r Remote) Stat(p string) (fs.FileInfo, error)   { return r.C.Stat(p) }
func (r Remote) Open(p string) (io.ReadCloser, error) { return r.C.Open(p) }
func (r Remote) Create(p string, mode fs.FileMode) (io.WriteCloser, error) {
	f, err := r.C.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return nil, err
	}
	return f, f.Chmod(mode.Perm())
}
func (r Remote) Mkdir(p string, mode fs.FileMode) error {
	if err := r.C.Mkdir(p); err != nil {
		if st, serr := r.C.Stat(p); serr != nil || !st.IsDir() {
			return err
		}
	}
	return r.C.Chmod(p, mode.Perm())
}
func (r Remote) ReadDir(p string) ([]fs.FileInfo, error) { return r.C.ReadDir(p) }
func (r Remote) Join(elem ...string) string              { return path.Join(elem...) }
func (r Remote) Base(p string) string                    { return path.Base(p) }
func (r Remote) Name() string                            { return r.Machine }

// Options tune a copy.
type Options struct {
	Recursive bool
	// Progress, when set, wraps each file's reader (for a progress bar); size is the file's.
	Progress func(name string, size int64, r io.Reader) io.Reader
}

// Copy copies srcs (on src) to dst (on dstFS), as scp does: into dst when it is a folder, else to
// dst itself; folders only with Recursive. Modes are kept.
func Copy(src FS, srcs []string, dstFS FS, dst string, o Options) error {
	dstInfo, derr := dstFS.Stat(dst)
	dstIsDir := derr == nil && dstInfo.IsDir()
	if len(srcs) > 1 && !dstIsDir {
		return fmt.Errorf("%s:%s is not a folder: copying several sources needs a folder as the target", dstFS.Name(), dst)
	}
	for _, s := range srcs {
		st, err := src.Stat(s)
		if err != nil {
			return fmt.Errorf("%s:%s: %w", src.Name(), s, err)
		}
		target := dst
		if dstIsDir {
			target = dstFS.Join(dst, src.Base(strings.TrimRight(s, "/")))
		}
		if st.IsDir() {
			if !o.Recursive {
				return fmt.Errorf("%s:%s is a folder: pass -r to copy it", src.Name(), s)
			}
			if err := copyTree(src, s, dstFS, target, st, o); err != nil {
				return err
			}
			continue
		}
		if err := copyFile(src, s, dstFS, target, st, o); err != nil {
			return err
		}
	}
	return nil
}

func copyTree(src FS, s string, dstFS FS, d string, st fs.FileInfo, o Options) error {
	if err := dstFS.Mkdir(d, st.Mode()|0o700); err != nil {
		return fmt.Errorf("%s:%s: %w", dstFS.Name(), d, err)
	}
	ents, err := src.ReadDir(s)
	if err != nil {
		return fmt.Errorf("%s:%s: %w", src.Name(), s, err)
	}
	for _, e := range ents {
		sp, dp := src.Join(s, e.Name()), dstFS.Join(d, e.Name())
		switch {
		case e.IsDir():
			if err := copyTree(src, sp, dstFS, dp, e, o); err != nil {
				return err
			}
		case e.Mode().IsRegular():
			if err := copyFile(src, sp, dstFS, dp, e, o); err != nil {
				return err
			}
		}
	}
	// The folder's own mode last, once its content is in (a read-only folder would refuse it).
	if err := dstFS.Mkdir(d, st.Mode()); err != nil {
		return err
	}
	return nil
}

func copyFile(src FS, s string, dstFS FS, d string, st fs.FileInfo, o Options) error {
	r, err := src.Open(s)
	if err != nil {
		return fmt.Errorf("%s:%s: %w", src.Name(), s, err)
	}
	defer r.Close()
	w, err := dstFS.Create(d, st.Mode())
	if err != nil {
		return fmt.Errorf("%s:%s: %w", dstFS.Name(), d, err)
	}
	var in io.Reader = r
	if o.Progress != nil {
		in = o.Progress(src.Base(s), st.Size(), r)
	}
	if _, err := io.Copy(w, in); err != nil {
		w.Close()
		return fmt.Errorf("copying %s:%s to %s:%s: %w", src.Name(), s, dstFS.Name(), d, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("%s:%s: %w", dstFS.Name(), d, err)
	}
	return nil
}

// Spec is one argument of `machine scp`: [MACHINE:]PATH.
type Spec struct{ User, Machine, Path string }

// ParseSpec splits [USER@]MACHINE:PATH, as docker-machine's scp took it; a path with a slash
// before any colon is local.
func ParseSpec(arg string) Spec {
	i := strings.Index(arg, ":")
	if i <= 0 || strings.Contains(arg[:i], "/") {
		return Spec{Path: arg}
	}
	user, m, ok := strings.Cut(arg[:i], "@")
	if !ok {
		user, m = "", arg[:i]
	}
	return Spec{User: user, Machine: m, Path: arg[i+1:]}
}
