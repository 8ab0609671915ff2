# shellcheck shell=bash
# Sourced by the CI scripts: loads the tool versions the course pins in book/versions.env and
# stops with a clear message when the file or one of the needed variables is missing.
#
#   load_versions ROOT VAR...   sources ROOT/book/versions.env, exports its variables, and
#                               checks that each VAR is set and not empty
#
# A job of the version matrix (ci/run-shard.sh) runs another combination than the pins: it sets
# COURSE_KIND_NODE_IMAGE and COURSE_ISTIO_VERSION, which win over KIND_NODE_IMAGE and
# ISTIO_VERSION here and in book/scripts/lib.sh.

load_versions() {
  local root="$1"
  shift
  local file="$root/book/versions.env"
  if [ ! -f "$file" ]; then
    echo "error: $file is missing; it pins the course's tools (KIND_VERSION, KIND_NODE_IMAGE, KUBECTL_VERSION, ISTIO_VERSION)" >&2
    return 1
  fi
  set -a
  # shellcheck source=/dev/null
  . "$file"
  KIND_NODE_IMAGE="${COURSE_KIND_NODE_IMAGE:-${KIND_NODE_IMAGE:-}}"
  ISTIO_VERSION="${COURSE_ISTIO_VERSION:-${ISTIO_VERSION:-}}"
  set +a
  local missing=() var
  for var in "$@"; do
    if [ -z "${!var:-}" ]; then missing+=("$var"); fi
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "error: $file does not set ${missing[*]}" >&2
    return 1
  fi
}
