// Package dockerctx writes Docker CLI contexts for machines, in the docker CLI's own context
// store ($DOCKER_CONFIG/contexts, else ~/.docker/contexts), so that `docker --context NAME`
// reaches a machine over TLS without any environment variables.
package dockerctx

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/machine-tools/machine/internal/fsutil"
)

// Marker is the description of contexts this tool made; it only removes those.
const Marker = "made by machine"

// Dir is the docker CLI's configuration folder.
func Dir() (string, error) {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".docker"), nil
}

func id(name string) string {
	h := sha256.Sum256([]byte(name))
	return hex.EncodeToString(h[:])
}

type meta struct {
	Name      string                    `json:"Name"`
	Metadata  map[string]string         `json:"Metadata"`
	Endpoints map[string]endpointRecord `json:"Endpoints"`
}

type endpointRecord struct {
	Host          string `json:"Host"`
	SkipTLSVerify bool   `json:"SkipTLSVerify"`
}

// Write creates or updates the context name for host with the TLS material (PEM).
func Write(name, host string, ca, cert, key []byte) error {
	dir, err := Dir()
	if err != nil {
		return err
	}
	m := meta{Name: name, Metadata: map[string]string{"Description": Marker},
		Endpoints: map[string]endpointRecord{"docker": {Host: host}}}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	metaDir := filepath.Join(dir, "contexts", "meta", id(name))
	tlsDir := filepath.Join(dir, "contexts", "tls", id(name), "docker")
	for _, d := range []string{metaDir, tlsDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := existingIsOurs(metaDir, name); err != nil {
		return err
	}
	for f, data := range map[string][]byte{"ca.pem": ca, "cert.pem": cert, "key.pem": key} {
		mode := os.FileMode(0o644)
		if f == "key.pem" {
			mode = 0o600
		}
		if err := fsutil.WriteFileAtomic(filepath.Join(tlsDir, f), data, mode); err != nil {
			return err
		}
	}
	return fsutil.WriteFileAtomic(filepath.Join(metaDir, "meta.json"), b, 0o644)
}

func existingIsOurs(metaDir, name string) error {
	b, err := os.ReadFile(filepath.Join(metaDir, "meta.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var m meta
	if json.Unmarshal(b, &m) == nil && m.Metadata["Description"] == Marker {
		return nil
	}
	return fmt.Errorf("a Docker context named %q exists and was not made by machine: remove it (docker context rm %s) or leave it be", name, name)
}

// Remove deletes the context name if this tool made it; it reports whether it did.
func Remove(name string) (bool, error) {
	dir, err := Dir()
	if err != nil {
		return false, err
	}
	metaDir := filepath.Join(dir, "contexts", "meta", id(name))
	if _, err := os.Stat(filepath.Join(metaDir, "meta.json")); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err := existingIsOurs(metaDir, name); err != nil {
		return false, nil // not ours: leave it
	}
	if err := os.RemoveAll(filepath.Join(dir, "contexts", "tls", id(name))); err != nil {
		return false, err
	}
	return true, os.RemoveAll(metaDir)
}
