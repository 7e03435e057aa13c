// Package cidata makes cloud-init NoCloud seeds: the user-data that lets the machine's key in, and
// the "cidata" ISO that carries it, for the VM drivers.
package cidata

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kdomanski/iso9660"
)

// UserData is the cloud-init configuration of a machine: its user, key and host name.
func UserData(hostname, user, authorizedKey string) string {
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
`, hostname, user, strings.TrimSpace(authorizedKey))
}

// MetaData is the NoCloud meta-data.
func MetaData(instanceID, hostname string) string {
	return fmt.Sprintf("instance-id: %s\nlocal-hostname: %s\n", instanceID, hostname)
}

// Seed is the NoCloud seed of a machine: the "cidata" ISO with its host name, its user (with
// passwordless sudo) and its key.
func Seed(hostname, user, authorizedKey, instanceID string) ([]byte, error) {
	return ISO(UserData(hostname, user, authorizedKey), MetaData(instanceID, hostname))
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
