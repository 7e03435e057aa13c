package machine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/drivers/generic"
	"github.com/machine-tools/machine/drivers/plugin"
	"github.com/machine-tools/machine/internal/fsutil"
	"github.com/machine-tools/machine/internal/sshclient"
	"github.com/machine-tools/machine/internal/store"
)

// dmConfig is the part of docker-machine's config.json that an import needs.
type dmConfig struct {
	Name       string
	DriverName string
	Driver     struct {
		IPAddress  string
		SSHUser    string
		SSHPort    int
		SSHKeyPath string
		EnginePort int
	}
	HostOptions struct {
		EngineOptions struct {
			ArbitraryFlags   []string
			Env              []string
			InsecureRegistry []string
			Labels           []string
			StorageDriver    string
			RegistryMirror   []string
		}
	}
}

// importSSHPort is the port sshd answers on at the machine's IPAddress. docker-machine's
// VirtualBox driver records the NAT port forward on 127.0.0.1 as SSHPort; at the host-only
// address, sshd is on 22.
func importSSHPort(c dmConfig) int {
	if c.DriverName == "virtualbox" || c.Driver.SSHPort == 0 {
		return 22
	}
	return c.Driver.SSHPort
}

// ImportResult is one imported (or skipped) machine.
type ImportResult = Result

// ImportDockerMachine takes over the machines of a docker-machine store as generic machines
// reached over SSH, with their existing certificates; the machines of a driver plug-in that is on
// PATH here stay that plug-in's (stop, start and rm go through it). Nothing in the old store is
// written.
func (a *API) ImportDockerMachine(ctx context.Context, from string) ([]ImportResult, error) {
	ents, err := os.ReadDir(filepath.Join(from, "machines"))
	if err != nil {
		return nil, fmt.Errorf("no docker-machine store at %s (%v): pass --from with its path (default ~/.docker/machine)", from, err)
	}
	var out []ImportResult
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		r := ImportResult{Name: e.Name()}
		r.Note, r.Err = a.importOne(ctx, filepath.Join(from, "machines", e.Name()))
		out = append(out, r)
	}
	return out, nil
}

func (a *API) importOne(ctx context.Context, dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return "", err
	}
	var c dmConfig
	var raw struct{ Driver map[string]any }
	if err := json.Unmarshal(b, &c); err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Join(dir, "config.json"), err)
	}
	_ = json.Unmarshal(b, &raw)
	if c.Name == "" {
		c.Name = filepath.Base(dir)
	}
	if c.Driver.IPAddress == "" {
		return "", errors.New("its config has no IP address (was it ever started?)")
	}
	if a.Store.Exists(c.Name) {
		return "", fmt.Errorf("a machine named %q exists already: skipped", c.Name)
	}
	key := filepath.Join(dir, "id_rsa")
	if _, err := os.Stat(key); err != nil {
		key = c.Driver.SSHKeyPath
	}
	files := map[string][]byte{}
	for _, f := range []string{"ca.pem", "cert.pem", "key.pem", "server.pem", "server-key.pem"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return "", fmt.Errorf("its %s is missing: %w", f, err)
		}
		files[f] = data
	}
	keyData, err := os.ReadFile(key)
	if err != nil {
		return "", fmt.Errorf("its SSH key %s: %w", key, err)
	}
	d := &generic.Driver{IPAddress: c.Driver.IPAddress, SSHUser: c.Driver.SSHUser, SSHPort: importSSHPort(c)}
	if d.SSHUser == "" {
		d.SSHUser = "root"
	}
	port := c.Driver.EnginePort
	if port == 0 {
		port = 2376
	}
	// A plug-in's machine stays one when its plug-in is on PATH here: its configuration (an
	// instance ID, a region) goes along, its store path and key moved to this store.
	var drv drivers.Driver = d
	driverName, keyName := generic.Name, ""
	if _, err := a.Drivers.Get(c.DriverName); err != nil && raw.Driver != nil {
		if _, ferr := plugin.Find(c.DriverName); ferr == nil {
			keyName = "id_rsa"
			raw.Driver["StorePath"] = a.owner()
			raw.Driver["SSHKeyPath"] = filepath.Join(a.owner(), "machines", c.Name, keyName)
			cfg, err := json.Marshal(raw.Driver)
			if err != nil {
				return "", err
			}
			drv, driverName = &plugin.Driver{Name: c.DriverName, Config: cfg}, c.DriverName
		}
	}
	eo := c.HostOptions.EngineOptions
	m := &store.Machine{Name: c.Name, DriverName: driverName, State: store.StateCreating,
		SSH:          store.SSH{Host: d.IPAddress, Port: d.SSHPort, User: d.SSHUser},
		Engine:       store.EngineOptions{Port: port, Labels: eo.Labels, InsecureRegistries: eo.InsecureRegistry, RegistryMirrors: eo.RegistryMirror, StorageDriver: eo.StorageDriver, Env: eo.Env, Opts: eo.ArbitraryFlags},
		ImportedFrom: dir + " (" + c.DriverName + " driver)"}
	if err := a.Store.Reserve(m); err != nil {
		return "", err
	}
	h := &Host{Machine: m, Driver: drv, api: a}
	fail := func(err error) (string, error) {
		_ = a.Store.Remove(c.Name)
		return "", err
	}
	for f, data := range files {
		mode := os.FileMode(0o644)
		if f == "key.pem" || f == "server-key.pem" {
			mode = 0o600
		}
		if err := fsutil.WriteFileAtomic(filepath.Join(m.Dir(), f), data, mode); err != nil {
			return fail(err)
		}
	}
	keyPath := h.SSHKeyPath()
	if keyName != "" { // where the plug-in's configuration says it is
		keyPath = filepath.Join(m.Dir(), keyName)
	}
	if err := fsutil.WriteFileAtomic(keyPath, keyData, 0o600); err != nil {
		return fail(err)
	}
	h.SSH.KeyPath = keyPath
	// docker-machine never pinned host keys: pin the one the host offers now.
	note := ""
	addr := net.JoinHostPort(d.IPAddress, strconv.Itoa(d.SSHPort))
	kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	hk, err := sshclient.FetchHostKey(kctx, addr)
	cancel()
	if err == nil {
		err = sshclient.PinHostKey(h.KnownHostsPath(), addr, hk)
	}
	if err != nil {
		note = fmt.Sprintf("imported; its SSH host key could not be read now (%v): pin it later with `machine trust-host-key %s`", err, c.Name)
	} else {
		note = "imported: host key pinned"
	}
	h.State = store.StateReady
	if err := h.Save(); err != nil {
		return fail(err)
	}
	return note, nil
}
