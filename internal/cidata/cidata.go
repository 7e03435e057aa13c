// Package cidata makes cloud-init NoCloud seeds: the user-data that lets the machine's key in, and
// the "cidata" ISO that carries it, for the VM drivers.
package cidata

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kdomanski/iso9660"
	"golang.org/x/crypto/ssh"
)

// HostKey is an SSH host key pair made for a machine before it boots: cloud-init installs it
// (ssh_keys), and machine pins the public half before the first connection.
type HostKey struct {
	Private string // OpenSSH PEM
	Public  string // authorized_keys format
}

// NewHostKey makes an ed25519 host key pair.
func NewHostKey(comment string) (*HostKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return &HostKey{Private: string(pem.EncodeToMemory(block)), Public: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))}, nil
}

// UserData is the cloud-init configuration of a machine: its user, key and host name, and its
// SSH host key when one was made beforehand (the only one it has then).
func UserData(hostname, user, authorizedKey string, hk *HostKey) string {
	keys := ""
	if hk != nil {
		keys = "ssh_deletekeys: true\nssh_genkeytypes: []\nssh_keys:\n  ed25519_private: |\n"
		for _, l := range strings.Split(strings.TrimSpace(hk.Private), "\n") {
			keys += "    " + l + "\n"
		}
		keys += "  ed25519_public: " + hk.Public + "\n"
	}
	return fmt.Sprintf(`#cloud-config
hostname: %s
manage_etc_hosts: true
locale: false
users:
  - name: %s
    shell: /bin/bash
    sudo: ALL=(ALL) NOPASSWD:ALL
    lock_passwd: true
    ssh_authorized_keys:
      - %s
ssh_pwauth: false
%s`, hostname, user, strings.TrimSpace(authorizedKey), keys)
}

// MetaData is the NoCloud meta-data.
func MetaData(instanceID, hostname string) string {
	return fmt.Sprintf("instance-id: %s\nlocal-hostname: %s\n", instanceID, hostname)
}

// Seed is the NoCloud seed of a machine: the "cidata" ISO with its host name, its user (with
// passwordless sudo), its key, and its host key (hk, when not nil).
func Seed(hostname, user, authorizedKey, instanceID string, hk *HostKey) ([]byte, error) {
	return ISO(UserData(hostname, user, authorizedKey, hk), MetaData(instanceID, hostname))
}

// ISO makes the NoCloud "cidata" ISO in memory.
func ISO(userData, metaData string) ([]byte, error) {
	w, err := iso9660.NewWriter()
	if err != nil {
		return nil, err
	}
	defer w.Cleanup()
	if err := w.AddFile(strings.NewReader(userData), "user-data"); err != nil {
		return nil, err
	}
	if err := w.AddFile(strings.NewReader(metaData), "meta-data"); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp("", "cidata-*.iso")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := w.WriteTo(f, "cidata"); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	_, err = io.Copy(&buf, f)
	return buf.Bytes(), err
}
