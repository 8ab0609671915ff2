# The labbook terminal: one bash per lab that runs every block in the same shell, as a reader's
# terminal would, so that the working directory, variables, functions, aliases and options carry
# from block to block. The harness (harness/src/engine/terminal.rs) drives it over stdin and reads
# NUL-terminated records on stdout; no file is created per step, because creating a file costs
# more than running a trivial step:
#   HEADER<LEN bytes of code>   (HEADER: `__labbook_f=FLAGS,__labbook_len=LEN,__labbook_n=N`
#     padded with spaces to 63 bytes and a newline, read at once and evaluated as arithmetic)
#     runs the code (sent over the pipe; no file per step) with output appended to $dir/out, or to
#     $dir/N.out with flag 4 (a background step, whose output keeps growing), stdin from $dir/N.in
#     with flag 2, else /dev/null; flag 8 records the working folder of each command (pwd
#     records); flag 1: the code is not ASCII (its length in characters is not LEN).
#   answers:  fail N STATUS LINE PIPESTATUS COMMAND   a failing command (ERR trap)
#             pwd N LINE PWD COMMAND                  with flag 8, before each command
#             done N STATUS STARTED PWD               the block ended; STARTED is 0 when it
#                                                     could not even be started, else 1
# PWD is empty while a lab has unset it.
# LINE is the line in the block (1 = its first line); the harness maps it to the Markdown line.
# On exit (`exit` in a block, SIGTERM; not at the end of input, which ends the lab) the shell
# state is written to $dir/state, which a new terminal restores if this one has to be replaced.
#
# Nothing here can be hidden by the lab: the traps are inline code that calls no function, the
# only function (`trap`, which chains a lab's own ERR/EXIT/INT/TERM handlers after the harness's
# instead of replacing them) is read-only, `builtin` keeps a lab's functions named like builtins
# out of the way, and names starting with __labbook_ are never saved.
__labbook_dir=$1
set --
# fd 62: the records channel, also reachable from inside a block whose stdout is redirected.
exec 62>&1
shopt -s expand_aliases
# fd 61: the lab's shared output file, opened once (appending costs nothing, creating a file
# per step costs a millisecond on some disks).
exec 61>>"$__labbook_dir/out"
# fd 60: a block's stdin when it has no input, opened once (opening /dev/null for every block
# costs about 10 µs, a twentieth of a step).
exec 60</dev/null
__labbook_n=0
# Every block runs as `eval` of its code inside this one file, sourced: sourcing makes the block's
# `return` (and the SIGINT handler's) leave the block, and keeps `declare` global; `eval` of the
# code costs a tenth of sourcing it from a pipe. The eval sits on line 1, so that LINENO is the
# line in the block.
__labbook_block=$__labbook_dir/block
__labbook_eval='builtin eval -- "$__labbook_code"'
# The file is the same in every lab, and a recycled run folder still holds it: rewriting it would
# make ext4 write it to disk at once (a truncated file is flushed when it is closed).
IFS= builtin read -r -d '' __labbook_x 2>/dev/null <"$__labbook_block"
[[ ${__labbook_x-} == "$__labbook_eval"$'\n' ]] || builtin printf '%s\n' "$__labbook_eval" >|"$__labbook_block"

builtin declare -A __labbook_own __labbook_lab
# ERR: record the failing command and its line in the block (for a command inside a function,
# the line of the call in the block: the outermost frame of the block). Failures outside the block
# (the harness's own loop) are not recorded. The first assignment keeps $?, PIPESTATUS and
# LINENO before anything else changes them (LINENO counts the trap's own lines).
__labbook_own[ERR]='__labbook_e=$? __labbook_p=${PIPESTATUS[*]} __labbook_t=$LINENO
__labbook_found=
__labbook_i=${#BASH_SOURCE[@]}
while ((__labbook_i > 0)); do
  __labbook_i=$((__labbook_i - 1))
  if [[ ${BASH_SOURCE[__labbook_i]} == "$__labbook_block" && $BASH_COMMAND != "$__labbook_eval" ]]; then
    if ((__labbook_i == 0)); then __labbook_l=$__labbook_t; else __labbook_l=${BASH_LINENO[__labbook_i-1]}; fi
    builtin printf "fail\t%s\t%s\t%s\t%s\t%s\0" "$__labbook_n" "$__labbook_e" "$__labbook_l" "$__labbook_p" "$BASH_COMMAND" >&62
    __labbook_found=1
    break
  fi
done'
# Writes everything a new terminal needs to continue where this one stopped; only a complete
# dump replaces the previous one.
__labbook_own[EXIT]='if [[ -z ${__labbook_eof-} ]]; then
builtin compgen -v >|"$__labbook_dir/names"
builtin mapfile -t __labbook_names <"$__labbook_dir/names"
__labbook_vars=()
for __labbook_v in "${__labbook_names[@]}"; do
  case $__labbook_v in
    BASH | BASHOPTS | BASHPID | BASH_* | COMP_WORDBREAKS | DIRSTACK | EPOCHREALTIME | \
      EPOCHSECONDS | EUID | FUNCNAME | GROUPS | HISTCMD | HOSTNAME | HOSTTYPE | LINENO | \
      MACHTYPE | OPTERR | OPTIND | OSTYPE | PIPESTATUS | PPID | PWD | RANDOM | SECONDS | \
      SHELLOPTS | SHLVL | SRANDOM | UID | _ | __labbook_* | LABBOOK_*) ;;
    *) __labbook_vars+=("$__labbook_v") ;;
  esac
