// Package shellenv prints the variables that point a docker CLI at a machine, in the formats of
// docker-machine 0.16 for every shell it knew, so that scripts written for it keep working.
// Values are escaped for the shell they are printed for: a path with spaces or quotes survives.
package shellenv

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Shells lists the shells that Render knows.
var Shells = []string{"bash", "zsh", "sh", "fish", "powershell", "cmd", "tcsh", "emacs"}

// Var is one variable to set (or unset).
type Var struct{ Name, Value string }

// Normalize maps a shell name or path ("/usr/bin/zsh", "pwsh") to one of Shells.
func Normalize(shell string) (string, error) {
	s := strings.ToLower(filepath.Base(shell))
	s = strings.TrimSuffix(s, ".exe")
	switch s {
	case "bash", "zsh", "sh", "ksh", "dash", "ash", "mksh", "posix":
		if s == "zsh" || s == "bash" {
			return s, nil
		}
		return "sh", nil
	case "fish", "cmd", "tcsh", "emacs":
		return s, nil
	case "csh":
		return "tcsh", nil
	case "powershell", "pwsh":
		return "powershell", nil
	}
	return "", fmt.Errorf("unknown shell %q: use --shell with one of %s", shell, strings.Join(Shells, ", "))
}

// Detect picks the shell from $SHELL (the value passed in); bash when it is empty.
func Detect(shellEnv string) (string, error) {
	if shellEnv == "" {
		return "bash", nil
	}
	return Normalize(shellEnv)
}

// Choose is the shell given (--shell), else the one of $SHELL (Detect).
func Choose(given, shellEnv string) (string, error) {
	if given != "" {
		return Normalize(given)
	}
	return Detect(shellEnv)
}

// EnvCommand is the command line that prints a machine's variables for shell, as the usage hint
// names it (--shell only where $SHELL would not choose the same): "machine env NAME".
func EnvCommand(shell, name string) string {
	if shell == "bash" || shell == "zsh" || shell == "sh" {
		return "machine env " + name
	}
	return "machine env --shell " + shell + " " + name
}

// Render prints vars as assignments for shell, followed by the usage hint for commandLine.
func Render(shell string, vars []Var, commandLine string) string {
	var b strings.Builder
	for _, v := range vars {
		switch shell {
		case "fish":
			fmt.Fprintf(&b, "set -gx %s \"%s\";\n", v.Name, escDouble(v.Value, `\"$`, `\`))
		case "powershell":
			fmt.Fprintf(&b, "$Env:%s = \"%s\"\n", v.Name, escDouble(v.Value, "`\"$", "`"))
		case "cmd":
			fmt.Fprintf(&b, "SET %s=%s\n", v.Name, escDouble(v.Value, "^&|<>", "^"))
		case "tcsh":
			fmt.Fprintf(&b, "setenv %s %s;\n", v.Name, tcshQuote(v.Value))
		case "emacs":
			fmt.Fprintf(&b, "(setenv \"%s\" \"%s\")\n", v.Name, escDouble(v.Value, `\"`, `\`))
		default:
			fmt.Fprintf(&b, "export %s=\"%s\"\n", v.Name, escDouble(v.Value, "\\\"$`", `\`))
		}
	}
	b.WriteString(Hint(shell, commandLine))
	return b.String()
}

// RenderUnset prints the commands that remove names.
func RenderUnset(shell string, names []string, commandLine string) string {
	var b strings.Builder
	for _, n := range names {
		switch shell {
		case "fish":
			fmt.Fprintf(&b, "set -e %s;\n", n)
		case "powershell":
			fmt.Fprintf(&b, "Remove-Item Env:\\\\%s\n", n)
		case "cmd":
			fmt.Fprintf(&b, "SET %s=\n", n)
		case "tcsh":
			fmt.Fprintf(&b, "unsetenv %s;\n", n)
		case "emacs":
			fmt.Fprintf(&b, "(setenv \"%s\" nil)\n", n)
		default:
			fmt.Fprintf(&b, "unset %s\n", n)
		}
	}
	b.WriteString(Hint(shell, commandLine))
	return b.String()
}

// Hint is the comment that tells the user how to apply the output.
func Hint(shell, commandLine string) string {
	comment, cmd := "#", ""
	switch shell {
	case "fish":
		cmd = fmt.Sprintf("eval (%s)", commandLine)
	case "powershell":
		cmd = fmt.Sprintf("& %s | Invoke-Expression", commandLine)
	case "cmd":
		comment, cmd = "REM", fmt.Sprintf("\t@FOR /f \"tokens=*\" %%i IN ('%s') DO @%%i", commandLine)
	case "emacs":
		comment, cmd = ";;", fmt.Sprintf("(with-temp-buffer (shell-command \"%s\" (current-buffer)) (eval-buffer))", commandLine)
	case "tcsh":
		comment, cmd = ":", fmt.Sprintf("eval `%s`", commandLine)
	default:
		cmd = fmt.Sprintf("eval $(%s)", commandLine)
	}
	return fmt.Sprintf("%s Run this command to configure your shell: \n%s %s\n", comment, comment, cmd)
}

// escDouble puts esc before every character of value that is in special.
func escDouble(value, special, esc string) string {
	var b strings.Builder
	for i := 0; i < len(value); i++ { // by byte: a path need not be UTF-8, and special is ASCII
		if strings.IndexByte(special, value[i]) >= 0 {
			b.WriteString(esc)
		}
		b.WriteByte(value[i])
	}
	return b.String()
}

// tcshQuote keeps docker-machine's "value" form when it is safe; csh cannot escape a double quote
// or a dollar inside double quotes, so such values are single-quoted instead.
func tcshQuote(v string) string {
	if !strings.ContainsAny(v, "\"$`!'\\") {
		return `"` + v + `"`
	}
	return "'" + strings.ReplaceAll(strings.ReplaceAll(v, "'", `'\''`), "!", `\!`) + "'"
}
