package cluster

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/machine-tools/machine/machine"
)

// Load reads a cluster file and checks all of it (Parse).
func Load(path string) (*Cluster, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the cluster file: %w", err)
	}
	return Parse(path, b)
}

// Parse reads a cluster file's content, named name in its errors, and checks all of it: its
// YAML (bounded before it is decoded), every key and value, its version, and its drivers' and
// engine's options as the built-in drivers and the docker-machine plug-ins on PATH take them.
// Each error names the file and line.
func Parse(name string, b []byte) (*Cluster, error) {
	c, err := parse(name, b)
	if err != nil {
		return nil, err
	}
	if err := c.validate(machine.Drivers()); err != nil {
		return nil, fmt.Errorf("the cluster file has errors:\n%w", err)
	}
	return c, nil
}

var yamlPos = regexp.MustCompile(`^\[(\d+):(\d+)\]\s*`)

// Bounds on a cluster file, checked before it is decoded: its size, and YAML aliases (a chain
// of anchors that alias each other grows exponentially as it is expanded).
const (
	MaxFileSize = 1 << 20
	MaxAliases  = 1000
	MaxNodes    = 1000
	// MaxDepth bounds how deeply collections nest: the YAML parser's memory grows with the square
	// of the depth (20,000 levels of `[` took 1.3 GB before its own depth error), so deeper files
	// are refused before they are parsed. A cluster file needs 5.
	MaxDepth = 16
)

// nestingDepth finds where a YAML text first nests collections more than max levels deep, by
// reading it as text: flow collections ([ and {, outside quoted scalars and comments) and block
// sequences that open on one line ("- - - x"). 0 when it never does.
func nestingDepth(b []byte, max int) (line int) {
	flow := 0
	ln := 1
	for i := 0; i < len(b); {
		// At a line's start: its block sequence entries ("- - x"), counted with the open flows.
		j := i
		for j < len(b) && b[j] == ' ' {
			j++
		}
		dashes := 0
		for j < len(b) && b[j] == '-' && (j+1 == len(b) || b[j+1] == ' ' || b[j+1] == '\n') {
			dashes++
			j++
			for j < len(b) && b[j] == ' ' {
				j++
			}
		}
		if flow+dashes > max {
			return ln
		}
		var quote byte
		prev := byte(' ')
		for ; j < len(b) && b[j] != '\n'; j++ {
			c := b[j]
			switch {
			case quote == '"' && c == '\\':
				j++ // an escaped character
			case quote != 0 && c == quote:
				quote = 0
			case quote != 0:
			case (c == '"' || c == '\'') && strings.IndexByte(" \t[{,:", prev) >= 0:
				quote = c
			case c == '#' && (prev == ' ' || prev == '\t'):
				for j+1 < len(b) && b[j+1] != '\n' { // a comment: the rest of the line
					j++
				}
			case c == '[' || c == '{':
				if flow++; flow+dashes > max {
					return ln
				}
			case (c == ']' || c == '}') && flow > 0:
				flow--
			}
			prev = c
		}
		ln++
		i = j + 1
	}
	return 0
}

// checkYAML refuses what would make the decoder blow up or crash: an oversized file, anchors
// whose content holds aliases (nested expansion), too many aliases.
func checkYAML(name string, b []byte) (f *ast.File, err error) {
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("%s: the file is %d bytes, more than a cluster file's %d", name, len(b), MaxFileSize)
	}
	if line := nestingDepth(b, MaxDepth); line > 0 {
		return nil, fmt.Errorf("%s:%d: collections nest more than %d levels deep here: a cluster file needs a few; check the brackets and dashes", name, line, MaxDepth)
	}
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("%s: the YAML could not be read (%v): check its syntax", name, r)
		}
	}()
	f, err = parser.ParseBytes(b, 0)
	if err != nil {
		return nil, nil // the decoder reports syntax errors with their line
	}
	aliases := 0
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		for _, a := range ast.Filter(ast.AnchorType, doc.Body) {
			if an, ok := a.(*ast.AnchorNode); ok && an.Value != nil && len(ast.Filter(ast.AliasType, an.Value)) > 0 {
				return nil, fmt.Errorf("%s:%d: the anchor &%s holds aliases: nested YAML aliases are not allowed in a cluster file (they expand exponentially)", name, an.GetToken().Position.Line, an.Name)
			}
		}
		aliases += len(ast.Filter(ast.AliasType, doc.Body))
	}
	if aliases > MaxAliases {
		return nil, fmt.Errorf("%s: %d YAML aliases, more than the %d a cluster file may have", name, aliases, MaxAliases)
	}
	return f, nil
}

// parse reads a cluster file's content: its YAML, every key and value; not yet its drivers' and
// engine's options (validate).
func parse(name string, b []byte) (c *Cluster, err error) {
	f, err := checkYAML(name, b)
	if err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("%s: the YAML could not be read (%v): check its syntax", name, r)
		}
	}()
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil, fmt.Errorf("%s: the cluster file is empty: it needs a name and nodes (see docs/cluster-file.md)", name)
	}
	c = &Cluster{file: name}
	switch errs := fileProblems(name, f); len(errs) {
	case 0:
	case 1:
		return nil, errs[0]
	default:
		return nil, fmt.Errorf("the cluster file has errors:\n%w", errors.Join(errs...))
	}
	// Decoded from the tree already parsed (parsing again would double the memory: the parser
	// takes about 400 bytes for every byte of YAML).
	decode := func() error { return yaml.UnmarshalWithOptions(b, c, yaml.DisallowUnknownField()) }
	if f != nil && len(f.Docs) == 1 && f.Docs[0] != nil && f.Docs[0].Body != nil {
		decode = func() error { return yaml.NodeToValue(f.Docs[0].Body, c, yaml.DisallowUnknownField()) }
	}
	if err := decode(); err != nil {
		msg := yaml.FormatError(err, false, false)
		if m := yamlPos.FindStringSubmatch(msg); m != nil {
			return nil, fmt.Errorf("%s:%s: %s", name, m[1], strings.TrimSpace(strings.SplitN(msg[len(m[0]):], "\n", 2)[0]))
		}
		return nil, fmt.Errorf("%s: %s", name, strings.SplitN(msg, "\n", 2)[0])
	}
	c.ast = f
	for i := range c.Nodes {
		if c.Nodes[i].Role == "" {
			c.Nodes[i].Role = Worker
		}
	}
	return c, nil
}
