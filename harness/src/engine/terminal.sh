# The labbook terminal: one bash per lab that runs every block in the same shell, as a reader's
# terminal would, so that the working directory, variables, functions, aliases and options carry
# from block to block. The harness (harness/src/engine/terminal.rs) drives it over stdin, one
# command per line, and reads one answer per command on stdout:
#   run N [in]  ->  done N STATUS PWD     runs $dir/N.sh with output in $dir/N.out, failing
#                                         commands in $dir/N.fail, stdin from $dir/N.in or /dev/null
# On exit (end of input, `exit` in a block, SIGTERM) the shell state is written to $dir/state,
# which a new terminal restores if this one has to be replaced. Names starting with __lb_ are
# this script's own and are never saved; `builtin` keeps a lab's functions named like builtins
# (a `cd` that also lists, say) out of the way.
__lb_dir=$1
set --
shopt -s expand_aliases
if [[ -f $__lb_dir/state ]]; then
  builtin source "$__lb_dir/state" >/dev/null 2>&1
fi
__lb_n=0
__lb_block=

# ERR: record the failing command and its line in the block (for a command inside a function,
# the line of the call in the block). Failures outside the block (the harness's own loop) are
# not recorded.
__lb_err() {
  local __lb_i __lb_line=0
  for __lb_i in "${!BASH_SOURCE[@]}"; do
    if [[ ${BASH_SOURCE[__lb_i]} == "$__lb_block" ]]; then
      if ((__lb_i == 1)); then __lb_line=$2; else __lb_line=${BASH_LINENO[__lb_i-1]}; fi
      break
    fi
  done
  if ((__lb_line > 0)); then
    builtin printf '%s\t%s\t%s\n' "$1" "$__lb_line" "${3//$'\n'/ }" >>"$__lb_dir/$__lb_n.fail"
  fi
}

# Writes everything a new terminal needs to continue where this one stopped.
__lb_dump() {
  local __lb_names __lb_v __lb_vars=() __lb_fns=() __lb_xfns=()
  builtin compgen -v >|"$__lb_dir/names"
  builtin mapfile -t __lb_names <"$__lb_dir/names"
  for __lb_v in "${__lb_names[@]}"; do
    case $__lb_v in
      BASH | BASHOPTS | BASHPID | BASH_* | COMP_WORDBREAKS | DIRSTACK | EPOCHREALTIME | \
        EPOCHSECONDS | EUID | FUNCNAME | GROUPS | HISTCMD | HOSTNAME | HOSTTYPE | LINENO | \
        MACHTYPE | OPTERR | OPTIND | OSTYPE | PIPESTATUS | PPID | PWD | RANDOM | SECONDS | \
        SHELLOPTS | SHLVL | SRANDOM | UID | _ | __lb_* | LABBOOK_*) ;;
      *) __lb_vars+=("$__lb_v") ;;
    esac
  done
  builtin compgen -A function >|"$__lb_dir/names"
  builtin mapfile -t __lb_names <"$__lb_dir/names"
  for __lb_v in "${__lb_names[@]}"; do
    case $__lb_v in
      __lb_*) ;;
      *) __lb_fns+=("$__lb_v") ;;
    esac
  done
  {
    builtin printf 'builtin cd -- %q\n' "$PWD"
    if ((${#__lb_vars[@]})); then builtin declare -p "${__lb_vars[@]}"; fi
    if ((${#__lb_fns[@]})); then
      builtin declare -f "${__lb_fns[@]}"
    fi
    builtin declare -Fx
    builtin alias -p
    builtin shopt -p
    builtin set +o
    builtin umask -p
  } >|"$__lb_dir/state.new" 2>/dev/null
  # Only a complete dump replaces the previous one.
  builtin printf '# labbook: end of state\n' >>"$__lb_dir/state.new"
}

trap '__lb_err "$?" "$LINENO" "$BASH_COMMAND"' ERR
# SIGINT (the harness stopping a watch, a timeout, Ctrl+C): leave the block, like Ctrl+C in a
# terminal drops what was pasted after the running command.
trap '__lb_interrupted=1; return 130 2>/dev/null' INT
trap 'exit 143' TERM
trap '__lb_dump' EXIT

while :; do
  IFS= builtin read -r __lb_cmd
  __lb_rc=$?
  if ((__lb_rc > 128)); then continue; fi
  if ((__lb_rc != 0)); then break; fi
  case $__lb_cmd in
    run\ *)
      __lb_n=${__lb_cmd#run }
      __lb_in=/dev/null
      case $__lb_n in
        *\ in) __lb_n=${__lb_n% in} __lb_in=$__lb_dir/$__lb_n.in ;;
      esac
      __lb_block=$__lb_dir/$__lb_n.sh
      __lb_interrupted=0
      builtin export LABBOOK_STEP="$LABBOOK_LAB.$__lb_n"
      builtin source "$__lb_block" <"$__lb_in" >|"$__lb_dir/$__lb_n.out" 2>&1
      __lb_rc=$?
      __lb_block=
      builtin printf 'done %s %s %s\n' "$__lb_n" "$__lb_rc" "$PWD"
      ;;
  esac
done
