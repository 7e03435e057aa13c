package scp

import "testing"

func TestParseSpec(t *testing.T) {
	for in, want := range map[string]Spec{
		"m1:/etc/hosts":      {Machine: "m1", Path: "/etc/hosts"},
		"root@m1:/etc/hosts": {User: "root", Machine: "m1", Path: "/etc/hosts"},
		"./a:b":              {Path: "./a:b"},
		"file.txt":           {Path: "file.txt"},
		"m1:":                {Machine: "m1"},
	} {
		if got := ParseSpec(in); got != want {
			t.Errorf("%q: %+v, want %+v", in, got, want)
		}
	}
}
