package drivers

import "testing"

func TestPlainLine(t *testing.T) {
	for in, want := range map[string]string{
		"\x1b[0;1;31mFAILED\x1b[0m to start   \x1b[0;1;39mssh.service\x1b[0m\r": "FAILED to start ssh.service",
		"\x1b[1;31mdebian login: \x1b[0m\x07":                                   "debian login:",
		"\x1b(B\x1b[?25l[  OK  ]\tReached target":                               "[ OK ] Reached target",
		"   ": "",
	} {
		if got := PlainLine(in); got != want {
			t.Errorf("PlainLine(%q) = %q, want %q", in, got, want)
		}
	}
}
