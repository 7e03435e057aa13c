package certs

import (
	"crypto/elliptic"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestServerCertificate(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("test", now)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(ca, "test", "web1", []string{"10.0.0.5", "web1.example.com", "10.0.0.5", "fd00::5"}, now)
	if err != nil {
		t.Fatal(err)
	}
	c := srv.Cert
	if c.PublicKeyAlgorithm != x509.ECDSA || srv.Key.Curve != elliptic.P256() {
		t.Fatalf("want ECDSA P-256, got %v", c.PublicKeyAlgorithm)
	}
	for _, h := range []string{"10.0.0.5", "fd00::5", "web1", "web1.example.com", "localhost", "127.0.0.1"} {
		if err := c.VerifyHostname(h); err != nil {
			t.Errorf("certificate does not cover %s: %v", h, err)
		}
	}
	if c.VerifyHostname("10.0.0.6") == nil {
		t.Error("certificate covers an address it was not issued for")
	}
	if len(c.IPAddresses) != 3 { // 10.0.0.5 once, fd00::5, 127.0.0.1
		t.Errorf("IP SANs %v: want no duplicates", c.IPAddresses)
	}
	if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("server ext key usage %v", c.ExtKeyUsage)
	}
	if c.IsCA {
		t.Error("server certificate must not be a CA")
	}
	if d := now.Sub(c.NotBefore); d < ClockSkew-time.Second {
		t.Errorf("NotBefore only %s before now: want %s for clock skew", d, ClockSkew)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool, DNSName: "web1", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatalf("server certificate does not chain to the CA: %v", err)
	}
	cl, err := NewClient(ca, "test", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("client certificate: %v", err)
	}
	if _, err := cl.Cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Fatal("client certificate must not be usable as a server certificate")
	}
	if !ca.Cert.IsCA || ca.Cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Fatal("CA lacks CertSign")
	}
}

func TestAuthorityFilesAndReload(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	a, err := LoadOrCreateAuthority(dir, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for path, mode := range map[string]os.FileMode{a.CAKeyPath(): 0o600, a.KeyPath(): 0o600, a.CAPath(): 0o644, a.CertPath(): 0o644} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s has mode %o, want %o", path, st.Mode().Perm(), mode)
		}
	}
	b, err := LoadOrCreateAuthority(dir, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !a.CA.Cert.Equal(b.CA.Cert) || !a.CA.Key.Equal(b.CA.Key) {
		t.Fatal("a second load made a new CA")
	}
}

func BenchmarkServerCertificateECDSA(b *testing.B) {
	ca, _ := NewCA("bench", time.Now())
	for b.Loop() {
		if _, err := NewServer(ca, "bench", "web1", []string{"10.0.0.5"}, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}
