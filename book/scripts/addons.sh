#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Installs (apply) or removes (delete) the Prometheus and Kiali addons shipped with the
# pinned Istio release. Usage: addons.sh apply|delete
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

require kubectl
require_course_context

base="https://raw.githubusercontent.com/istio/istio/$ISTIO_VERSION/samples/addons"
addons="prometheus kiali"

case "${1:-}" in
  apply)
    for addon in $addons; do
      log "installing $addon from Istio $ISTIO_VERSION"
      kubectl apply -f "$base/$addon.yaml"
    done
    for addon in $addons; do
      kubectl -n istio-system rollout status "deployment/$addon" --timeout=300s
    done
    log "Prometheus and Kiali are ready in istio-system"
    ;;
  delete)
    for addon in $addons; do
      log "removing $addon"
      kubectl delete -f "$base/$addon.yaml" --ignore-not-found
    done
    ;;
  *)
    die "usage: $0 apply|delete"
    ;;
esac
