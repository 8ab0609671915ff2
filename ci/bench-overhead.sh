#!/usr/bin/env bash
# Harness overhead benchmark (see "Budgets" in the design): a generated cluster-free lab of
# STEPS blocks (default 400), each `echo` + `true`, run by `labbook run` and by plain bash running
# the same commands in one script. The overhead per step is the difference of the mean wall times
# divided by the number of steps; the budget is 2 ms. Needs hyperfine (`apt-get install -y
# hyperfine`). This is a benchmark, never a test: run it on a quiet machine.
#
#   ci/bench-overhead.sh                 # builds target/release/labbook first
#   LABBOOK=target/debug/labbook ci/bench-overhead.sh
#   STEPS=400 RUNS=10 BUDGET_MS=2 ci/bench-overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."

steps=${STEPS:-400}
runs=${RUNS:-10}
budget_ms=${BUDGET_MS:-2}
bin=${LABBOOK:-}
if [ -z "$bin" ]; then
  cargo build --release -p labbook-harness
  bin=target/release/labbook
fi
command -v hyperfine >/dev/null || { echo "hyperfine is not installed" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
{
  printf '# Overhead\n\n'
  for i in $(seq 1 "$steps"); do
    # shellcheck disable=SC2016 # backticks here are Markdown, not commands
    printf '```bash\necho "step %d"\ntrue\n```\n\n' "$i"
  done
} >"$work/lab.md"
for i in $(seq 1 "$steps"); do
  printf 'echo "step %d"\ntrue\n' "$i"
done >"$work/lab.sh"

# Sanity check: the lab passes.
"$bin" run "$work/lab.md" 2>/dev/null || { echo "the generated lab failed" >&2; exit 1; }

hyperfine -N --warmup 2 --runs "$runs" --export-csv "$work/bench.csv" \
  --command-name bash "bash --noprofile --norc $work/lab.sh" \
  --command-name labbook "$bin run $work/lab.md"

awk -F, -v steps="$steps" -v budget="$budget_ms" '
  NR > 1 { mean[$1] = $2 }
  END {
    per_step = (mean["labbook"] - mean["bash"]) * 1000 / steps
    printf "overhead: %.3f ms per step over plain bash (%d steps; labbook %.3f s, bash %.3f s; budget %s ms)\n",
      per_step, steps, mean["labbook"], mean["bash"], budget
    exit (per_step <= budget ? 0 : 1)
  }' "$work/bench.csv"
