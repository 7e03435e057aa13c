package format_test

import (
	"bytes"
	"testing"

	"github.com/machine-tools/machine/internal/format"
)

// TestInspectTemplates: docker-machine's json and prettyjson functions, and a missing field is
// an error.
func TestInspectTemplates(t *testing.T) {
	rec := map[string]any{"Name": "a", "Driver": map[string]any{"IPAddress": "10.0.0.5"}}
	var b bytes.Buffer
	if err := format.Template(&b, "{{prettyjson .Driver}}", rec); err != nil || b.String() != "{\n  \"IPAddress\": \"10.0.0.5\"\n}\n" {
		t.Errorf("prettyjson: %q %v", b.String(), err)
	}
	b.Reset()
	if err := format.Template(&b, "{{json .Driver}} {{.Driver.IPAddress}}", rec); err != nil || b.String() != "{\"IPAddress\":\"10.0.0.5\"} 10.0.0.5\n" {
		t.Errorf("json: %q %v", b.String(), err)
	}
	b.Reset()
	if err := format.Template(&b, "{{.Nosuch}}", rec); err == nil || b.Len() != 0 {
		t.Errorf("a missing field printed %q, %v", b.String(), err)
	}
}
