#!/usr/bin/env bash
# Prints the labs workflow's job matrix as one line of JSON: every combination of the versions
# a book declares in book.toml (`[preprocessor.labbook.versions]`: kubernetes, istio) times
# SHARDS partitions (default 2). Without declared versions the pins of versions.env are the one
# combination (empty strings: the jobs then keep the pins).
#
#   ci/matrix.sh [BOOK_DIR]     {"include":[{"shard":1,"shards":2,"kubernetes":"v1.33.1","istio":"1.27.1"},…]}
set -euo pipefail

book="${1:-book}"
shards="${SHARDS:-2}"
case "$shards" in
  '' | *[!0-9]* | 0) echo "error: SHARDS must be a whole number above 0, not '$shards'" >&2; exit 2 ;;
esac
[ -f "$book/book.toml" ] || { echo "error: $book/book.toml is missing" >&2; exit 2; }

python3 - "$book/book.toml" "$shards" <<'PY'
import itertools, json, sys, tomllib

with open(sys.argv[1], "rb") as f:
    config = tomllib.load(f)
versions = config.get("preprocessor", {}).get("labbook", {}).get("versions", {})
kubernetes = versions.get("kubernetes") or [""]
istio = versions.get("istio") or [""]
shards = int(sys.argv[2])
include = [
    {"shard": shard, "shards": shards, "kubernetes": k, "istio": i}
    for k, i in itertools.product(kubernetes, istio)
    for shard in range(1, shards + 1)
]
print(json.dumps({"include": include}, separators=(",", ":")))
PY
