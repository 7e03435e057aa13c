package images

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// RegistryOf returns the registry host of an image reference ("docker.io" for bare names).
func RegistryOf(ref string) string {
	first, _, ok := strings.Cut(ref, "/")
	if !ok || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		return "docker.io"
	}
	return first
}

// ConfigAuth finds credentials for registry in the user's Docker config ($DOCKER_CONFIG/config.json,
// else ~/.docker/config.json), asking its credential helper when it names one. It returns the
// engine's auth header value, or "" when the config has nothing for the registry.
func ConfigAuth(registry string) (string, error) {
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", nil
		}
		dir = filepath.Join(home, ".docker")
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return "", nil
	}
	var cfg struct {
		Auths       map[string]struct{ Auth string } `json:"auths"`
		CredsStore  string                           `json:"credsStore"`
		CredHelpers map[string]string                `json:"credHelpers"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Join(dir, "config.json"), err)
	}
	keys := []string{registry, "https://" + registry, "http://" + registry}
	if registry == "docker.io" {
		keys = append(keys, "https://index.docker.io/v1/", "index.docker.io")
	}
	helper := cfg.CredHelpers[registry]
	if helper == "" {
		helper = cfg.CredsStore
	}
	if helper != "" {
		for _, k := range keys {
			cmd := exec.Command("docker-credential-"+helper, "get")
			cmd.Stdin = strings.NewReader(k)
			out, err := cmd.Output()
			if err != nil {
				continue
			}
			var c struct{ Username, Secret string }
			if json.Unmarshal(out, &c) == nil && c.Secret != "" {
				return EncodeAuth(c.Username, c.Secret, registry)
			}
		}
	}
	for _, k := range keys {
		a, ok := cfg.Auths[k]
		if !ok || a.Auth == "" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return "", fmt.Errorf("the Docker config's auth for %s is not base64", k)
		}
		user, pass, _ := bytes.Cut(raw, []byte(":"))
		return EncodeAuth(string(user), string(pass), registry)
	}
	return "", nil
}
