// Package store keeps machines on disk: one folder per machine holding its config (JSON, written
// atomically), its SSH key, pinned host key and certificates; and the store-wide CA and client
// certificate under certs/. Folders are 0700, private keys 0600. A file lock serialises the
// operations that must not interleave across processes (making the CA, reserving a name).
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gofrs/flock"

	"github.com/machine-tools/machine/internal/certs"
	"github.com/machine-tools/machine/internal/fsutil"
)

// Org is the organisation written into the store's certificates.
const Org = "machine"

// States of a machine record.
const (
	StateCreating = "creating" // create is under way, or died half-way: `machine rm -f` cleans it up
	StateReady    = "ready"
	StateFailed   = "failed"
)

var (
	// ErrNotFound is a machine the store does not have (errors.Is matches a *NotFoundError).
	ErrNotFound = errors.New("no such machine")
	// ErrExists is a name already taken (errors.Is matches an *ExistsError).
	ErrExists = errors.New("machine already exists")
	// ErrInvalidName is a name a machine cannot have (errors.Is matches an *InvalidNameError).
	ErrInvalidName = errors.New("invalid machine name")
)

// NotFoundError is a machine the store does not have, in docker-machine's words (scripts grep
// for them), then the fix.
type NotFoundError struct{ Name string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf(`Docker machine %q does not exist. Use "machine ls" to list machines. Use "machine create" to add a new one.`, e.Name)
}

// Is makes errors.Is(err, ErrNotFound) hold.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// ExistsError is a name already taken, in docker-machine's words, then the fix.
type ExistsError struct{ Name string }

func (e *ExistsError) Error() string {
	return fmt.Sprintf("Docker machine %q already exists: remove it first with `machine rm %s`, or pick another name", e.Name, e.Name)
}

// Is makes errors.Is(err, ErrExists) hold.
func (e *ExistsError) Is(target error) bool { return target == ErrExists }

// InvalidNameError is a name a machine cannot have, in docker-machine's words, then the fix.
type InvalidNameError struct{ Name, Why string }

func (e *InvalidNameError) Error() string {
	if e.Why != "" {
		return fmt.Sprintf("Invalid hostname specified: %q %s: e.g. web1 or web1.example", e.Name, e.Why)
	}
	return fmt.Sprintf("Invalid hostname specified. Allowed hostname chars are: 0-9a-zA-Z . - (%q: use letters, digits, dots and hyphens, starting with a letter or digit, at most 63, e.g. web1)", e.Name)
}

