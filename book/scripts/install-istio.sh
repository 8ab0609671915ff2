#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Installs Istio in sidecar mode from istio/install.yaml with the pinned istioctl,
# or only waits for it when the pinned version is already installed.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

require kubectl istioctl
require_course_context

client="$(istioctl version --remote=false 2>/dev/null | awk 'NR == 1 { print $NF }')"
if [ "$client" != "$ISTIO_VERSION" ]; then
  die "istioctl on PATH is '${client:-unknown}', the course pins $ISTIO_VERSION: run 'make tools'"
fi

installed="$(kubectl -n istio-system get deployment istiod \
  -o jsonpath='{.spec.template.spec.containers[0].image}' 2>/dev/null || true)"
case "$installed" in
  *":$ISTIO_VERSION")
    log "Istio $ISTIO_VERSION is already installed: nothing to install"
    ;;
  *)
    log "installing Istio $ISTIO_VERSION (sidecar mode, overlay istio/install.yaml)"
    istioctl install -y -f "$BOOK_DIR/istio/install.yaml"
    ;;
esac

log "waiting for istiod"
kubectl -n istio-system rollout status deployment/istiod --timeout=300s
log "Istio $ISTIO_VERSION is ready"
