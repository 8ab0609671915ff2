#!/usr/bin/env bash
# Benchmark of `labbook lint` against the budget in DESIGN.md: a whole course, ShellCheck
# included, in under 3 s. Not a test: run it by hand (it needs hyperfine and shellcheck, both
# Debian packages) and record the figure.
#
#   ci/bench-lint.sh              # release build, generated course + reference modules + book/
#   PROFILE=dev ci/bench-lint.sh  # the debug build
#   PARTS=20 ci/bench-lint.sh     # a larger generated course
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${PROFILE:-release}
parts=${PARTS:-10}
for tool in hyperfine shellcheck; do
  command -v "$tool" >/dev/null || { echo "bench-lint: $tool is not installed (apt-get install $tool)" >&2; exit 2; }
done

cargo build --quiet --profile "$profile" -p labbook-harness
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
bin="$PWD/target/$dir/labbook"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A large generated course: PARTS folders, each holding every lint fixture as a chapter (the
# correct canary lab, the correct patterns, and the bad twin of every rule, so that every check
# does real work), each folder with the fixtures' Makefile.
for i in $(seq 1 "$parts"); do
  part="$work/generated/part-$i"
  mkdir -p "$part"
  cp fixtures/lint/canary-lab/Makefile "$part/"
  cp fixtures/lint/canary-lab/canary.md "$part/canary.md"
  for f in fixtures/lint/correct-patterns/*.md; do cp "$f" "$part/pattern-$(basename "$f")"; done
  for f in fixtures/lint/*/bad.md; do cp "$f" "$part/$(basename "$(dirname "$f")").md"; done
done
chapters=$(find "$work/generated" -name '*.md' | wc -l)
blocks=$(cat "$work/generated"/*/*.md | grep -c '^```\(bash\|sh\|console\|shell\)' || true)
echo "generated course: $chapters chapters, $blocks runnable blocks"

targets=("$work/generated")
names=("generated course ($chapters chapters)")

# The reference modules, copied so that nothing is written beside them.
seeds=${SEEDS:-../shared/seeds}
if [ -d "$seeds" ]; then
  mkdir -p "$work/seeds"
  find "$seeds" -maxdepth 1 -name 'module-*.md' -exec cp {} "$work/seeds/" \;
  targets+=("$work/seeds")
  names+=("reference modules")
fi

# The project's own course, when this checkout has it.
if [ -f book/book.toml ]; then
  targets+=("$PWD/book")
  names+=("book/")
fi

args=()
for i in "${!targets[@]}"; do
  # `|| true`: the lint exits 1 when it finds errors, which is what the bad fixtures are for.
  args+=(--command-name "${names[$i]}" "$bin lint ${targets[$i]} >/dev/null || true")
done
hyperfine --warmup 2 --min-runs 10 --export-markdown "$work/bench.md" "${args[@]}"
cat "$work/bench.md"
