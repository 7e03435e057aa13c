package format_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/machine-tools/machine/internal/format"
)

// TestInspectTemplates: docker-machine's json and prettyjson functions, and a missing field is
// an error.
func TestInspectTemplates(t *testing.T) {
	rec := map[string]any{"Name": "a", "Driver": map[string]any{"IPAddress": "10.0.0.5"}}
	var b bytes.Buffer
	if err := format.Template(t.Context(), &b, "{{prettyjson .Driver}}", rec); err != nil || b.String() != "{\n  \"IPAddress\": \"10.0.0.5\"\n}\n" {
		t.Errorf("prettyjson: %q %v", b.String(), err)
	}
	b.Reset()
	if err := format.Template(t.Context(), &b, "{{json .Driver}} {{.Driver.IPAddress}}", rec); err != nil || b.String() != "{\"IPAddress\":\"10.0.0.5\"} 10.0.0.5\n" {
		t.Errorf("json: %q %v", b.String(), err)
	}
	b.Reset()
	if err := format.Template(t.Context(), &b, "{{.Nosuch}}", rec); err == nil || b.Len() != 0 {
		t.Errorf("a missing field printed %q, %v", b.String(), err)
	}
}

// FuzzTemplate: any --format a user types either prints or fails with one line that starts with
// "--format: " and prints nothing; a format without actions prints itself.
func FuzzTemplate(f *testing.F) {
	b, err := os.ReadFile("testdata/formats.txt") // the corpus: one --format a line
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f.Add(s)
	}
	data := map[string]any{"Name": "m1", "State": "Running", "Driver": map[string]any{"IP": "10.0.0.2", "Port": 22}}
	f.Fuzz(func(t *testing.T, tmpl string) {
		var b bytes.Buffer
		err := format.Template(t.Context(), &b, tmpl, data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--format: ") || b.Len() != 0 {
				t.Fatalf("%q: error %q, printed %q", tmpl, err, b.String())
			}
		} else if !strings.Contains(tmpl, "{{") && b.String() != tmpl+"\n" {
			t.Fatalf("%q printed %q", tmpl, b.String())
		}
		var rows bytes.Buffer
		if err := format.Rows(t.Context(), &rows, tmpl, "{{.Name}}", map[string]string{"Name": "NAME"}, []map[string]any{data, data}); err != nil && !strings.HasPrefix(err.Error(), "--format: ") {
			t.Fatalf("rows %q: %v", tmpl, err)
		}
	})
}

// TestOutputBoundedAndInterruptible: a template that would print without end stops at
// MaxOutput with one line, having printed nothing; one that loops without printing stops when
// the context ends (Ctrl-C), at once.
func TestOutputBoundedAndInterruptible(t *testing.T) {
	var b bytes.Buffer
	err := format.Template(t.Context(), &b, "{{range 100000000000}}xxxxxxxxxxxxxxxx{{end}}", nil)
	if err == nil || !strings.Contains(err.Error(), "--format: it would print more than 16 MiB") || b.Len() != 0 {
		t.Fatalf("unbounded template: %v, printed %d bytes", err, b.Len())
	}
	err = format.Rows(t.Context(), &b, "table {{range 100000000000}}{{.}}{{end}}", "", map[string]string{}, []string{"abcdefgh"})
	if err == nil || !strings.Contains(err.Error(), "more than 16 MiB") || b.Len() != 0 {
		t.Fatalf("unbounded rows: %v, printed %d bytes", err, b.Len())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = format.Template(ctx, &b, "{{range 100000000000}}{{end}}", nil)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second || b.Len() != 0 {
		t.Fatalf("a silent loop after its context ended: %v after %s", err, time.Since(start))
	}
}
