// Package safetext keeps what users and remote hosts give from doing harm where it is printed:
// control characters shown as escapes, values that look like credentials masked.
package safetext

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Unsafe says whether r may not stand as it is in a line of output, a unit file or a config:
// C0 and C1 control characters, DEL, and the format characters that reorder or hide text
// (bidirectional overrides, zero-width joiners).
func Unsafe(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError
}

// FirstUnsafe returns the first character of s that Unsafe refuses (or a byte that is not
// UTF-8), named for a message: "a newline", "U+202E".
func FirstUnsafe(s string) (name string, found bool) {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				return fmt.Sprintf("the byte 0x%02x (not UTF-8)", s[i]), true
			}
		}
		if Unsafe(r) {
			return runeName(r), true
		}
	}
	return "", false
}

func runeName(r rune) string {
	switch r {
	case '\n':
		return "a newline"
	case '\r':
		return "a carriage return"
	case '\t':
		return "a tab"
	case 0:
		return "a NUL byte"
	case 0x1b:
		return "an escape character"
	}
	return fmt.Sprintf("the control character %U", r)
}

// Printable shows s on one line as typed: every unsafe character (and every byte that is not
// UTF-8) as a Go escape (\n, \x1b, \u202e); the rest as it is.
func Printable(s string) string {
	if _, bad := FirstUnsafe(s); !bad {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case Unsafe(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// Mask is what a masked secret is shown as.
const Mask = "****"

// secretName matches variable names whose values are secrets by their name.
var secretName = regexp.MustCompile(`(?i)(pass(word|wd)?|secret|token|credential|api_?key|access_?key|private_?key|auth)`)

// SecretName says whether a setting's name says its value is a secret (a token, a password, an
// API or access key).
func SecretName(name string) bool { return secretName.MatchString(name) }

// MaskSecrets masks, in a JSON-like tree (maps, lists), the values of keys that SecretName says
// are secrets, and the passwords of URLs anywhere; it returns the tree.
func MaskSecrets(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if s, ok := val.(string); ok && s != "" && SecretName(k) {
				x[k] = Mask
				continue
			}
			x[k] = MaskSecrets(val)
		}
	case []any:
		for i := range x {
			x[i] = MaskSecrets(x[i])
		}
	case string:
		return MaskURL(x)
	}
	return v
}

// MaskEnv shows KEY=VALUE with the value masked when it looks like a credential: the key names
// one (PASSWORD, TOKEN, SECRET, ...), or the value is a URL with a password
// (HTTPS_PROXY=http://user:pw@proxy: only the password is masked).
func MaskEnv(kv string) string {
	k, v, ok := strings.Cut(kv, "=")
	if !ok {
		return kv
	}
	if secretName.MatchString(k) && v != "" {
		return k + "=" + Mask
	}
	return k + "=" + MaskURL(v)
}

// MaskURL masks the password of a URL ("http://user:****@proxy:3128"); anything else is
// returned as it is.
func MaskURL(v string) string {
	i := strings.Index(v, "://")
	if i < 0 {
		return v
	}
	rest := v[i+3:]
	authority, _, _ := strings.Cut(rest, "/")
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return v
	}
	user, _, hasPw := strings.Cut(authority[:at], ":")
	if !hasPw {
		return v
	}
	return v[:i+3] + user + ":" + Mask + rest[at:]
}
