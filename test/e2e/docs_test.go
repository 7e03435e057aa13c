//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// shellBlocks returns the ```sh blocks of a Markdown file, in order.
func shellBlocks(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var cur []string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```sh":
			in, cur = true, nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks = append(blocks, strings.Join(cur, "\n"))
		case in:
			cur = append(cur, line)
		}
	}
	return blocks
}

// TestDocsGuide runs every shell block of docs/guide.md, in order, in one bash with -e: the guide
// is what works.
func TestDocsGuide(t *testing.T) {
	t.Parallel()
	blocks := shellBlocks(t, filepath.Join("..", "..", "docs", "guide.md"))
	if len(blocks) < 8 {
		t.Fatalf("docs/guide.md has %d shell blocks: the extraction is broken", len(blocks))
	}
	store := filepath.Join(t.TempDir(), "store")
	e := &env{t: t, store: store}
	t.Cleanup(func() {
		e.run("rm", "-f", "-y", "manager1", "worker1", "worker2")
		_ = exec.Command("docker", "-H", "unix:///var/run/docker.sock", "rmi", "guide/busybox:1").Run()
	})
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for i, b := range blocks {
		script.WriteString("echo '### block " + string(rune('0'+i/10)) + string(rune('0'+i%10)) + "'\n")
		script.WriteString(b + "\n")
	}
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Env = append(cleanEnv(), "PATH="+filepath.Dir(machineBin)+":"+os.Getenv("PATH"), "MACHINE_STORAGE_PATH="+store,
		"DOCKER_CONFIG="+filepath.Join(t.TempDir(), "docker"), "SHELL=/bin/bash")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("the guide failed (%v):\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{"manager1 runs Docker", "hello from the guide", "2 packets received", "web.3 on"} {
		if !strings.Contains(s, want) {
			t.Errorf("the guide's output lacks %q:\n%s", want, s)
		}
	}
}
