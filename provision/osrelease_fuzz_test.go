package provision

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseOSRelease: no os-release content crashes the parser; what it accepts has a family.
func FuzzParseOSRelease(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "os-release", "*"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b))
		}
	}
	f.Add("ID=\"unterminated\nID_LIKE=")
	f.Fuzz(func(t *testing.T, s string) {
		info, err := ParseOSRelease(s)
		if err == nil && info.Family == "" {
			t.Errorf("accepted without a family: %+v", info)
		}
		_ = ParseFacts(s)
		_ = ParseUpgrade(s)
	})
}
