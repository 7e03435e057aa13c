package drivers

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/machine-tools/machine/internal/store"
)

// Opt is one option, declared once: the CLI's flag (--PREFIX-NAME, with its environment
// variable, default and usage), the cluster file's key (NAME under driver-options or engine),
// its type and its validation all come from it. T is what the option sets: a driver's
// Settings, or the engine's options.
type Opt[T any] struct {
	// Name is the option without its prefix: "ip-address" is --generic-ip-address on the
	// command line and ip-address in a cluster file.
	Name   string
	EnvVar string
	// Default is the value when the option is not given; its type is the option's type: string,
	// int, bool, []string or time.Duration.
	Default any
	Usage   string
	// Path: a file path, whose leading ~/ is expanded (cluster files and quoted flags do not get
	// the shell's expansion).
	Path bool
	// Refused, when set, is why the option is not supported: giving it is an error saying so.
	Refused string
	// Set stores a value (of Default's type) in t; nil: the option is accepted and changes
	// nothing (a docker-machine flag kept so that its scripts run).
	Set func(t *T, v any) error
}

// Option is a driver's option.
type Option = Opt[Settings]

// Settings are what a driver's options set: the driver itself, and the machine settings that
// some drivers take from flags of their own (the generic driver's user, key and engine port).
type Settings struct {
	Driver     Driver
	SSHUser    string // overrides the driver's user
	SSHKey     string // the user's own private key, copied into the machine's folder
	EnginePort int    // the engine's TLS port, when not 2376
	// SSH is how the host is reached beyond address, port and user: jump hosts (their KeyPath
	// the user's own file, copied at create), the ssh_config alias and file it came from,
	// timeouts.
	SSH store.SSH
	// SSHHostKeys are the host's public keys, known before the first connection
	// (authorized_keys format): pinned at create, so that TOFU does not apply.
	SSHHostKeys []string
}

// Field makes an option's Set from a typed setter of the driver's configuration.
func Field[D Driver, V any](set func(d D, v V)) func(*Settings, any) error {
	return func(s *Settings, v any) error {
		d, ok := s.Driver.(D)
		if !ok {
			return fmt.Errorf("internal error: option for a %T given to a %T", *new(D), s.Driver)
		}
		set(d, v.(V))
		return nil
	}
}

// CheckedField is Field with a check of the value first: its error is the option's.
func CheckedField[D Driver, V any](check func(v V) error, set func(d D, v V)) func(*Settings, any) error {
	f := Field(set)
	return func(s *Settings, v any) error {
		if err := check(v.(V)); err != nil {
			return &valueError{err}
		}
		return f(s, v)
	}
}

// valueError is a value a CheckedField refused: Apply names the option and the value in front.
type valueError struct{ error }

func (e *valueError) Unwrap() error { return e.error }

// Setter is Field for any target: a typed setter of T.
func Setter[T, V any](set func(t *T, v V)) func(*T, any) error {
	return func(t *T, v any) error {
		set(t, v.(V))
		return nil
	}
}

// ErrUnknownOption is an option name that the table does not have.
var ErrUnknownOption = errors.New("unknown option")

// Find returns the option named name.
func Find[T any](opts []Opt[T], name string) (Opt[T], bool) {
	for _, o := range opts {
		if o.Name == name {
			return o, true
		}
	}
	return Opt[T]{}, false
}

// Names lists the options' names, in table order.
func Names[T any](opts []Opt[T]) []string {
	out := make([]string, 0, len(opts))
	for _, o := range opts {
		out = append(out, o.Name)
	}
	return out
}

