#!/usr/bin/env bash
# Starts the runner's registry mirror for the labs' kind clusters: a pull-through cache of
# Docker Hub (registry:2 with REGISTRY_PROXY_REMOTEURL), on kind's Docker network, as in kind's
# local-registry guide (https://kind.sigs.k8s.io/docs/user/local-registry/). Each lab's cluster
# then pulls docker.io images through it when labbook runs with
#   labbook run book --cluster kind --registry-mirror "$(ci/registry-mirror.sh)"
# (book/kind/cluster.yaml sets containerd's config_path; labbook writes each node's hosts.toml).
# Prints the mirror's URL as the nodes reach it. Idempotent: a running mirror is reused.
set -euo pipefail

name="${REGISTRY_MIRROR_NAME:-kind-registry}"
image="${REGISTRY_MIRROR_IMAGE:-registry:2.8.3}"

# kind uses an existing network named "kind"; creating it first lets the mirror join it before
# the first cluster exists.
docker network inspect kind >/dev/null 2>&1 || docker network create kind >/dev/null

if [ "$(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null || true)" != "true" ]; then
  docker run -d --restart=always --network kind --name "$name" \
    -e REGISTRY_PROXY_REMOTEURL=https://registry-1.docker.io \
    "$image" >/dev/null
fi
echo "http://$name:5000"
