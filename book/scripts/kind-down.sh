#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Deletes the course's kind cluster; does nothing when there is none.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

require kind

if kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER_NAME"; then
  kind delete cluster --name "$KIND_CLUSTER_NAME"
else
  log "no kind cluster named '$KIND_CLUSTER_NAME': nothing to delete"
fi
