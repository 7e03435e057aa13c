package machine

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/machine-tools/machine/internal/fsutil"
	"github.com/machine-tools/machine/internal/store"
)

// An export is a gzipped tar: manifest.json (the format, the store it came from, the machines),
// machines/NAME/... (each machine's folder: record, SSH key, client and server certificates,
// pinned host keys) and, only when asked, certs/ca.pem and certs/ca-key.pem. With a passphrase the
// whole is encrypted with age (scrypt).
const exportFormat = "machine-export/1"

type exportManifest struct {
	Format   string   `json:"format"`
	Store    string   `json:"store"` // the store's folder where it was made: paths in records start so
	Machines []string `json:"machines"`
	CAKey    bool     `json:"caKey"`
}

// ExportOptions tune Export.
type ExportOptions struct {
	// WithCAKey adds the store's CA certificate and key (whoever has it can make certificates that
	// every machine of this store trusts).
	WithCAKey bool
	// Passphrase, when set, encrypts the export (age, scrypt).
	Passphrase string
}

// Export writes the named machines to w, for Import on another computer or store.
func (a *API) Export(w io.Writer, names []string, o ExportOptions) error {
	if len(names) == 0 {
		return errors.New("name the machines to export")
	}
	for _, n := range names {
		if !a.Exists(n) {
			return &store.NotFoundError{Name: n}
		}
	}
	out := w
	var enc io.WriteCloser
	if o.Passphrase != "" {
		r, err := age.NewScryptRecipient(o.Passphrase)
		if err != nil {
			return err
		}
		if enc, err = age.Encrypt(w, r); err != nil {
			return err
		}
		out = enc
	}
	gz := gzip.NewWriter(out)
	tw := tar.NewWriter(gz)
	add := func(name string, data []byte, mode int64) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: time.Now(), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	man, _ := json.Marshal(exportManifest{Format: exportFormat, Store: a.owner(), Machines: names, CAKey: o.WithCAKey})
	if err := add("manifest.json", man, 0o600); err != nil {
		return err
	}
	for _, n := range names {
		dir := filepath.Join(a.Store.Root, "machines", n)
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") { // the create lock
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return err
			}
			if err := add(path.Join("machines", n, e.Name()), b, 0o600); err != nil {
				return err
			}
		}
	}
	if o.WithCAKey {
		for _, f := range []string{"ca.pem", "ca-key.pem"} {
			b, err := os.ReadFile(filepath.Join(a.Store.CertsDir(), f))
			if err != nil {
				return err
			}
			if err := add(path.Join("certs", f), b, 0o600); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	if enc != nil {
		return enc.Close()
	}
	return nil
}

// ImportOptions tune Import.
type ImportOptions struct {
	Passphrase string            // for an encrypted export
	Rename     map[string]string // old name: new name
}

// Import makes the machines of an export usable in this store: their folders written here, the
// paths inside their records rewritten for this store. A name that exists here is refused (rename
// it). The export's CA key, when it has one, is not taken over: it is reported.
func (a *API) Import(r io.Reader, o ImportOptions) ([]Result, error) {
	br := &peekReader{r: r}
	head, _ := br.peek(len("age-encryption.org/"))
	in := io.Reader(br)
	if string(head) == "age-encryption.org/" {
		if o.Passphrase == "" {
			return nil, errors.New("the export is encrypted: give its passphrase (--passphrase-stdin)")
		}
		id, err := age.NewScryptIdentity(o.Passphrase)
		if err != nil {
			return nil, err
		}
		if in, err = age.Decrypt(br, id); err != nil {
			return nil, fmt.Errorf("the export could not be decrypted (%v): is the passphrase right?", err)
		}
	}
	gz, err := gzip.NewReader(in)
	if err != nil {
		return nil, fmt.Errorf("not a machine export (%v)", err)
	}
	tr := tar.NewReader(gz)
	var man exportManifest
	files := map[string]map[string][]byte{} // machine: file: data
	const maxFile = 16 << 20
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the export: %w", err)
		}
		if h.Typeflag != tar.TypeReg || h.Size > maxFile {
			return nil, fmt.Errorf("the export holds %q, which no export of machine's holds", h.Name)
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxFile))
		if err != nil {
			return nil, err
		}
		parts := strings.Split(h.Name, "/")
		switch {
		case h.Name == "manifest.json":
			if err := json.Unmarshal(b, &man); err != nil || man.Format != exportFormat {
				return nil, fmt.Errorf("not a machine export (its manifest: %v)", err)
			}
		case len(parts) == 3 && parts[0] == "machines" && store.ValidateName(parts[1]) == nil && parts[2] != "" && !strings.HasPrefix(parts[2], ".") && !strings.Contains(parts[2], "\\"):
			if files[parts[1]] == nil {
				files[parts[1]] = map[string][]byte{}
			}
			files[parts[1]][parts[2]] = b
		case len(parts) == 2 && parts[0] == "certs":
			// the CA key: not taken over (this store has its own CA)
		default:
			return nil, fmt.Errorf("the export holds %q, which no export of machine's holds", h.Name)
		}
	}
	if man.Format == "" {
		return nil, errors.New("not a machine export (no manifest)")
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Result
	for _, old := range names {
		name := old
		if nn, ok := o.Rename[old]; ok {
			name = nn
		}
		res := Result{Name: name}
		res.Err = a.importMachine(man.Store, old, name, files[old])
		if res.Err == nil {
			res.Note = "imported"
			if name != old {
				res.Note = "imported (was " + old + ")"
			}
		}
		out = append(out, res)
	}
	return out, nil
}

