//go:build e2e

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/machine-tools/machine/swarm"
)

// TestSwarmCertExpired: a swarm whose node certificates are valid for the shortest time swarm
// allows (cert-expiry: 1h, from the file); a worker whose certificate expired while it was off.
// An hour of waiting is not a test: the swarm's root CA is rotated to one this test holds the key
// of, and the stopped worker is given what an hour off would have left it: its own certificate
// (its subject, key and names), issued by the swarm's CA, whose validity ended an hour ago. Its
// engine then says what a real expiry makes it say ("certificate has expired", its swarm state
// in error, the node Down). `status` shows it expired, `plan` names it, `up` takes it out of its
// swarm and joins it again: one entry for it, Ready, labels kept, a certificate valid again.
func TestSwarmCertExpired(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := uniq("e2e-cx")
	m, w := p+"-m", p+"-w"
	t.Cleanup(func() { e.run("rm", "-f", "-y", m, w) })
	file := filepath.Join(t.TempDir(), "cluster.yml")
	content := fmt.Sprintf("name: %s\ndriver: container\ndriver-options: {network: %s-net}\nswarm: {routing-mesh: false, cert-expiry: 1h}\nnodes:\n  - {name: %s, role: manager}\n  - {name: %s, labels: {zone: b}, availability: pause}\n", p, p, m, w)
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.run("swarm", "up", "-f", file)
	if r.code != 0 || !strings.Contains(r.stdout+r.stderr, "node certificates valid for 1h: the root CA rotated for it") {
		t.Fatalf("swarm up: %s", r)
	}
	if got := strings.TrimSpace(e.docker(m, "info", "-f", "{{.Swarm.Cluster.Spec.CAConfig.NodeCertExpiry}}").stdout); got != "1h0m0s" {
		t.Errorf("the swarm's node certificate validity: %q, want 1h0m0s", got)
	}
	cert := parseCert(t, e.must("ssh", w, "cat /var/lib/docker/swarm/certificates/swarm-node.crt"))
	if left := time.Until(cert.NotAfter); left > 65*time.Minute {
		t.Errorf("%s's certificate is valid for %s more, want at most 1h", w, left.Round(time.Second))
	}

	// The swarm's root CA becomes one whose key this test holds.
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "swarm-ca"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	keyDER, _ := x509.MarshalECPrivateKey(caKey)
	caCert, caKeyFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	os.WriteFile(caCert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	os.WriteFile(caKeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	if r := e.docker(m, "swarm", "ca", "--rotate", "--ca-cert", caCert, "--ca-key", caKeyFile); r.code != 0 {
		t.Fatalf("rotating the root CA to the test's: %s", r)
	}
	var leaf *x509.Certificate
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		leaf = parseCert(t, e.must("ssh", w, "cat /var/lib/docker/swarm/certificates/swarm-node.crt"))
		if leaf.CheckSignatureFrom(ca) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's certificate is still issued by %q", w, leaf.Issuer)
		}
	}

	// The worker off; its certificate as an hour off would leave it: the same, expired.
	e.must("ssh", w, "systemctl stop docker.socket docker")
	leaf.SerialNumber = big.NewInt(time.Now().UnixNano())
	leaf.NotBefore, leaf.NotAfter = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, leaf.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	expired := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	if r := e.runIn([]byte(expired), "ssh", w, "cat > /var/lib/docker/swarm/certificates/swarm-node.crt && systemctl start docker"); r.code != 0 {
		t.Fatalf("giving %s its expired certificate: %s", w, r)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		got := e.docker(w, "info", "-f", "{{.Swarm.LocalNodeState}} {{.Swarm.Error}}").stdout
		if strings.HasPrefix(got, "error") && strings.Contains(got, "certificate has expired") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's engine with the expired certificate says %q", w, got)
		}
	}

	var rep swarm.Report
	if err := json.Unmarshal([]byte(e.must("swarm", "status", "--format", "json", m)), &rep); err != nil {
		t.Fatal(err)
	}
	for _, row := range rep.Nodes {
		exp, err := time.Parse(time.RFC3339, row.CertExpiry)
		if row.Hostname == w && (err != nil || exp.After(time.Now())) {
			t.Errorf("status: %s's certificate expiry %q, want the past", w, row.CertExpiry)
		}
	}
	if out := e.must("swarm", "status", m); !strings.Contains(out, "expired "+leaf.NotAfter.UTC().Format("2006-01-02 15:04")) {
		t.Errorf("status table without the expired certificate:\n%s", out)
	}
	t.Logf("node list before: %s", e.docker(m, "node", "ls"))
	r = e.run("swarm", "plan", "-f", file)
	if r.code != 2 || !strings.Contains(r.stdout, w+": its swarm certificate expired at") || !strings.Contains(r.stdout, w+": join as worker") || !strings.Contains(r.stdout, w+": remove its old node entry") {
		t.Fatalf("plan with %s's certificate expired: %s", w, r)
	}
	r = e.run("swarm", "up", "-f", file)
	if r.code != 0 || !strings.Contains(r.stdout+r.stderr, "it left its swarm, and joins again") {
		t.Fatalf("up with %s's certificate expired: %s", w, r)
	}
	t.Logf("up with %s's certificate expired: %s", w, r)
	expectNodes(t, e, m, map[string]string{m: "manager", w: "worker"})
	if got := strings.TrimSpace(e.docker(m, "node", "inspect", "-f", "{{.Status.State}} {{.Spec.Availability}} {{index .Spec.Labels \"zone\"}}", w).stdout); got != "ready pause b" {
		t.Errorf("%s after up: %q, want ready, paused, zone b", w, got)
	}
	if c := parseCert(t, e.must("ssh", w, "cat /var/lib/docker/swarm/certificates/swarm-node.crt")); !c.NotAfter.After(time.Now()) || c.CheckSignatureFrom(ca) != nil {
		t.Errorf("%s's certificate after up: valid until %s, issued by %q", w, c.NotAfter, c.Issuer)
	}
	if r := e.run("swarm", "plan", "-f", file); r.code != 0 {
		t.Errorf("plan after up: %s", r)
	}
}
