package swarm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/machine-tools/machine/internal/fsutil"
	"github.com/machine-tools/machine/machine"
)

// A node's swarm certificate is read over SSH (one session a node), which at a hundred nodes is
// most of what `swarm status`, `plan` and `up` would cost. What was read is kept in the machine's
// store folder with the issuing CA's key it was read under, and used again while that CA issues
// the swarm's certificates and the kept one is not in its last tenth of validity: a swarm renews
// a running node's certificate by itself, only to a later expiry, so the kept expiry is never
// later than the real one; a new root CA (rotate-ca, a validity change) reissues every node's,
// and its key differs. Near its end, or under another CA, it is read again.

// certKept is a node certificate's validity as the store keeps it.
type certKept struct {
	Issuer    string    `json:"issuer"` // sha256 of the issuing CA's public key, as the node list gives it
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
}

func certKeptPath(h *machine.Host) string { return filepath.Join(h.StorePath(), "swarm-cert.json") }

// issuerID is what a node list's TLSInfo.CertIssuerPublicKey is kept as.
func issuerID(key []byte) string {
	if len(key) == 0 {
		return ""
	}
	s := sha256.Sum256(key)
	return hex.EncodeToString(s[:])
}

// nodeCertValidity gives a machine's swarm certificate's validity: kept in the store, or read
// over SSH (then kept) when what is kept was read under another issuer or is in its last tenth at
// now. A node that is down is read (its host may answer: an engine whose certificate expired)
// within downReadLimit, what is kept under the same issuer given when that fails. issuer "" (not
// known): always read, never kept.
func nodeCertValidity(ctx context.Context, h *machine.Host, issuer string, down bool, now time.Time) (certKept, bool) {
	var kept certKept
	have := false
	if b, err := os.ReadFile(certKeptPath(h)); err == nil && json.Unmarshal(b, &kept) == nil && issuer != "" && kept.Issuer == issuer {
		have = true
		life := kept.NotAfter.Sub(kept.NotBefore)
		if !down && life > 0 && kept.NotAfter.Sub(now) >= life/10 {
			return kept, true
		}
	}
	rctx := ctx
	if down {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, downReadLimit)
		defer cancel()
	}
	c, err := readNodeCert(rctx, h)
	if err != nil {
		return kept, have
	}
	got := certKept{Issuer: issuer, NotBefore: c.NotBefore, NotAfter: c.NotAfter}
	if issuer != "" {
		if b, err := json.Marshal(got); err == nil {
			_ = fsutil.WriteFileAtomic(certKeptPath(h), b, 0o600)
		}
	}
	return got, true
}

// downReadLimit bounds reading the certificate of a node that is down: its host is often off,
// and a listing should not wait for its SSH to time out.
const downReadLimit = 3 * time.Second

// soon says whether a validity is in its last tenth at now. Swarm renews a running node's
// certificate between half and four fifths of its life: one that gets this close was not renewed.
func (k certKept) soon(now time.Time) bool {
	life := k.NotAfter.Sub(k.NotBefore)
	return life > 0 && k.NotAfter.Sub(now) < life/10
}
