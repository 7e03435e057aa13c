package swarm

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportedNamesSayWhatTheyAre: every exported top-level name of swarm, swarm/cluster and
// swarm/preflight has a doc comment that begins with its name.
func TestExportedNamesSayWhatTheyAre(t *testing.T) {
	checked := 0
	for _, dir := range []string{".", "cluster", "preflight"} {
		fset := token.NewFileSet()
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			file, err := parser.ParseFile(fset, f, nil, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range file.Decls {
				var name string
				var doc *ast.CommentGroup
				switch d := d.(type) {
				case *ast.FuncDecl:
					if d.Recv != nil {
						continue // methods: Error, String and the like say what they implement
					}
					name, doc = d.Name.Name, d.Doc
				case *ast.GenDecl:
					for _, s := range d.Specs {
						if ts, ok := s.(*ast.TypeSpec); ok {
							name, doc = ts.Name.Name, ts.Doc
							if doc == nil {
								doc = d.Doc
							}
						}
					}
				}
				if !ast.IsExported(name) {
					continue
				}
				checked++
				text := ""
				if doc != nil {
					text = doc.Text()
				}
				if !strings.HasPrefix(text, name+" ") && !strings.HasPrefix(text, "A "+name+" ") && !strings.HasPrefix(text, "An "+name+" ") {
					t.Errorf("%s: %s's doc comment does not begin with its name: %q", f, name, text[:min(len(text), 60)])
				}
			}
		}
	}
	if checked < 40 {
		t.Fatalf("only %d exported names checked", checked)
	}
}
