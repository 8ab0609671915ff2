#!/usr/bin/env bash
# Rehearses the labs workflow's matrix on this machine, without a cluster: the cluster-free
# sample course (fixtures/sample-course) runs once in one job, then as two version combinations
# × two hash shards, run side by side as the matrix's jobs would; the shards are merged (each
# combination kept apart) and the book is built from the merged report. Prints the wall time of
# the one job and of the two shards of one combination. CI runs it before the kind matrix.
#
#   ci/matrix-local.sh [WORK_DIR]        (default: a temporary folder, removed at the end)
#
# Environment: LABBOOK (the binary; built when unset).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
labbook=${LABBOOK:-}
if [ -z "$labbook" ]; then
  (cd "$root" && cargo build --release --locked -p labbook-harness)
  labbook="$root/target/release/labbook"
fi
labbook=$(cd "$(dirname "$labbook")" && pwd)/$(basename "$labbook")

if [ -n "${1:-}" ]; then
  work=$(mkdir -p "$1" && cd "$1" && pwd)
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
rm -rf "$work/course" "$work/one" "$work/shards" "$work/merged"
cp -R "$root/fixtures/sample-course" "$work/course"
cd "$work"

now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }

start=$(now)
"$labbook" run course --cluster none --report one >one.log 2>&1
one=$(ms "$start" "$(now)")

combos=("kubernetes=v1.33.1,istio=1.26.2" "kubernetes=v1.33.1,istio=1.27.1")
dirs=()
sharded=0
mkdir -p shards
for c in 0 1; do
  start=$(now)
  pids=()
  for shard in 1 2; do
    dir="shards/$c-$shard"
    dirs+=("$dir")
    "$labbook" run course --cluster none --partition "hash:$shard/2" \
      --versions "${combos[$c]}" --report "$dir" >"$dir.log" 2>&1 &
    pids+=("$!")
  done
  for pid in "${pids[@]}"; do
    wait "$pid" || { echo "error: a shard failed; see $work/shards/*.log" >&2; exit 1; }
  done
  elapsed=$(ms "$start" "$(now)")
  [ "$c" -eq 0 ] && sharded=$elapsed
done

"$labbook" report merge "${dirs[@]}" --out course/merged >/dev/null
printf 'report = "merged/report.json"\n' >>course/book.toml
"$labbook" build course >build.log 2>&1
grep -q 'class="labbook-versions"' course/book/pods.html || {
  echo "error: the built book shows no version table" >&2
  exit 1
}
echo "one job: ${one} ms; two shards side by side: ${sharded} ms (sample course, --cluster none)"