// Is makes errors.Is(err, ErrInvalidName) hold.
func (e *InvalidNameError) Is(target error) bool { return target == ErrInvalidName }

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9.-]{0,62}$`)

// ValidateName checks a machine name: a host name of letters, digits, dots and hyphens.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return &InvalidNameError{Name: name}
	}
	if strings.Contains(name, "..") || strings.HasSuffix(name, ".") { // the host name would lose a part
		return &InvalidNameError{Name: name, Why: "has an empty part between dots"}
	}
	return nil
}

// ValidateNewName checks the name of a machine to be made: ValidateName, and a host name whose
// parts neither start nor end with a hyphen (the host would be named otherwise: "web-" became
// "web"). Machines made before this rule keep their names.
func ValidateNewName(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	for _, part := range strings.Split(name, ".") {
		if strings.HasPrefix(part, "-") || strings.HasSuffix(part, "-") {
			return &InvalidNameError{Name: name, Why: "has a part that starts or ends with a hyphen"}
		}
	}
	return nil
}

// EngineOptions configure dockerd on a host (docker-machine's --engine-* flags).
type EngineOptions struct {
	InstallURL         string   `json:"InstallURL,omitempty"`
	Opts               []string `json:"Opts,omitempty"`   // extra dockerd flags, "key=value" or "flag"
	Labels             []string `json:"Labels,omitempty"` // key=value
	InsecureRegistries []string `json:"InsecureRegistries,omitempty"`
	RegistryMirrors    []string `json:"RegistryMirrors,omitempty"`
	StorageDriver      string   `json:"StorageDriver,omitempty"`
	Env                []string `json:"Env,omitempty"` // KEY=value for dockerd's environment
	Port               int      `json:"Port"`          // TLS port, 2376 by default
	// VersionMin refuses a host whose engine is older (e.g. "24.0").
	VersionMin string `json:"VersionMin,omitempty"`
	// RegistryCAs are CA certificates (PEM) of registries, by HOST:PORT, installed as
	// /etc/docker/certs.d/HOST:PORT/ca.crt.
	RegistryCAs map[string]string `json:"RegistryCAs,omitempty"`
}

// SSH is how the machine is reached over SSH.
type SSH struct {
	Host     string `json:"Host"`
	Port     int    `json:"Port"`
	User     string `json:"User"`
	KeyPath  string `json:"KeyPath,omitempty"` // absent: the ssh-agent
	UseAgent bool   `json:"UseAgent,omitempty"`
	// InsecureHostKey turns host key checks off (only by the user's explicit flag at create).
	InsecureHostKey bool `json:"InsecureHostKey,omitempty"`
	// Jumps are the jump hosts SSH goes through, in order (ProxyJump), as resolved at create;
	// each one's host key is pinned in the machine's known_hosts beside the host's.
	Jumps []Hop `json:"Jumps,omitempty"`
	// Alias and ConfigFile: the ssh_config Host alias and file the settings were resolved from.
	Alias      string `json:"Alias,omitempty"`
	ConfigFile string `json:"ConfigFile,omitempty"`
	// ConnectTimeout and ServerAliveInterval, in seconds (0: machine's defaults).
	ConnectTimeout      int `json:"ConnectTimeout,omitempty"`
	ServerAliveInterval int `json:"ServerAliveInterval,omitempty"`
}

// Hop is one jump host.
type Hop struct {
	Alias string `json:"Alias,omitempty"` // its name in the ssh_config file
	Host  string `json:"Host"`
	Port  int    `json:"Port"`
	User  string `json:"User"`
	// KeyPath is its own key (a copy in the machine's folder); empty: the machine's key.
	KeyPath string `json:"KeyPath,omitempty"`
}

// Machine is one machine's record, kept as config.json in its folder.
type Machine struct {
	Name       string          `json:"Name"`
	DriverName string          `json:"DriverName"`
	Driver     json.RawMessage `json:"Driver,omitempty"`
	SSH        SSH             `json:"SSH"`
	// Address is the engine's address, when it is not the SSH address (a VirtualBox VM is
	// reached over SSH through a port forward on 127.0.0.1, its engine on the host-only NIC).
	Address   string        `json:"Address,omitempty"`
	Engine    EngineOptions `json:"Engine"`
	TLSSANs   []string      `json:"TLSSANs,omitempty"`
	CreatedAt time.Time     `json:"CreatedAt"`
	State     string        `json:"State"`
	LastError string        `json:"LastError,omitempty"`
	// ImportedFrom names the docker-machine folder the machine was imported from.
	ImportedFrom string `json:"ImportedFrom,omitempty"`
	// Siblings are the host's other addresses on the interface it is reached at (a dual-stack
	// host's other family), learned at create: the certificate names them too.
	Siblings []string `json:"Siblings,omitempty"`
	// CertHosts are the addresses the server certificate was issued for.
	CertHosts []string `json:"CertHosts,omitempty"`
	// ConfigVersion and HostOptions repeat what docker-machine 0.16 kept in its config.json, for
	// the programs that read that file (GitLab Runner): written on every save from the fields
	// above, never read back.
	ConfigVersion int            `json:"ConfigVersion,omitempty"`
	HostOptions   map[string]any `json:"HostOptions,omitempty"`

	dir string
}

// IP is the machine's address: its engine, its certificate, `machine ip`.
func (m *Machine) IP() string {
	if m.Address != "" {
		return m.Address
	}
	return m.SSH.Host
}

// Dir is the machine's folder.
func (m *Machine) Dir() string { return m.dir }

// Paths in the machine's folder.
func (m *Machine) ConfigPath() string     { return filepath.Join(m.dir, "config.json") }
func (m *Machine) KnownHostsPath() string { return filepath.Join(m.dir, "known_hosts") }
func (m *Machine) SSHKeyPath() string     { return filepath.Join(m.dir, "id_ed25519") }
func (m *Machine) CAPath() string         { return filepath.Join(m.dir, "ca.pem") }
func (m *Machine) CertPath() string       { return filepath.Join(m.dir, "cert.pem") }
func (m *Machine) KeyPath() string        { return filepath.Join(m.dir, "key.pem") }
func (m *Machine) ServerCertPath() string { return filepath.Join(m.dir, "server.pem") }
func (m *Machine) ServerKeyPath() string  { return filepath.Join(m.dir, "server-key.pem") }

// EnginePort is the TLS port of the machine's dockerd.
func (m *Machine) EnginePort() int {
	if m.Engine.Port == 0 {
		return 2376
	}
	return m.Engine.Port
}

// Store is a folder of machines.
type Store struct {
	Root string
}

// Open opens (and makes, 0700) the store at root.
func Open(root string) (*Store, error) {
	if root == "" {
		return nil, errors.New("no storage path: set --storage-path or MACHINE_STORAGE_PATH")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{abs, filepath.Join(abs, "machines"), filepath.Join(abs, "certs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("making the store at %s: %w", abs, err)
		}
	}
	return &Store{Root: abs}, nil
}

// DefaultRoot is $MACHINE_STORAGE_PATH, else ~/.machine.
func DefaultRoot() string {
	if p := os.Getenv("MACHINE_STORAGE_PATH"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".machine")
}

// CertsDir holds the store's CA and client certificate.
func (s *Store) CertsDir() string { return filepath.Join(s.Root, "certs") }

func (s *Store) machineDir(name string) string { return filepath.Join(s.Root, "machines", name) }

// Lock takes the store-wide lock, waiting until ctx ends.
func (s *Store) Lock(ctx context.Context) (func(), error) {
	fl := flock.New(filepath.Join(s.Root, ".lock"))
	ok, err := fl.TryLockContext(ctx, 50*time.Millisecond)
	if err != nil {
		return nil, fmt.Errorf("locking the store %s: %w", s.Root, err)
	}
	if !ok {
		return nil, fmt.Errorf("locking the store %s: another machine command holds it", s.Root)
	}
	return func() { _ = fl.Unlock() }, nil
}

// createLock is the file a create holds locked while it runs, in the machine's folder: the
// kernel lets go of it when the process ends, however it ends.
const createLock = ".create.lock"

// ReserveHeld is Reserve with the create marked under way from the moment its folder exists
// (HoldCreate before the first record is written): no listing ever sees it as a dead create.
func (s *Store) ReserveHeld(m *Machine) (release func(), err error) { return s.reserve(m, true) }

// HoldCreate marks the machine's create as under way for as long as this process runs it: the
// returned func lets go. CreateUnderWay tells another process.
func (s *Store) HoldCreate(name string) (func(), error) {
	fl := flock.New(filepath.Join(s.machineDir(name), createLock))
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("marking the create of %q as under way: %w", name, err)
	}
	if !ok {
		return nil, fmt.Errorf("machine %q is being created by another process", name)
	}
	_ = os.WriteFile(filepath.Join(s.machineDir(name), createLock), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	return func() {
		_ = os.Remove(filepath.Join(s.machineDir(name), createLock))
		_ = fl.Unlock()
	}, nil
}

// CreateUnderWay says whether a live process is creating the machine (and which, when known).
func (s *Store) CreateUnderWay(name string) (pid int, underWay bool) {
	p := filepath.Join(s.machineDir(name), createLock)
	if _, err := os.Stat(p); err != nil {
		return 0, false
	}
	fl := flock.New(p)
	ok, err := fl.TryLock()
	if err != nil || ok {
		if ok {
			_ = fl.Unlock()
		}
		return 0, false
	}
	b, _ := os.ReadFile(p)
	pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, true
}

// LockCluster keeps a second `swarm up` or `down` of the same cluster from running beside the
// first: it fails at once, naming the process that holds the cluster. The returned func lets go.
func (s *Store) LockCluster(name string) (func(), error) {
	dir := filepath.Join(s.Root, "clusters")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(name)) // any name, one file name
	p := filepath.Join(dir, hex.EncodeToString(sum[:8])+".lock")
	fl := flock.New(p)
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("locking the cluster %s: %w", name, err)
	}
	if !ok {
		b, _ := os.ReadFile(p)
		who := "another machine command"
		if pid := strings.TrimSpace(string(b)); pid != "" {
			who += " (process " + pid + ")"
		}
		return nil, fmt.Errorf("%s is changing the cluster %s now: wait for it to finish, then run this again", who, name)
	}
	_ = os.WriteFile(p, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	return func() { _ = fl.Unlock() }, nil
}

// Authority returns the store's CA and client certificate, making them on first use.
func (s *Store) Authority(ctx context.Context) (*certs.Authority, error) {
	unlock, err := s.Lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return certs.LoadOrCreateAuthority(s.CertsDir(), Org, time.Now())
}

// Reserve makes the folder of a new machine and saves its first record. It fails with ErrExists
// when the name is taken, also when another process reserves it at the same time.
func (s *Store) Reserve(m *Machine) error {
	_, err := s.reserve(m, false)
	return err
}

func (s *Store) reserve(m *Machine, hold bool) (release func(), err error) {
	if err := ValidateNewName(m.Name); err != nil {
		return nil, err
	}
	dir := s.machineDir(m.Name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, &ExistsError{Name: m.Name}
		}
		return nil, err
	}
	full := func(err error) error {
		if errors.Is(err, syscall.ENOSPC) {
			return fmt.Errorf("the store %s is full (%v): free some space there, or point MACHINE_STORAGE_PATH (-s) at another folder", s.Root, err)
		}
		return err
	}
	release = func() {}
	if hold {
		if release, err = s.HoldCreate(m.Name); err != nil {
			_ = os.RemoveAll(dir)
			return nil, full(err)
		}
	}
	m.dir = dir
	if m.CreatedAt.IsZero() {
		m.CreatedAt = time.Now().UTC()
	}
	if m.State == "" {
		m.State = StateCreating
	}
	if err := s.Save(m); err != nil {
		release()
		_ = os.RemoveAll(dir) // no record without its folder, no folder without its record
		return nil, full(err)
	}
	return release, nil
}

// Save writes the machine's record atomically.
func (s *Store) Save(m *Machine) error {
	if m.dir == "" {
		m.dir = s.machineDir(m.Name)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(m.ConfigPath(), append(b, '\n'), 0o600)
}

// Load reads one machine.
func (s *Store) Load(name string) (*Machine, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	dir := s.machineDir(name)
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(dir); serr == nil {
			// A folder without a record: a create that died before its first save.
			return &Machine{Name: name, State: StateCreating, dir: dir}, nil
		}
		return nil, &NotFoundError{Name: name}
	}
	if err != nil {
		return nil, err
	}
	var m Machine
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("machine %q: its config %s is damaged: %w", name, filepath.Join(dir, "config.json"), err)
	}
	m.dir = dir
	m.Name = name
	return &m, nil
}

// List returns every machine's name, sorted.
func (s *Store) List() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.Root, "machines"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() && ValidateName(e.Name()) == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// Remove deletes the machine's folder.
func (s *Store) Remove(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	return os.RemoveAll(s.machineDir(name))
}

// Exists reports whether a machine folder exists.
func (s *Store) Exists(name string) bool {
	_, err := os.Stat(s.machineDir(name))
	return err == nil
}