done
builtin compgen -A function >|"$__labbook_dir/names"
builtin mapfile -t __labbook_names <"$__labbook_dir/names"
__labbook_fns=()
for __labbook_v in "${__labbook_names[@]}"; do
  case $__labbook_v in
    trap) ;;
    *) __labbook_fns+=("$__labbook_v") ;;
  esac
done
{
  builtin printf "builtin cd -- %q\n" "${PWD-$(builtin pwd)}"
  if ((${#__labbook_vars[@]})); then builtin declare -p "${__labbook_vars[@]}"; fi
  if ((${#__labbook_fns[@]})); then builtin declare -f "${__labbook_fns[@]}"; fi
  builtin declare -Fx
  builtin alias -p
  builtin shopt -p
  builtin set +o
  builtin umask -p
  for __labbook_v in "${!__labbook_lab[@]}"; do
    builtin printf "trap -- %q %s\n" "${__labbook_lab[$__labbook_v]}" "$__labbook_v"
  done
} >|"$__labbook_dir/state.new" 2>/dev/null
builtin printf "# labbook: end of state\n" >>"$__labbook_dir/state.new"
fi'
# SIGINT (the harness stopping a watch, a timeout, Ctrl+C): leave the block, like Ctrl+C in a
# terminal drops what was pasted after the running command.
__labbook_own[INT]='builtin return 130 2>/dev/null'
__labbook_own[TERM]='builtin exit 143'

# A lab's `trap ACTION SIG...`: for the signals the harness needs, the lab's action runs together
# with the harness's own (ERR: after it, with $? restored, for failures in the lab's code only;
# EXIT, INT, TERM: before it).
trap() {
  if [[ ${1-} == -- ]]; then builtin shift; fi
  if (($# == 0)) || [[ $1 == -* && $1 != - ]]; then
    builtin trap "$@"
    builtin return
  fi
  builtin local __labbook_a="$1" __labbook_s __labbook_k __labbook_rc=0
  if (($# == 1)); then __labbook_a=-; else builtin shift; fi
  for __labbook_s in "$@"; do
    case ${__labbook_s^^} in
      ERR | SIGERR) __labbook_k=ERR ;;
      EXIT | SIGEXIT | 0) __labbook_k=EXIT ;;
      INT | SIGINT | 2) __labbook_k=INT ;;
      TERM | SIGTERM | 15) __labbook_k=TERM ;;
      *)
        builtin trap -- "$__labbook_a" "$__labbook_s" || __labbook_rc=$?
        builtin continue
        ;;
    esac
    if [[ $__labbook_a == - || -z $__labbook_a ]]; then
      builtin unset "__labbook_lab[$__labbook_k]"
      builtin trap -- "${__labbook_own[$__labbook_k]}" "$__labbook_k"
    else
      __labbook_lab[$__labbook_k]=$__labbook_a
      case $__labbook_k in
        # Only for the lab's own commands, not for the harness's loop.
        ERR) builtin trap -- "${__labbook_own[ERR]}"$'\n''if [[ -n $__labbook_found ]]; then (builtin exit "$__labbook_e")'$'\n'"$__labbook_a"$'\n''fi' ERR ;;
        *) builtin trap -- "$__labbook_a"$'\n'"${__labbook_own[$__labbook_k]}" "$__labbook_k" ;;
      esac
    fi
  done
  builtin return "$__labbook_rc"
}
builtin readonly -f trap

for __labbook_k in ERR EXIT INT TERM; do
  builtin trap -- "${__labbook_own[$__labbook_k]}" "$__labbook_k"
done
# The previous shell's state, its traps going through `trap` above.
if [[ -f $__labbook_dir/state ]]; then
  builtin source "$__labbook_dir/state" >/dev/null 2>&1
fi
__labbook_wtrap='if [[ ${BASH_SOURCE[0]-} == "$__labbook_block" && $BASH_COMMAND != "$__labbook_eval" ]]; then builtin printf "pwd\t%s\t%s\t%s\t%s\0" "$__labbook_n" "$LINENO" "${PWD-}" "$BASH_COMMAND" >&62; fi'

# Costs below are in instructions of bash per block, which a trivial block (`echo`; `true`) runs
# about 300,000 of: every command the loop saves is a step's worth of microseconds.
# The loop reads no variable a lab may unset (under `set -u` that would end the shell): the lab's
# token is kept here, and an unset PWD (until the lab's next `cd`) is reported empty, which the
# harness reads as "where the block before was". Asking bash with $(builtin pwd) as the default
# would cost every block 40,000 instructions: bash parses the substitution at each expansion.
__labbook_token=$LABBOOK_LAB
while :; do
  # The next block usually follows within microseconds: wait for it awake, because a shell that
  # sleeps is woken up late (on virtual machines, by more than a trivial step costs).
  builtin read -t 0 || {
    __labbook_i=0
    until builtin read -t 0 || ((++__labbook_i > 200)); do :; done
  }
  # One read of the fixed-width header: a line would be read from the pipe one byte per system
  # call. `read -N` keeps every character (IFS does not apply to it, and an `IFS=` prefix makes
  # bash rebuild the exported environment afterwards: 45,000 instructions). A status above 128:
  # a signal interrupted the read; any other failure is the end of input: the lab is over,
  # nobody will restore this shell's state.
  builtin read -r -N 64 __labbook_head || {
    (($? > 128)) && continue
    __labbook_eof=1
    break
  }
  # The header is an arithmetic expression (`__labbook_f=F,__labbook_len=LEN,__labbook_n=N`,
  # padded with spaces) that sets the block's flags, length and number at once: cutting it up
  # with ${head:offset:length} costs three times as much. It also clears __labbook_ok: a block
  # that lowered `ulimit -n` (or closed our descriptors) leaves a shell that cannot redirect any
  # more, and the block never runs; the last redirection's word sets __labbook_ok to 1 only when
  # the ones before it worked (bash expands it just before applying it).
  ((__labbook_ok = 0, __labbook_head)) || :
  # Exported for every block (a plain assignment would cost 14,000 instructions less, but after a
  # block's `unset LABBOOK_STEP` the steps that follow would start processes without it).
  builtin export LABBOOK_STEP=$__labbook_token.$__labbook_n
  # Most blocks (flags 0): ASCII, no input, the shared output, no working folders; and the block
  # file is still there. The `done` record takes the block's status straight from `$?`.
  if [[ $__labbook_f == 0 && -f $__labbook_block ]]; then
    builtin read -r -N "$__labbook_len" __labbook_code
    builtin source "$__labbook_block" <&60 >&61 2>&$((__labbook_ok = 1))
    builtin printf 'done\t%s\t%s\t%s\t%s\0' "$__labbook_n" "$?" "$__labbook_ok" "${PWD-}"
    continue
  fi
  # `read -N` counts characters: LEN is in bytes, which are characters only in the C locale
  # unless the block is ASCII (flag 1: it is not). Switching the locale costs as much as a step.
  if ((__labbook_f & 1)); then
    LC_ALL=C builtin read -r -N "$__labbook_len" __labbook_code
  else
    builtin read -r -N "$__labbook_len" __labbook_code
  fi
  # A block that removed the file would otherwise leave every later block unrun.
  [[ -f $__labbook_block ]] || builtin printf '%s\n' "$__labbook_eval" >|"$__labbook_block"
  # Flag 2: the block's input is in N.in.
  __labbook_in=/dev/null
  if ((__labbook_f & 2)); then __labbook_in=$__labbook_dir/$__labbook_n.in; fi
  # Flag 8: record the working folder of each command. The DEBUG trap reaches a sourced file
  # only under functrace (set -T).
  __labbook_ft=
  if ((__labbook_f & 8)); then
    [[ $- == *T* ]] || __labbook_ft=1
    builtin set -T
    builtin trap -- "$__labbook_wtrap" DEBUG
  fi
  # Flag 4: a background block, whose output has a file of its own (it keeps growing).
  if ((__labbook_f & 4)); then
    builtin source "$__labbook_block" <"$__labbook_in" >|"$__labbook_dir/$__labbook_n.out" 2>&$((__labbook_ok = 1))
  else
    builtin source "$__labbook_block" <"$__labbook_in" >&61 2>&$((__labbook_ok = 1))
  fi
  __labbook_rc=$?
  if ((__labbook_f & 8)); then
    builtin trap - DEBUG
    [[ -z $__labbook_ft ]] || builtin set +T
  fi
  builtin printf 'done\t%s\t%s\t%s\t%s\0' "$__labbook_n" "$__labbook_rc" "$__labbook_ok" "${PWD-}"
done
