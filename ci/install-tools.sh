#!/usr/bin/env bash
# Installs the kind, kubectl and istioctl versions pinned in book/versions.env into BIN_DIR, on a
# GitHub runner, a maintainer's machine or a course reader's (`make tools` in book/ runs it with
# book/.tools/bin); Linux or macOS, amd64 or arm64. A tool already in BIN_DIR at its pinned
# version is kept; every download is checked against the checksum its project publishes.
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
  Linux) os=linux ;;
  Darwin) os=darwin ;;
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
  local url=$1 file=$2 suffix=$3 expected
  download "$url" "$tmp/$file"
  download "$url$suffix" "$tmp/$file$suffix"
  expected=$(cut -d' ' -f1 "$tmp/$file$suffix")
  if [ -z "$expected" ]; then
    echo "error: no checksum in $url$suffix" >&2
    exit 1
  fi
  verify "$tmp/$file" "$expected"
}

mkdir -p "$bin"

if "$bin/kind" version 2>/dev/null | grep -q " $kind_tag "; then
  echo "kind $kind_tag already in $bin"
else
  echo "kind $kind_tag"
  fetch "https://github.com/kubernetes-sigs/kind/releases/download/$kind_tag/kind-$os-$arch" kind .sha256sum
  install -m 0755 "$tmp/kind" "$bin/kind"
fi

if "$bin/kubectl" version --client 2>/dev/null | grep -q "Client Version: $kubectl_tag\$"; then
  echo "kubectl $kubectl_tag already in $bin"
else
  echo "kubectl $kubectl_tag"
  fetch "https://dl.k8s.io/release/$kubectl_tag/bin/$os/$arch/kubectl" kubectl .sha256
  install -m 0755 "$tmp/kubectl" "$bin/kubectl"
fi

if [ "$("$bin/istioctl" version --remote=false 2>/dev/null | awk 'NR == 1 { print $NF }')" = "$istio_tag" ]; then
  echo "istioctl $istio_tag already in $bin"
else
  echo "istioctl $istio_tag"
  # Istio names its macOS builds `osx` (amd64) and `osx-arm64`.
  case "$os-$arch" in
    linux-*) archive="istioctl-$istio_tag-linux-$arch.tar.gz" ;;
    darwin-amd64) archive="istioctl-$istio_tag-osx.tar.gz" ;;
    darwin-arm64) archive="istioctl-$istio_tag-osx-arm64.tar.gz" ;;
  esac
  fetch "https://github.com/istio/istio/releases/download/$istio_tag/$archive" "$archive" .sha256
  tar -xzf "$tmp/$archive" -C "$tmp" istioctl
  install -m 0755 "$tmp/istioctl" "$bin/istioctl"
fi

"$bin/kind" version
"$bin/kubectl" version --client
"$bin/istioctl" version --remote=false
