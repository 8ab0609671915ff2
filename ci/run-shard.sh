#!/usr/bin/env bash
# One job of the labs workflow's matrix: one shard of the course on kind, for one combination of
# versions, with the images it needs pulled once on this runner.
#
#   SHARD=1 SHARDS=4 KUBERNETES=v1.33.1 ISTIO=1.27.1 ci/run-shard.sh
#
# KUBERNETES and ISTIO (from ci/matrix.sh; empty keeps the pins of book/versions.env) become
# COURSE_KIND_NODE_IMAGE and COURSE_ISTIO_VERSION, which the course scripts and ci/versions.sh
# prefer to the pins, and `labbook run --versions`, which the report records. Every image
# `labbook images book` lists (but those held in a variable) is pulled into the runner's Docker
# first; `--preload` then loads each lab's images into its fresh cluster.
#
# Writes out/ (report.json, junit.xml, diagnostics, pending-snapshots/). Exits with the run's
# status. Environment: JOBS (labs at once, default 2), LABBOOK (the binary; built when unset),
# ACCEPT=1 (record mode), REGISTRY_MIRROR (a mirror URL for --registry-mirror).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
shard="${SHARD:?set SHARD (1..SHARDS)}"
shards="${SHARDS:?set SHARDS}"
if [ -n "${KUBERNETES:-}" ]; then
  case "$KUBERNETES" in
    */* | *:*) COURSE_KIND_NODE_IMAGE="$KUBERNETES" ;;
    v*) COURSE_KIND_NODE_IMAGE="kindest/node:$KUBERNETES" ;;
    *) COURSE_KIND_NODE_IMAGE="kindest/node:v$KUBERNETES" ;;
  esac
  export COURSE_KIND_NODE_IMAGE
fi
if [ -n "${ISTIO:-}" ]; then
  export COURSE_ISTIO_VERSION="$ISTIO"
fi
# shellcheck source=ci/versions.sh
. ci/versions.sh
load_versions "$root" KIND_NODE_IMAGE ISTIO_VERSION
export KIND_NODE_IMAGE

labbook=${LABBOOK:-}
if [ -z "$labbook" ]; then
  cargo build --release --locked -p labbook-harness
  labbook="$root/target/release/labbook"
fi

# Images pulled once per runner: the node image and every image the course names.
images="$("$labbook" images book --format json | python3 -c '
import json, sys
for image in json.load(sys.stdin)["images"]:
    if image["tag"] != "dynamic":
        print(image["image"])
')"
for image in $images "$KIND_NODE_IMAGE"; do
  docker pull --quiet "$image" >/dev/null || echo "warning: could not pre-pull $image" >&2
done

node="${KIND_NODE_IMAGE%%@*}"
versions="kubernetes=${node##*:},istio=$ISTIO_VERSION"
args=(run book --cluster kind --preload --jobs "${JOBS:-2}" --report out
  --partition "hash:$shard/$shards" --versions "$versions")
if [ -n "${REGISTRY_MIRROR:-}" ]; then
  args+=(--registry-mirror "$REGISTRY_MIRROR")
fi
if [ -n "${ACCEPT:-}" ]; then
  args+=(--accept)
fi

status=0
"$labbook" "${args[@]}" || status=$?

# shellcheck source=ci/report.sh
. ci/report.sh
collect_report "$labbook" "$status"
exit "$status"
