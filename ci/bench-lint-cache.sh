#!/usr/bin/env bash
# Benchmark of the ShellCheck cache: `labbook lint` of a generated course of BLOCKS shell blocks
# (default 6,000, every block different), cold (empty cache) and warm (unchanged course, full
# cache), on disk and on tmpfs. The budget (issue 16): a warm lint of 6,000 blocks under 1 s.
# Not a test: run it by hand (needs hyperfine and shellcheck).
#
#   ci/bench-lint-cache.sh                               # release build
#   LABBOOK=target/debug/labbook ci/bench-lint-cache.sh  # a given binary
#   BLOCKS=6000 RUNS=5 TMPFS=/dev/shm ci/bench-lint-cache.sh
set -euo pipefail
cd "$(dirname "$0")/.."

blocks=${BLOCKS:-6000}
runs=${RUNS:-5}
tmpfs=${TMPFS:-/dev/shm}
bin=${LABBOOK:-}
if [ -z "$bin" ]; then
  cargo build --quiet --release -p labbook-harness
  bin=target/release/labbook
fi
bin=$(realpath "$bin")
for tool in hyperfine shellcheck; do
  command -v "$tool" >/dev/null || { echo "bench-lint-cache: $tool is not installed" >&2; exit 2; }
done

per_chapter=100
for place in disk tmpfs; do
  if [ "$place" = disk ]; then base=$(mktemp -d); else base=$(mktemp -d -p "$tmpfs"); fi
  trap 'rm -rf "$base"' EXIT
  mkdir -p "$base/course" "$base/cache"
  for c in $(seq 1 $((blocks / per_chapter))); do
    {
      printf '# Chapter %d\n\n' "$c"
      for b in $(seq 1 "$per_chapter"); do
        # shellcheck disable=SC2016 # backticks and $ here are Markdown and lab code
        printf '## Step %d\n\n```bash\nname="app-%d-%d"\necho "deploying $name"\nls /tmp/$name | wc -l\n```\n\n' "$b" "$c" "$b"
      done
    } >"$base/course/chapter-$c.md"
  done
  export XDG_CACHE_HOME=$base/cache
  # `|| true`: the lint exits 1 when it finds something, which is not what is measured here.
  # One --prepare per command: a single one would empty the cache before the warm runs too.
  hyperfine --warmup 1 --runs "$runs" --export-csv "$base/bench.csv" \
    --command-name "cold ($blocks blocks)" --prepare "rm -rf $base/cache/labbook" "$bin lint $base/course >/dev/null || true" \
    --command-name "warm ($blocks blocks)" --prepare "true" "$bin lint $base/course >/dev/null || true"
  awk -F, -v place="$place" '
    NR == 2 { c = $2 } NR == 3 { w = $2 }
    END { printf "%s: cold %.3f s, warm %.3f s (budget: warm under 1 s)\n", place, c, w }
  ' "$base/bench.csv" | tee -a "${RESULTS:-/dev/null}"
  rm -rf "$base"
  trap - EXIT
done
