package imagecache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

// TestDownloadOnceWithChecksum: a URL image is fetched once (from a server on loopback), checked
// against its sha256, and a wrong sum or a 404 is a clear error.
func TestDownloadOnceWithChecksum(t *testing.T) {
	body := []byte(strings.Repeat("qcow2 image bytes ", 1000))
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/images/debian.qcow2" {
			http.NotFound(w, r)
			return
		}
		hits.Add(1)
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	sum := sha256.Sum256(body)
	good := "sha256:" + hex.EncodeToString(sum[:])
	dir := t.TempDir()
	p, err := Download(context.Background(), srv.URL+"/images/debian.qcow2", dir, good, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != string(body) {
		t.Fatal("downloaded content differs")
	}
	if _, err := Download(context.Background(), srv.URL+"/images/debian.qcow2", dir, good, nil, nil); err != nil || hits.Load() != 1 {
		t.Fatalf("second fetch: %v, server hit %d times: want the cache", err, hits.Load())
	}
	bad := "sha256:" + strings.Repeat("0", 64)
	if _, err := Download(context.Background(), srv.URL+"/images/debian.qcow2", t.TempDir(), bad, nil, nil); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("wrong checksum: %v", err)
	}
	if _, err := Download(context.Background(), srv.URL+"/images/missing.qcow2", t.TempDir(), "", nil, nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing image: %v", err)
	}
	if err := Verify(p, "md5:abc"); err == nil {
		t.Error("a malformed checksum must be refused")
	}
}
