#!/usr/bin/env bash
# Peak memory of `labbook run --report` on a lab that prints MB megabytes (default 200) of step
# output, in 50 steps: the output streams to disk, and the run keeps a bounded part of it for its
# reports, so the peak must stay under BUDGET_MB (default 100). Measured with GNU time's maximum
# resident set size. A benchmark, never a test; use a release build.
#
#   ci/bench-memory.sh                     # builds target/release/labbook first
#   LABBOOK=target/release/labbook MB=200 BUDGET_MB=100 ci/bench-memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."

mb=${MB:-200}
budget_mb=${BUDGET_MB:-100}
bin=${LABBOOK:-}
if [ -z "$bin" ]; then
  cargo build --release -p labbook-harness
  bin=target/release/labbook
fi
[ -x /usr/bin/time ] || { echo "GNU time (/usr/bin/time) is not installed" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
steps=50
per_step=$((mb * 1000000 / steps))
{
  printf '# Output flood\n\n'
  for i in $(seq 1 "$steps"); do
    # shellcheck disable=SC2016 # backticks here are Markdown, not commands
    printf '## Step %d\n\n```bash\nhead -c %d /dev/zero | tr "\\\\0" "y"\n```\n\n' "$i" "$per_step"
  done
} >"$work/lab.md"
TMPDIR=$work /usr/bin/time -v "$bin" run "$work/lab.md" --report "$work/report" \
  >/dev/null 2>"$work/time.txt" || { cat "$work/time.txt" >&2; exit 1; }
peak_kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time.txt")
echo "peak memory: $((peak_kb / 1024)) MB for ${mb} MB of step output with --report (budget ${budget_mb} MB)"
[ "$((peak_kb / 1024))" -le "$budget_mb" ]
