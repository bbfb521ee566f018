/**
 * Shell completion for `draftsman`: a bash script built from the commands and options the
 * CLI defines, so that it never lists one that does not exist. Pure.
 */
export interface CompletionCommand {
  name: string;
  options: string[];
}

export function bashCompletion(program: string, commands: CompletionCommand[]): string {
  const fn = `_${program.replace(/\W/g, '_')}_complete`;
  const cases = commands.map((c) => `    ${c.name}) opts="${c.options.join(' ')}" ;;`).join('\n');
  return `# bash completion for ${program}: eval "$(${program} completion bash)", or save it in
# /etc/bash_completion.d/${program}
${fn}() {
  local cur cmd opts
  cur="\${COMP_WORDS[COMP_CWORD]}"
  cmd="\${COMP_WORDS[1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W "${commands.map((c) => c.name).join(' ')}" -- "$cur") )
    return
  fi
  case "$cmd" in
${cases}
    *) opts="" ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
  else
    COMPREPLY=( $(compgen -f -- "$cur") )
  fi
}
complete -F ${fn} ${program}
`;
}
