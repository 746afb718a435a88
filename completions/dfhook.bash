# bash completion for dfhook. Subcommands and options are read from dfhook's own --help,
# so this file never falls behind the program.

_dfhook_words() {  # _dfhook_words SUBCOMMAND -> the long options of its help
  "${1:-dfhook}" ${2:+"$2"} --help 2>/dev/null |
    grep -oE -- '(^|[ ,])--[a-z][a-z0-9-]*' | sed 's/^[ ,]*//' | sort -u
}

_dfhook() {
  local cur prev program sub word i
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}
  program=${COMP_WORDS[0]}
  sub=
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${COMP_WORDS[i]}
    case $word in
      --log-format) ((i++)) ;;
      -*) ;;
      *) sub=$word; break ;;
    esac
  done

  case $prev in
    --log-format | --format)
      COMPREPLY=($(compgen -W 'text json' -- "$cur"))
      return
      ;;
    --secret-file | --auth-token-file | --cacert | --out | --out-dir | --save-dir)
      COMPREPLY=($(compgen -f -- "$cur"))
      compopt -o filenames 2>/dev/null
      return
      ;;
  esac

  if [[ -z $sub ]]; then
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "$(_dfhook_words "$program")" -- "$cur"))
    else
      local commands
      commands=$("$program" --help 2>/dev/null | sed -n '/^Subcommands:/,$p' |
        awk 'NR > 1 && NF { print $1 }')
      COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    fi
    return
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(_dfhook_words "$program" "$sub") --log-format --quiet --verbose" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
    compopt -o filenames 2>/dev/null
  fi
}

complete -F _dfhook dfhook
