#!/usr/bin/env bash
# Benchmark of how a run's cost grows with the size of the course: generated cluster-free books
# of 20 and 200 trivial labs (4 one-line steps each, every step with an accepted snapshot in
# snapshots/), run by `labbook run`. The budget (issue 16): 200 labs take at most 10x what 20
# take, on disk and on tmpfs. Not a test: run it by hand on a quiet machine (needs hyperfine).
#
#   ci/bench-labs.sh                               # release build
#   LABBOOK=target/debug/labbook ci/bench-labs.sh  # a given binary
#   SMALL=20 LARGE=200 RUNS=10 TMPFS=/dev/shm ci/bench-labs.sh
set -euo pipefail
cd "$(dirname "$0")/.."

small=${SMALL:-20}
large=${LARGE:-200}
runs=${RUNS:-10}
tmpfs=${TMPFS:-/dev/shm}
bin=${LABBOOK:-}
if [ -z "$bin" ]; then
  cargo build --quiet --release -p labbook-harness
  bin=target/release/labbook
fi
bin=$(realpath "$bin")
command -v hyperfine >/dev/null || { echo "bench-labs: hyperfine is not installed" >&2; exit 2; }

# book LABS DIR: a book of LABS chapters with their accepted snapshots.
book() {
  local labs=$1 dir=$2
  mkdir -p "$dir/src"
  printf '[book]\ntitle = "bench"\n' >"$dir/book.toml"
  printf '# Summary\n\n' >"$dir/src/SUMMARY.md"
  for i in $(seq 1 "$labs"); do
    printf -- '- [Lab %d](lab-%d.md)\n' "$i" "$i" >>"$dir/src/SUMMARY.md"
    {
      printf '# Lab %d\n\n' "$i"
      for s in 1 2 3 4; do
        # shellcheck disable=SC2016 # backticks here are Markdown, not commands
        printf '## Verify step %d\n\n```bash\necho "lab %d step %d"\n```\n\n' "$s" "$i" "$s"
      done
    } >"$dir/src/lab-$i.md"
  done
  "$bin" run "$dir" --accept >/dev/null 2>&1 || { echo "bench-labs: the generated book failed" >&2; exit 1; }
}

for place in disk tmpfs; do
  if [ "$place" = disk ]; then base=$(mktemp -d); else base=$(mktemp -d -p "$tmpfs"); fi
  trap 'rm -rf "$base"' EXIT
  book "$small" "$base/small"
  book "$large" "$base/large"
  # The sandboxes go where the book is: TMPDIR decides where `labbook run` puts its run folder.
  TMPDIR=$base hyperfine -N --warmup 1 --runs "$runs" --export-csv "$base/bench.csv" \
    --command-name "$small labs" "$bin run $base/small" \
    --command-name "$large labs" "$bin run $base/large"
  awk -F, -v place="$place" -v small="$small" -v large="$large" '
    NR == 2 { s = $2 } NR == 3 { l = $2 }
    END { printf "%s: %d labs %.3f s, %d labs %.3f s, ratio %.1f (budget 10)\n", place, small, s, large, l, l / s }
  ' "$base/bench.csv" | tee -a "${RESULTS:-/dev/null}"
  rm -rf "$base"
  trap - EXIT
done
