package machine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLibraryPageProgramIsTheExampleModule: docs/library.md's first Go block is the complete
// program that the end-to-end suite runs as its own module (test/example/main.go).
func TestLibraryPageProgramIsTheExampleModule(t *testing.T) {
	page, err := os.ReadFile(filepath.Join("..", "docs", "library.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(page), "```go\n")
	block, _, ok2 := strings.Cut(rest, "```\n")
	if !ok || !ok2 {
		t.Fatal("docs/library.md has no Go block")
	}
	prog, err := os.ReadFile(filepath.Join("..", "test", "example", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if block != string(prog) || !strings.HasPrefix(block, "// Command example") || !strings.Contains(block, "package main") {
		t.Error("docs/library.md's first Go block differs from test/example/main.go: copy the file into the page")
	}
}
