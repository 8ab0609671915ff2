#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Installs the pinned kind, kubectl and istioctl into book/.tools/bin, each only when it
# is missing there or has another version. Downloads are checked against their sha256.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

require curl tar

case "$(uname -s)" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *) die "unsupported OS '$(uname -s)': install kind $KIND_VERSION, kubectl $KUBECTL_VERSION and istioctl $ISTIO_VERSION by hand" ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "unsupported CPU '$(uname -m)'" ;;
esac

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | awk '{ print $1 }'
  else
    shasum -a 256 "$1" | awk '{ print $1 }'
  fi
}

# download URL FILE: fetches URL and checks it against the checksum published at URL.sha256
# (or URL.sha256sum for kind).
download() {
  local url="$1" file="$2" sums="$3" want got
  log "downloading $url"
  curl -fsSL --retry 3 -o "$file" "$url"
  want="$(curl -fsSL --retry 3 "$sums" | awk '{ print $1 }')"
  got="$(sha256 "$file")"
  if [ -z "$want" ] || [ "$want" != "$got" ]; then
    die "checksum mismatch for $url (want '$want', got '$got')"
  fi
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$TOOLS_BIN"

if "$TOOLS_BIN/kind" version 2>/dev/null | grep -q " $KIND_VERSION "; then
  log "kind $KIND_VERSION already in .tools/bin"
else
  url="https://github.com/kubernetes-sigs/kind/releases/download/$KIND_VERSION/kind-$os-$arch"
  download "$url" "$tmp/kind" "$url.sha256sum"
  install -m 0755 "$tmp/kind" "$TOOLS_BIN/kind"
fi

if "$TOOLS_BIN/kubectl" version --client 2>/dev/null | grep -q "Client Version: $KUBECTL_VERSION\$"; then
  log "kubectl $KUBECTL_VERSION already in .tools/bin"
else
  url="https://dl.k8s.io/release/$KUBECTL_VERSION/bin/$os/$arch/kubectl"
  download "$url" "$tmp/kubectl" "$url.sha256"
  install -m 0755 "$tmp/kubectl" "$TOOLS_BIN/kubectl"
fi

if [ "$("$TOOLS_BIN/istioctl" version --remote=false 2>/dev/null | awk 'NR == 1 { print $NF }')" = "$ISTIO_VERSION" ]; then
  log "istioctl $ISTIO_VERSION already in .tools/bin"
else
  case "$os-$arch" in
    linux-*) asset="istioctl-$ISTIO_VERSION-linux-$arch.tar.gz" ;;
    darwin-amd64) asset="istioctl-$ISTIO_VERSION-osx.tar.gz" ;;
    darwin-arm64) asset="istioctl-$ISTIO_VERSION-osx-arm64.tar.gz" ;;
  esac
  url="https://github.com/istio/istio/releases/download/$ISTIO_VERSION/$asset"
  download "$url" "$tmp/istioctl.tar.gz" "$url.sha256"
  tar -xzf "$tmp/istioctl.tar.gz" -C "$tmp"
  install -m 0755 "$tmp/istioctl" "$TOOLS_BIN/istioctl"
fi

log "tools ready in $TOOLS_BIN; for your own terminal run: export PATH=\"$TOOLS_BIN:\$PATH\""