func (a *API) importMachine(oldStore, old, name string, files map[string][]byte) error {
	if err := store.ValidateName(name); err != nil {
		return err
	}
	if a.Exists(name) {
		return fmt.Errorf("a machine named %q exists here already: import it under another name (--rename %s=NEWNAME)", name, old)
	}
	rec, ok := files["config.json"]
	if !ok {
		return fmt.Errorf("the export has no record of %q", old)
	}
	var tree map[string]any
	if err := json.Unmarshal(rec, &tree); err != nil {
		return fmt.Errorf("the record of %q is damaged: %w", old, err)
	}
	oldDir := filepath.Join(oldStore, "machines", old)
	newDir := filepath.Join(a.owner(), "machines", name)
	tree = rewritePaths(tree, oldDir, newDir, oldStore, a.owner()).(map[string]any)
	tree["Name"] = name
	rec, err := json.MarshalIndent(tree, "", "    ")
	if err != nil {
		return err
	}
	dir := filepath.Join(a.Store.Root, "machines", name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return &store.ExistsError{Name: name}
		}
		return err
	}
	for f, b := range files {
		if f == "config.json" {
			continue
		}
		mode := os.FileMode(0o600)
		if strings.HasSuffix(f, ".pub") || f == "ca.pem" || f == "cert.pem" || f == "server.pem" {
			mode = 0o644
		}
		if err := fsutil.WriteFileAtomic(filepath.Join(dir, f), b, mode); err != nil {
			_ = os.RemoveAll(dir)
			return err
		}
	}
	// The record last: a folder without it is a create that did not finish (rm -f removes it).
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, "config.json"), rec, 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return err
	}
	return nil
}

// rewritePaths moves the paths in a record from the old machine folder and store to the new.
func rewritePaths(v any, oldDir, newDir, oldStore, newStore string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			x[k] = rewritePaths(val, oldDir, newDir, oldStore, newStore)
		}
	case []any:
		for i := range x {
			x[i] = rewritePaths(x[i], oldDir, newDir, oldStore, newStore)
		}
	case string:
		switch {
		case x == oldDir || strings.HasPrefix(x, oldDir+string(filepath.Separator)):
			return newDir + x[len(oldDir):]
		case x == oldStore || strings.HasPrefix(x, oldStore+string(filepath.Separator)):
			return newStore + x[len(oldStore):]
		}
	}
	return v
}

// peekReader lets the first bytes be looked at and still read.
type peekReader struct {
	r   io.Reader
	buf []byte
}

func (p *peekReader) peek(n int) ([]byte, error) {
	for len(p.buf) < n {
		b := make([]byte, n-len(p.buf))
		m, err := p.r.Read(b)
		p.buf = append(p.buf, b[:m]...)
		if err != nil {
			return p.buf, err
		}
	}
	return p.buf[:n], nil
}

func (p *peekReader) Read(b []byte) (int, error) {
	if len(p.buf) > 0 {
		n := copy(b, p.buf)
		p.buf = p.buf[n:]
		return n, nil
	}
	return p.r.Read(b)
}
