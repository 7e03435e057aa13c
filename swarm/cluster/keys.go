package cluster

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/machine-tools/machine/internal/safetext"
)

// fileProblems walks the parsed file against the Cluster type and reports, each with its line,
// every key that the type does not have (not only the first, as the decoder does) and every
// `name` written as a number or a boolean (YAML would make 0x1F the name "31").
// Every text in the file, keys and values, must be one line of printable characters: no value
// of a cluster file needs a newline or a control character, and each could reach a host's files
// or fake a line of output.
func fileProblems(file string, f *ast.File) []error {
	var errs []error
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil {
			walkKeys(file, doc.Body, reflect.TypeOf(Cluster{}), "", &errs)
			ast.Walk(scalarCheck{file, &errs}, doc.Body)
		}
	}
	return errs
}

// scalarCheck refuses texts with control characters (block scalars, | and >, hold newlines).
type scalarCheck struct {
	file string
	errs *[]error
}

func (c scalarCheck) Visit(n ast.Node) ast.Visitor {
	var text string
	switch v := n.(type) {
	case *ast.StringNode:
		text = v.Value
	case *ast.LiteralNode:
		text = v.Value.Value
	default:
		return c
	}
	if what, bad := safetext.FirstUnsafe(text); bad {
		if len(text) > 60 {
			text = text[:60] + "..."
		}
		*c.errs = append(*c.errs, fmt.Errorf("%s:%d: %q holds %s: a cluster file's values are one line of printable text", c.file, n.GetToken().Position.Line, text, what))
	}
	return nil // a block scalar's text is its own child: once is enough
}

func walkKeys(file string, n ast.Node, t reflect.Type, where string, errs *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	n = unwrap(n)
	switch t.Kind() {
	case reflect.Struct:
		m, ok := n.(*ast.MappingNode)
		if !ok {
			if mv, ok := n.(*ast.MappingValueNode); ok {
				m = &ast.MappingNode{Values: []*ast.MappingValueNode{mv}}
			} else {
				return // a scalar where a mapping belongs (an image as a string): the decoder says
			}
		}
		fields := map[string]reflect.StructField{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			fl := t.Field(i)
			if tag := strings.Split(fl.Tag.Get("yaml"), ",")[0]; tag != "" && tag != "-" {
				fields[tag] = fl
				names = append(names, tag)
			}
		}
		for _, kv := range m.Values {
			key := strings.TrimSpace(kv.Key.String())
			if key == "<<" {
				continue
			}
			line := kv.Key.GetToken().Position.Line
			fl, ok := fields[key]
			if !ok {
				*errs = append(*errs, fmt.Errorf("%s:%d: unknown field %q%s (known: %s)", file, line, key, where, strings.Join(names, ", ")))
				continue
			}
			if key == "name" && fl.Type.Kind() == reflect.String {
				switch v := unwrap(kv.Value).(type) {
				case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
					// Refused only where the decoded value reads otherwise than what was written.
					if text := v.GetToken().Value; fmt.Sprint(v.(interface{ GetValue() any }).GetValue()) != text {
						*errs = append(*errs, fmt.Errorf("%s:%d: the name %s is a %s in YAML (it would be %v): write it in quotes (name: \"%s\")", file, line, text, kindOf(v), v.(interface{ GetValue() any }).GetValue(), text))
					}
				}
			}
			walkKeys(file, kv.Value, fl.Type, " in "+key, errs)
		}
	case reflect.Slice:
		if s, ok := n.(*ast.SequenceNode); ok {
			for _, v := range s.Values {
				walkKeys(file, v, t.Elem(), where, errs)
			}
		}
	}
}

func unwrap(n ast.Node) ast.Node {
	for {
		switch x := n.(type) {
		case *ast.AnchorNode:
			n = x.Value
		case *ast.TagNode:
			n = x.Value
		default:
			return n
		}
	}
}

func kindOf(n ast.Node) string {
	if slices.Contains([]ast.NodeType{ast.BoolType}, n.Type()) {
		return "boolean"
	}
	return "number"
}
