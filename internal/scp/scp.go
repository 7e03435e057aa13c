// Package scp copies files and trees between the local machine and machines, and from machine to
// machine, over SFTP on the machines' own SSH connections (no scp binary needed). A copy between
// two machines streams through the client. Each file is written under a temporary name beside its
// target and renamed over it once whole: an interrupted copy leaves the target as it was.
package scp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
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
	// Rename puts old in new's place, replacing it.
	Rename(old, new string) error
	// Resolve is the file a symbolic link at p names (p itself otherwise): a copy writes through
	// a link, as scp does, instead of replacing it.
	Resolve(p string) string
	Remove(p string) error
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
func (Local) Rename(old, new string) error { return os.Rename(old, new) }
func (Local) Resolve(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}
func (Local) Remove(p string) error      { return os.Remove(p) }
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
func (r Remote) Remove(p string) error                   { return r.C.Remove(p) }
func (r Remote) Resolve(p string) string {
	if st, err := r.C.Lstat(p); err == nil && st.Mode()&fs.ModeSymlink != 0 {
		if real, err := r.C.RealPath(p); err == nil {
			return real
		}
	}
	return p
}

// Rename replaces new with old at once where the server can (OpenSSH's posix-rename), else
// removes new first (SFTP's own rename refuses to replace).
func (r Remote) Rename(old, new string) error {
	if _, ok := r.C.HasExtension("posix-rename@openssh.com"); ok {
		return r.C.PosixRename(old, new)
	}
	if err := r.C.Remove(new); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return r.C.Rename(old, new)
}
func (r Remote) Join(elem ...string) string { return path.Join(elem...) }
func (r Remote) Base(p string) string       { return path.Base(p) }
func (r Remote) Name() string               { return r.Machine }

// Options tune a copy.
type Options struct {
	// Context ends the copy (Ctrl-C): the file being written is dropped, its target kept as it was.
	Context   context.Context
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
	// Written beside the target under a name of its own, renamed over it once whole.
	d = dstFS.Resolve(d)
	tmp := partialName(dstFS, d)
	w, err := dstFS.Create(tmp, st.Mode())
	if err != nil {
		return fmt.Errorf("%s:%s: %w", dstFS.Name(), d, err)
	}
	var in io.Reader = ctxReader{ctx: o.Context, r: r}
	if o.Progress != nil {
		in = o.Progress(src.Base(s), st.Size(), in)
	}
	_, err = io.Copy(w, in)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = dstFS.Rename(tmp, d)
	}
	if err != nil {
		_ = dstFS.Remove(tmp)
		return fmt.Errorf("copying %s:%s to %s:%s: %w", src.Name(), s, dstFS.Name(), d, err)
	}
	return nil
}

// partialName is where a file is written before it is renamed to d: a hidden name in d's folder.
func partialName(f FS, d string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	dir, base := strings.TrimSuffix(d, f.Base(d)), f.Base(d)
	return dir + "." + base + ".machine-" + hex.EncodeToString(b)
}

// ctxReader stops a copy once its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if c.ctx != nil {
		if err := c.ctx.Err(); err != nil {
			return 0, err
		}
	}
	return c.r.Read(p)
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
