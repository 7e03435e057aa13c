package shellenv

// Completion is the completion script for bash, zsh or PowerShell: each asks the machine
// binary itself (urfave/cli's --generate-bash-completion). Fish's comes from the CLI's own
// command tree.
func Completion(shell string) (string, bool) {
	switch shell {
	case "bash":
		return bashCompletion, true
	case "zsh":
		return zshCompletion, true
	case "powershell", "pwsh":
		return powershellCompletion, true
	}
	return "", false
}

const bashCompletion = `# machine completion for bash: source <(machine completion bash)
_machine_complete() {
  local cur="${COMP_WORDS[COMP_CWORD]}"
  local words=("${COMP_WORDS[@]:0:COMP_CWORD}")
  local IFS=$'\n'
  COMPREPLY=($(compgen -W "$("${words[@]}" --generate-bash-completion 2>/dev/null)" -- "$cur"))
}
complete -o default -F _machine_complete machine
`

const zshCompletion = `#compdef machine
# machine completion for zsh: source <(machine completion zsh)
autoload -U +X bashcompinit && bashcompinit
` + bashCompletion

const powershellCompletion = `# machine completion for PowerShell: machine completion powershell | Out-String | Invoke-Expression
Register-ArgumentCompleter -Native -CommandName machine -ScriptBlock {
  param($wordToComplete, $commandAst, $cursorPosition)
  $words = $commandAst.CommandElements | Select-Object -Skip 1 | ForEach-Object { $_.ToString() }
  if ($wordToComplete -ne '') { $words = $words | Select-Object -SkipLast 1 }
  & machine @words --generate-bash-completion 2>$null |
    Where-Object { $_ -like "$wordToComplete*" } |
    ForEach-Object { [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_) }
}
`
