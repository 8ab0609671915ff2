#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Shared helpers for the course scripts. Source it; do not run it.
# It loads the pinned versions and puts the course's own tools first on PATH.

BOOK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_BIN="$BOOK_DIR/.tools/bin"
export BOOK_DIR TOOLS_BIN

# shellcheck source=../versions.env
. "$BOOK_DIR/versions.env"
# A job of CI's version matrix runs another combination than the pins (ci/versions.sh).
KIND_NODE_IMAGE="${COURSE_KIND_NODE_IMAGE:-$KIND_NODE_IMAGE}"
ISTIO_VERSION="${COURSE_ISTIO_VERSION:-$ISTIO_VERSION}"

KIND_CLUSTER_NAME="${KIND_CLUSTER_NAME:-labbook-course}"
export KIND_CLUSTER_NAME
export PATH="$TOOLS_BIN:$PATH"

log() {
  printf '==> %s\n' "$*" >&2
}

die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

require() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not installed: run 'make tools' (installs into .tools/bin)"
  done
}

# Refuse to touch any cluster but the course's own kind cluster.
require_course_context() {
  local current
  current="$(kubectl config current-context 2>/dev/null || true)"
  if [ "$current" != "kind-$KIND_CLUSTER_NAME" ]; then
    die "the current kubectl context is '${current:-none}', not 'kind-$KIND_CLUSTER_NAME': run 'make kind-up' first (set KIND_CLUSTER_NAME to use another course cluster)"
  fi
}
