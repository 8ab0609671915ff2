#!/usr/bin/env bash
# Installs the kind, kubectl and istioctl versions pinned in book/versions.env into BIN_DIR, on a
# GitHub runner or a maintainer's machine (Linux or macOS, amd64 or arm64). Every download is
# checked against the checksum its project publishes.
#
#   ci/install-tools.sh BIN_DIR      then put BIN_DIR first on PATH
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=ci/versions.sh
. "$root/ci/versions.sh"
load_versions "$root" KIND_VERSION KUBECTL_VERSION ISTIO_VERSION

if [ "$#" -ne 1 ]; then
  echo "usage: ci/install-tools.sh BIN_DIR" >&2
  exit 2
fi
bin=$1

case "$(uname -s)" in
  Linux) os=linux istio_os=linux ;;
  Darwin) os=darwin istio_os=osx ;;
  *) echo "error: unsupported system $(uname -s)" >&2; exit 1 ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "error: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac

# The projects spell their versions differently: kind and kubectl with a leading v, Istio without.
kind_tag="v${KIND_VERSION#v}"
kubectl_tag="v${KUBECTL_VERSION#v}"
istio_tag="${ISTIO_VERSION#v}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

download() {
  curl --fail --silent --show-error --location --retry 3 --output "$2" "$1"
}

# Checks that FILE has the sha256 EXPECTED.
verify() {
  local file=$1 expected=$2 actual
  if command -v sha256sum >/dev/null 2>&1; then
    actual=$(sha256sum "$file" | cut -d' ' -f1)
  else
    actual=$(shasum -a 256 "$file" | cut -d' ' -f1)
  fi
  if [ "$actual" != "$expected" ]; then
    echo "error: checksum mismatch for $file: expected $expected, got $actual" >&2
    exit 1
  fi
}

# Downloads URL to $tmp/FILE and checks it against the checksum published beside it at
# URL+SUFFIX (kind names it .sha256sum, kubectl and Istio .sha256; the hash is the first field).
fetch() {
  local url=$1 file=$2 suffix=$3
  download "$url" "$tmp/$file"
  download "$url$suffix" "$tmp/$file$suffix"
  verify "$tmp/$file" "$(cut -d' ' -f1 "$tmp/$file$suffix")"
}

mkdir -p "$bin"

echo "kind $kind_tag"
fetch "https://github.com/kubernetes-sigs/kind/releases/download/$kind_tag/kind-$os-$arch" kind .sha256sum
install -m 0755 "$tmp/kind" "$bin/kind"

echo "kubectl $kubectl_tag"
fetch "https://dl.k8s.io/release/$kubectl_tag/bin/$os/$arch/kubectl" kubectl .sha256
install -m 0755 "$tmp/kubectl" "$bin/kubectl"

echo "istioctl $istio_tag"
archive="istioctl-$istio_tag-$istio_os-$arch.tar.gz"
fetch "https://github.com/istio/istio/releases/download/$istio_tag/$archive" "$archive" .sha256
tar -xzf "$tmp/$archive" -C "$tmp" istioctl
install -m 0755 "$tmp/istioctl" "$bin/istioctl"

"$bin/kind" version
"$bin/kubectl" version --client
"$bin/istioctl" version --remote=false
