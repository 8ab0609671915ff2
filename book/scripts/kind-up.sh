#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Creates the course's kind cluster, or does nothing when it already exists.
# Honours KIND_CLUSTER_NAME and an exported KUBECONFIG (kind writes its context there).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

require kind kubectl

if kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER_NAME"; then
  log "kind cluster '$KIND_CLUSTER_NAME' already exists: nothing to create"
  if ! kubectl config get-contexts "kind-$KIND_CLUSTER_NAME" >/dev/null 2>&1; then
    log "adding its context to ${KUBECONFIG:-~/.kube/config}"
    kind export kubeconfig --name "$KIND_CLUSTER_NAME"
  fi
  if [ "$(kubectl config current-context 2>/dev/null || true)" != "kind-$KIND_CLUSTER_NAME" ]; then
    kubectl config use-context "kind-$KIND_CLUSTER_NAME"
  fi
else
  log "creating kind cluster '$KIND_CLUSTER_NAME' ($KIND_NODE_IMAGE)"
  kind create cluster \
    --name "$KIND_CLUSTER_NAME" \
    --image "$KIND_NODE_IMAGE" \
    --config "$BOOK_DIR/kind/cluster.yaml" \
    --wait 180s
fi

require_course_context
log "waiting for the node and cluster DNS"
kubectl wait --for=condition=Ready nodes --all --timeout=180s
kubectl -n kube-system rollout status deployment/coredns --timeout=180s
log "cluster '$KIND_CLUSTER_NAME' is ready (context kind-$KIND_CLUSTER_NAME)"
