package drivers

import (
	"regexp"
	"strings"
)

// escapes are terminal control sequences (colours, cursor moves, character sets) that consoles
// and logs print.
var escapes = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[@-_])`)

// PlainLine is a line of a host's console or log as one would read it in an error message: no
// control sequences or characters, spaces collapsed, nothing around it.
func PlainLine(s string) string {
	s = escapes.ReplaceAllString(s, "")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\t':
			return ' '
		case r < ' ' || r == 0x7f:
			return -1
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}