// Apply sets every option of the table on t: a given value (by name, as a cluster file or the
// CLI gives it: converted to the option's type first) or the option's default. It fails on a
// name the table does not have, a value of the wrong type, or a refused option that was given;
// label(name) is how errors name an option (the CLI: its flag).
func Apply[T any](opts []Opt[T], t *T, given map[string]any, label func(string) string) error {
	var errs []error
	for _, name := range sortedNames(given) {
		if _, ok := Find(opts, name); !ok {
			errs = append(errs, CheckOne(opts, name, given[name], label))
		}
	}
	for _, o := range opts {
		v, ok := given[o.Name]
		if ok {
			if err := CheckOne(opts, o.Name, v, label); err != nil {
				errs = append(errs, err)
				continue
			}
			v, _ = Convert(o, v)
		} else {
			v = o.Default
		}
		if o.Set == nil {
			continue
		}
		if err := o.Set(t, v); err != nil {
			if ve, ok := err.(*valueError); ok {
				l := label
				if l == nil {
					l = func(s string) string { return s }
				}
				err = fmt.Errorf("%s %v: %w", l(o.Name), v, ve.error)
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CheckOne says what is wrong with giving option name the value v: no such option, a refused
// one, or a value that is not of its type.
func CheckOne[T any](opts []Opt[T], name string, v any, label func(string) string) error {
	if label == nil {
		label = func(s string) string { return s }
	}
	o, ok := Find(opts, name)
	switch {
	case !ok:
		return fmt.Errorf("%w %s (known: %s)", ErrUnknownOption, label(name), strings.Join(Names(opts), ", "))
	case o.Refused != "":
		return fmt.Errorf("%s is not supported: %s", label(name), o.Refused)
	}
	if _, err := Convert(o, v); err != nil {
		return fmt.Errorf("%s: %w", label(name), err)
	}
	return nil
}

func sortedNames(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

// Convert turns a value as YAML or the CLI gives it (string, any integer or float type, bool,
// a list) into the option's type, or says what was expected.
func Convert[T any](o Opt[T], v any) (any, error) {
	bad := func(want string) error {
		return fmt.Errorf("%s, not %s", want, describe(v))
	}
	switch o.Default.(type) {
	case string:
		s, ok := scalarString(v)
		if !ok {
			return nil, bad("give a string")
		}
		if o.Path {
			s = ExpandHome(s)
		}
		return s, nil
	case bool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			if b, err := strconv.ParseBool(x); err == nil {
				return b, nil
			}
		}
		return nil, bad("give true or false")
	case int:
		n, ok := toInt(v)
		if !ok {
			return nil, bad("give a whole number")
		}
		return n, nil
	case time.Duration:
		switch x := v.(type) {
		case time.Duration:
			return x, nil
		case string:
			if d, err := time.ParseDuration(x); err == nil {
				return d, nil
			}
		}
		return nil, bad("give a duration such as 90s or 2m")
	case []string:
		var list []any
		switch x := v.(type) {
		case []string:
			out := append([]string(nil), x...)
			if o.Path {
				for i := range out {
					out[i] = ExpandHome(out[i])
				}
			}
			return out, nil
		case []any:
			list = x
		default:
			list = []any{v}
		}
		out := make([]string, 0, len(list))
		for _, e := range list {
			s, ok := scalarString(e)
			if !ok {
				return nil, bad("give a string or a list of strings")
			}
			if o.Path {
				s = ExpandHome(s)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("internal error: option %s has a default of type %T", o.Name, o.Default)
}

func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(x), true
	case float32, float64:
		return fmt.Sprint(x), true
	}
	return "", false
}

func toInt(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case int64:
		return int(x), x >= math.MinInt && x <= math.MaxInt
	case uint64:
		return int(x), x <= math.MaxInt
	case int32:
		return int(x), true
	case uint32:
		return int(x), true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int(x), true
		}
	case string:
		if n, err := strconv.Atoi(strings.TrimSpace(x)); err == nil {
			return n, true
		}
	}
	return 0, false
}

func describe(v any) string {
	switch v.(type) {
	case map[string]any, map[any]any:
		return "a mapping"
	case []any:
		return "a list"
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("%v", v)
}

// ExpandHome expands a leading ~/.
func ExpandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[2:])
		}
	}
	return p
}
