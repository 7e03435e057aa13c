package store

import (
	"regexp"
	"strings"
	"testing"
)

// FuzzValidateName: a name is accepted exactly when it is a valid hostname label of at most 63
// characters (what docker-machine's hostname rule allows, within the host's limit).
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"a", "0", "web1", "a..b", "-x", "x_y", "", "default", "a.b-c"} {
		f.Add(s)
	}
	re := regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9.-]{0,62}$`)
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateName(s)
		valid := re.MatchString(s) && !strings.Contains(s, "..") && !strings.HasSuffix(s, ".")
		if (err == nil) != valid {
			t.Errorf("%q: %v", s, err)
		}
	})
}
