#!/usr/bin/env bash
# Benchmark: `labbook plan` of one chapter with 3,000 runnable blocks, in release mode.
# Budget (issue 2): well under a second. Needs hyperfine (apt-get install -y hyperfine).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q -p labbook-harness
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

{
  echo "# Three thousand blocks"
  # The backticks are Markdown fences, not command substitutions.
  # shellcheck disable=SC2016
  for i in $(seq 1 3000); do
    printf '\n## Step %d\n\nRun the command:\n\n```bash\nkubectl get pods -l app=web-%d -o wide | grep Running\n```\n' "$i" "$i"
  done
} > "$work/many.md"

hyperfine --warmup 3 --runs 20 --export-markdown "$work/plan.md" \
  "target/release/labbook plan $work/many.md --format json" \
  "target/release/labbook plan $work/many.md"
cat "$work/plan.md"
