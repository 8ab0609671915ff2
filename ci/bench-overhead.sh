#!/usr/bin/env bash
# Harness overhead benchmark (see "Budgets" in the design): a generated cluster-free lab of N
# blocks, each `echo` + `true`, run by `labbook run` and by plain bash running the same commands
# in one script. The overhead per step is the difference of the mean wall times divided by the
# number of steps; the budget is 0.25 ms on a normal disk. Each size is measured with the lab and
# labbook's temporary folder (its sandboxes and control files) on disk and on tmpfs, so that a
# cost of creating files shows as the difference between the two. Needs hyperfine (`apt-get
# install -y hyperfine`). This is a benchmark, never a test: run it on a quiet machine, with a
# release build.
#
#   ci/bench-overhead.sh                           # builds target/release/labbook first
#   LABBOOK=target/release/labbook ci/bench-overhead.sh
#   STEPS="100 400 2000" RUNS=10 BUDGET_MS=0.25 ci/bench-overhead.sh
#   DISK=/var/tmp TMPFS=/dev/shm ci/bench-overhead.sh
#
# Exits 1 when the 400-step overhead on disk (or the only size measured) is over the budget.
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=${STEPS:-100 400 2000}
runs=${RUNS:-10}
budget_ms=${BUDGET_MS:-0.25}
disk=${DISK:-/var/tmp}
tmpfs=${TMPFS:-/dev/shm}
bin=${LABBOOK:-}
if [ -z "$bin" ]; then
  cargo build --release -p labbook-harness
  bin=target/release/labbook
fi
bin=$(realpath "$bin")
command -v hyperfine >/dev/null || { echo "hyperfine is not installed" >&2; exit 2; }

status=0
# Writes the lab and the same commands as a script into $1.
generate() {
  local dir=$1 steps=$2 i
  {
    printf '# Overhead\n\n'
    for i in $(seq 1 "$steps"); do
      # shellcheck disable=SC2016 # backticks here are Markdown, not commands
      printf '```bash\necho "step %d"\ntrue\n```\n\n' "$i"
    done
  } >"$dir/lab.md"
  for i in $(seq 1 "$steps"); do
    printf 'echo "step %d"\ntrue\n' "$i"
  done >"$dir/lab.sh"
}

# Measures one size in one place; prints the overhead line, and returns 1 over the budget.
measure() {
  local place=$1 where=$2 steps=$3 work
  if [ ! -d "$where" ] || [ ! -w "$where" ]; then
    echo "$place: $where is not a writable folder; skipped"
    return 0
  fi
  work=$(mktemp -d "$where/labbook-bench-XXXXXX")
  generate "$work" "$steps"
  # Sanity check: the lab passes.
  TMPDIR=$work "$bin" run "$work/lab.md" >/dev/null 2>&1 || {
    echo "the generated lab failed" >&2
    rm -rf "$work"
    exit 1
  }
  TMPDIR=$work hyperfine -N --style basic --warmup 2 --runs "$runs" --export-csv "$work/bench.csv" \
    --command-name bash "bash --noprofile --norc $work/lab.sh" \
    --command-name labbook "$bin run $work/lab.md" >/dev/null
  awk -F, -v steps="$steps" -v budget="$budget_ms" -v place="$place" -v where="$where" '
    NR > 1 { mean[$1] = $2 }
    END {
      per_step = (mean["labbook"] - mean["bash"]) * 1000 / steps
      printf "%-5s (%s) %5d steps: overhead %.3f ms per step (labbook %.3f s, bash %.3f s; budget %s ms)\n",
        place, where, steps, per_step, mean["labbook"], mean["bash"], budget
      exit (per_step <= budget ? 0 : 1)
    }' "$work/bench.csv" || { rm -rf "$work"; return 1; }
  rm -rf "$work"
}

for steps in $sizes; do
  for place in disk tmpfs; do
    where=$disk
    [ "$place" = tmpfs ] && where=$tmpfs
    if ! measure "$place" "$where" "$steps"; then
      # The budget holds on disk for the 400-step lab (or the only size asked for).
      if [ "$place" = disk ] && { [ "$steps" = 400 ] || [ "$sizes" = "$steps" ]; }; then
        status=1
      fi
    fi
  done
done
exit "$status"
