// Package certs issues the TLS material of a store: one CA and one client certificate per store,
// and a server certificate per machine. Keys are ECDSA P-256; certificates start a few minutes in
// the past so that a host whose clock runs behind still accepts them. The CA key is only ever read
// on the client machine: nothing here sends it anywhere.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/machine-tools/machine/internal/fsutil"
)

// ClockSkew is how far before "now" every certificate becomes valid.
const ClockSkew = 5 * time.Minute

// Validity of issued certificates.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	LeafValidity = 3 * 365 * 24 * time.Hour
)

// Pair is a certificate with its private key.
type Pair struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// CertPEM returns the certificate in PEM form.
func (p *Pair) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Cert.Raw})
}

// KeyPEM returns the private key in PEM form.
func (p *Pair) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(p.Key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// WriteFiles writes the certificate (0644) and the key (0600) atomically.
func (p *Pair) WriteFiles(certPath, keyPath string) error {
	k, err := p.KeyPEM()
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(keyPath, k, 0o600); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(certPath, p.CertPEM(), 0o644)
}

// Load reads a pair from PEM files.
func Load(certPath, keyPath string) (*Pair, error) {
	cb, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	cblock, _ := pem.Decode(cb)
	if cblock == nil {
		return nil, fmt.Errorf("%s: no PEM certificate", certPath)
	}
	cert, err := x509.ParseCertificate(cblock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	kblock, _ := pem.Decode(kb)
	if kblock == nil {
		return nil, fmt.Errorf("%s: no PEM key", keyPath)
	}
	key, err := parseKey(kblock)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	return &Pair{Cert: cert, Key: key}, nil
}

func parseKey(b *pem.Block) (*ecdsa.PrivateKey, error) {
	if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an ECDSA key")
	}
	return ek, nil
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func newTemplate(cn, org string, now time.Time, validity time.Duration) (*x509.Certificate, error) {
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{org}},
		NotBefore:    now.Add(-ClockSkew),
		NotAfter:     now.Add(validity),
	}, nil
}

func sign(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, key *ecdsa.PrivateKey) (*Pair, error) {
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Pair{Cert: c, Key: key}, nil
}

// NewCA makes a self-signed CA.
func NewCA(org string, now time.Time) (*Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	t, err := newTemplate(org+" CA", org, now, CAValidity)
	if err != nil {
		return nil, err
	}
	t.IsCA = true
	t.BasicConstraintsValid = true
	t.MaxPathLenZero = true
	t.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	return sign(t, nil, nil, key)
}

// NewClient issues a client certificate signed by ca.
func NewClient(ca *Pair, org string, now time.Time) (*Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	t, err := newTemplate("machine client", org, now, LeafValidity)
	if err != nil {
		return nil, err
	}
	t.KeyUsage = x509.KeyUsageDigitalSignature
	t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return sign(t, ca.Cert, ca.Key, key)
}

// NewServer issues a server certificate for a machine. hosts are IP addresses or DNS names; every
// one of them becomes a SAN, as do localhost and 127.0.0.1.
func NewServer(ca *Pair, org, name string, hosts []string, now time.Time) (*Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	t, err := newTemplate(name, org, now, LeafValidity)
	if err != nil {
		return nil, err
	}
	t.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	t.IPAddresses, t.DNSNames = SANs(append([]string{name, "localhost", "127.0.0.1"}, hosts...))
	return sign(t, ca.Cert, ca.Key, key)
}

// SANs splits host names and addresses into the two SAN lists, without duplicates, sorted.
func SANs(hosts []string) ([]net.IP, []string) {
	seenIP, seenDNS := map[string]bool{}, map[string]bool{}
	var ips []net.IP
	var names []string
	for _, h := range hosts {
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if !seenIP[ip.String()] {
				seenIP[ip.String()] = true
				ips = append(ips, ip)
			}
			continue
		}
		if !seenDNS[h] {
			seenDNS[h] = true
			names = append(names, h)
		}
	}
	sort.Slice(ips, func(i, j int) bool { return ips[i].String() < ips[j].String() })
	sort.Strings(names)
	return ips, names
}

// Covers reports whether the certificate names every one of hosts.
func Covers(c *x509.Certificate, hosts ...string) bool {
	for _, h := range hosts {
		if c.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// Authority is the store's CA and client certificate, kept in one folder:
// ca.pem, ca-key.pem, cert.pem, key.pem (the names docker's CLI expects for the client side).
type Authority struct {
	Dir    string
	CA     *Pair
	Client *Pair
}

// Paths of the authority's files.
func (a *Authority) CAPath() string    { return filepath.Join(a.Dir, "ca.pem") }
func (a *Authority) CAKeyPath() string { return filepath.Join(a.Dir, "ca-key.pem") }
func (a *Authority) CertPath() string  { return filepath.Join(a.Dir, "cert.pem") }
func (a *Authority) KeyPath() string   { return filepath.Join(a.Dir, "key.pem") }

// LoadOrCreateAuthority loads the CA and client certificate from dir, making them when absent.
// The caller holds the store lock so that parallel runs make one CA.
func LoadOrCreateAuthority(dir, org string, now time.Time) (*Authority, error) {
	a := &Authority{Dir: dir}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if _, err := os.Stat(a.CAPath()); errors.Is(err, os.ErrNotExist) {
		ca, err := NewCA(org, now)
		if err != nil {
			return nil, fmt.Errorf("making the CA: %w", err)
		}
		if err := ca.WriteFiles(a.CAPath(), a.CAKeyPath()); err != nil {
			return nil, err
		}
	}
	ca, err := Load(a.CAPath(), a.CAKeyPath())
	if err != nil {
		return nil, fmt.Errorf("reading the CA: %w", err)
	}
	a.CA = ca
	if _, err := os.Stat(a.CertPath()); errors.Is(err, os.ErrNotExist) {
		cl, err := NewClient(ca, org, now)
		if err != nil {
			return nil, fmt.Errorf("making the client certificate: %w", err)
		}
		if err := cl.WriteFiles(a.CertPath(), a.KeyPath()); err != nil {
			return nil, err
		}
	}
	cl, err := Load(a.CertPath(), a.KeyPath())
	if err != nil {
		return nil, fmt.Errorf("reading the client certificate: %w", err)
	}
	a.Client = cl
	return a, nil
}
