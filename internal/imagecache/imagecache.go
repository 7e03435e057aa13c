// Package imagecache fetches the disk images of the VM drivers: a local path as it is, a URL
// downloaded once into the user's cache with progress, and a sha256 checked when one is given.
package imagecache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Progress, when set, wraps a download's body to show its progress (size may be -1).
type Progress func(name string, size int64, r io.Reader) io.Reader

// IsURL says whether an image is given by an http(s) URL.
func IsURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https")
}

// Fetch returns a local path for image (a path, or a URL downloaded once into the user's cache)
// and checks the checksum ("sha256:HEX") when one is given.
func Fetch(ctx context.Context, image, checksum string, progress Progress, say func(string, ...any)) (string, error) {
	var path string
	if !IsURL(image) {
		p, err := filepath.Abs(image)
		if err != nil {
			return "", err
		}
		path = p
	} else {
		cache, err := os.UserCacheDir()
		if err != nil {
			return "", err
		}
		if path, err = Download(ctx, image, filepath.Join(cache, "machine", "images"), checksum, progress, say); err != nil {
			return "", err
		}
		return path, nil
	}
	if checksum != "" {
		if err := Verify(path, checksum); err != nil {
			return "", err
		}
	}
	return path, nil
}

// Download fetches url into dir once (later calls reuse the file), checking sum when given.
func Download(ctx context.Context, rawURL, dir, sum string, progress Progress, say func(string, ...any)) (string, error) {
	h := sha256.Sum256([]byte(rawURL))
	u, _ := url.Parse(rawURL)
	dst := filepath.Join(dir, hex.EncodeToString(h[:8])+"-"+filepath.Base(u.Path))
	if _, err := os.Stat(dst); err == nil {
		if sum == "" {
			return dst, nil
		}
		if err := Verify(dst, sum); err == nil {
			return dst, nil
		}
		_ = os.Remove(dst) // a cached file that fails the sum is fetched again
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if say != nil {
		say("downloading %s", rawURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("downloading %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("downloading %s: %s: check the URL", rawURL, resp.Status)
	}
	tmp := dst + ".part"
	f, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	var body io.Reader = resp.Body
	if progress != nil {
		body = progress(filepath.Base(u.Path), resp.ContentLength, body)
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("downloading %s: %w", rawURL, err)
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	if sum != "" {
		if err := Verify(tmp, sum); err != nil {
			os.Remove(tmp)
			return "", fmt.Errorf("%s: %w", rawURL, err)
		}
	}
	return dst, os.Rename(tmp, dst)
}

// Verify checks a file's sha256 against "sha256:HEX" or "HEX".
func Verify(path, sum string) error {
	want := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(sum), "sha256:"))
	if len(want) != 64 {
		return fmt.Errorf("the image checksum %q: give sha256:HEX (64 hex digits)", sum)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("the image's sha256 is %s, not %s: the download is damaged or the checksum is for another image", got, want)
	}
	return nil
}
