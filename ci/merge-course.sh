#!/usr/bin/env bash
# The labs workflow's merge job: one report from the reports of every shard of every version
# combination (each lab keeps one entry per combination), then the book built from it.
#
#   ci/merge-course.sh SHARD_DIR...
#
# Writes out/merged (report.json, junit.xml, diagnostics), book/report.json and the built book
# in book/book. Exits 1 when a lab failed in any shard (the book is built either way), 2 when the
# reports cannot be merged. Environment: LABBOOK (the binary; built when unset).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
[ "$#" -gt 0 ] || { echo "usage: ci/merge-course.sh SHARD_DIR..." >&2; exit 2; }
dirs=()
for dir in "$@"; do dirs+=("$(cd "$dir" && pwd)"); done
cd "$root"

labbook=${LABBOOK:-}
if [ -z "$labbook" ]; then
  cargo build --release --locked -p labbook-harness
  labbook="$root/target/release/labbook"
fi

rm -rf out/merged
"$labbook" report merge "${dirs[@]}" --out out/merged
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  "$labbook" report summary out/merged >>"$GITHUB_STEP_SUMMARY" || true
fi
cp out/merged/report.json book/report.json
"$labbook" build book

status=0
if python3 -c 'import json,sys; sys.exit(any(l["status"] != "passed" for l in json.load(open(sys.argv[1]))["labs"]))' out/merged/report.json; then
  status=0
else
  status=1
fi
exit "$status"
