#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Checks that every container image the chapters use is pinned: it has a tag other than
# `latest`, and that exact reference is listed in versions.env. Runs without a cluster.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

pinned="$(grep -E '^[A-Z_]+=' "$BOOK_DIR/versions.env" | cut -d= -f2-)"
status=0
count=0

images="$({ grep -rhoE '(image: *|--image[= ])[^ "'\'']+' "$BOOK_DIR/src" || true; } \
  | sed -E 's/^(image: *|--image[= ])//' | sort -u)"

for image in $images; do
  count=$((count + 1))
  name="${image##*/}"
  case "$name" in
    *:latest | *:latest@*)
      printf 'error: %s uses the latest tag\n' "$image" >&2
      status=1
      continue
      ;;
    *:*) ;;
    *)
      printf 'error: %s has no tag\n' "$image" >&2
      status=1
      continue
      ;;
  esac
  if ! printf '%s\n' "$pinned" | grep -qxF "$image"; then
    printf 'error: %s is not listed in versions.env\n' "$image" >&2
    status=1
  fi
done

if [ "$status" -eq 0 ]; then
  log "$count image references in src/, all pinned in versions.env"
fi
exit "$status"
