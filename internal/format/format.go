// Package format prints what commands list: JSON, Go templates with docker-machine's functions,
// and tables (a `table` template prefix, or fixed columns).
package format

import (
	"bytes"
	"encoding/json"
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

// Template prints v through a --format template; a field that v does not have is an error, not
// "<no value>", and nothing is printed then.
func Template(w io.Writer, format string, v any) error {
	t, err := template.New("format").Funcs(Funcs).Option("missingkey=error").Parse(format + "\n")
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	_, err = w.Write(b.Bytes())
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
// is def.
func Rows[T any](w io.Writer, format, def string, headers map[string]string, rows []T) error {
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
	out := w
	var tw *tabwriter.Writer
	if table {
		tw = NewTable(w)
		out = tw
		if err := tmpl.Execute(out, headers); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
	}
	for _, r := range rows {
		if err := tmpl.Execute(out, r); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
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
