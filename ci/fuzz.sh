#!/usr/bin/env bash
# Fuzz the chapter parser and the plan renderers with cargo fuzz (needs a nightly toolchain and
# `cargo install cargo-fuzz`). Usage: ci/fuzz.sh [SECONDS]   (default 120)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-120}"
mkdir -p corpus/parse_and_plan
# Seed the corpus with the project's own fixtures.
cp ../fixtures/labs/*.md corpus/parse_and_plan/ 2>/dev/null || true
cargo +nightly fuzz run parse_and_plan corpus/parse_and_plan -- \
  -max_total_time="$seconds" -rss_limit_mb=4096
