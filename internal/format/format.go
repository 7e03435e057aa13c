// Package format prints what commands list: JSON, Go templates with docker-machine's functions,
// and tables (a `table` template prefix, or fixed columns).
package format

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
)

// Funcs are docker-machine's template functions: json and prettyjson.
var Funcs = template.FuncMap{
	"json": func(v any) string { b, _ := json.Marshal(v); return string(b) },
	"prettyjson": func(v any) string {
		b, _ := json.MarshalIndent(v, "", "  ")
		return string(b)
	},
}

// JSON prints v indented; indent is the unit ("  " or docker-machine inspect's four spaces).
func JSON(w io.Writer, v any, indent string) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", indent)
	return enc.Encode(v)
}

// MaxOutput bounds what one --format prints: a template that would print more stops with an
// error, having printed nothing ({{range 100000000000}}x{{end}} would otherwise fill memory).
const MaxOutput = 16 << 20

// capped passes at most MaxOutput bytes on to w, then refuses.
type capped struct {
	w io.Writer
	n int
}

var errTooLong = fmt.Errorf("it would print more than %d MiB: narrow the template", MaxOutput>>20)

func (c *capped) Write(p []byte) (int, error) {
	if c.n+len(p) > MaxOutput {
		return 0, errTooLong
	}
	c.n += len(p)
	return c.w.Write(p)
}

// execute runs a template's work in the background and stops waiting when ctx ends (Ctrl-C):
// text/template cannot be told to stop, and a template may loop without printing.
func execute(ctx context.Context, fn func(w io.Writer) error) ([]byte, error) {
	var b bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- fn(&capped{w: &b}) }()
	select {
	case err := <-done:
		if err != nil {
			if errors.Is(err, errTooLong) {
				err = errTooLong
			}
			return nil, fmt.Errorf("--format: %w", err)
		}
		return b.Bytes(), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("--format: %w", context.Cause(ctx))
	}
}

// Template prints v through a --format template; a field that v does not have is an error, not
// "<no value>", and nothing is printed then. Its output is bounded (MaxOutput) and ctx stops it.
func Template(ctx context.Context, w io.Writer, format string, v any) error {
	t, err := template.New("format").Funcs(Funcs).Option("missingkey=error").Parse(format + "\n")
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	b, err := execute(ctx, func(w io.Writer) error { return t.Execute(w, v) })
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// OneOf checks a --format that takes fixed words only (e.g. json, or "" for the default).
func OneOf(format string, allowed ...string) error {
	for _, a := range append(allowed, "") {
		if format == a {
			return nil
		}
	}
	return fmt.Errorf("--format %q: use %s, or leave it out", format, strings.Join(allowed, " or "))
}

// Rows prints rows as JSON (format "json"), or through a template run once per row; a `table`
// prefix aligns the columns and heads them with the template run over headers. An empty format
// is def. Like Template, its output is bounded and ctx stops it.
func Rows[T any](ctx context.Context, w io.Writer, format, def string, headers map[string]string, rows []T) error {
	if format == "json" {
		if rows == nil {
			rows = []T{}
		}
		return JSON(w, rows, "  ")
	}
	if format == "" {
		format = def
	}
	table := strings.HasPrefix(format, "table")
	format = strings.TrimLeft(strings.TrimPrefix(format, "table"), " ")
	tmpl, err := template.New("rows").Funcs(Funcs).Parse(format + "\n")
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	b, err := execute(ctx, func(out io.Writer) error {
		var tw *tabwriter.Writer
		if table {
			tw = NewTable(out)
			out = &capped{w: tw} // the table holds what it is given until it is flushed
			if err := tmpl.Execute(out, headers); err != nil {
				return err
			}
		}
		for _, r := range rows {
			if err := tmpl.Execute(out, r); err != nil {
				return err
			}
		}
		if tw != nil {
			return tw.Flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// NewTable aligns tab-separated columns as docker's tables do.
func NewTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 8, 3, ' ', 0) }

// Table prints a header and rows of cells, aligned.
func Table(w io.Writer, header []string, rows [][]string) error {
	tw := NewTable(w)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}
