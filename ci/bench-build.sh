#!/usr/bin/env bash
# shellcheck disable=SC2016 # the backticks in printf formats are Markdown, not commands
# Measures `labbook build` against a stock mdBook build of the same book, without the labbook
# preprocessor (the budget is 1.2x). Both go through the same in-process mdBook driver in release
# mode: `labbook build` and the `stock-build` example, which leaves `[preprocessor.labbook]` out.
#
# Books: the render fixture, two generated large books (LARGE_CHAPTERS labs of LARGE_EXERCISES
# exercises each, at the course's density and dense), the sample course and the course when they exist, and any book folders given as
# arguments. Every book is copied under target/bench-build/ first, so no build writes into the
# repository. Needs hyperfine (Debian package `hyperfine`) and jq.
#
#   ci/bench-build.sh [BOOK_DIR...]
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-15}
chapters=${LARGE_CHAPTERS:-60}
exercises=${LARGE_EXERCISES:-6}
budget=${BUDGET:-1.2}
work=target/bench-build

for tool in hyperfine jq; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed (apt-get install -y $tool)" >&2; exit 2; }
done

cargo build --release -q -p labbook-harness --bin labbook --example stock-build
labbook=$PWD/target/release/labbook
stock=$PWD/target/release/examples/stock-build

rm -rf "$work"
mkdir -p "$work"

# A large book shaped like the course: per lab an introduction, a setup, LARGE_EXERCISES exercises
# (prose, a manifest written with a heredoc, an apply, a watch, a Verify section with two checks,
# sometimes a shell in a pod), troubleshooting and cleanup. Half of the checks have an accepted
# snapshot, as after a first run. `generate DIR EXTRA` adds EXTRA explanation blocks (prose, a
# manifest shown but not run, a table) per exercise: 2 gives about the course's density (one
# runnable block per ~800 bytes of Markdown), 0 a dense worst case (one per ~260 bytes).
generate() {
  local large=$1 extra=$2
  mkdir -p "$large/src" "$large/theme" "$large/snapshots"
  cp book/theme/labbook.css "$large/theme/"
  cat > "$large/book.toml" <<'TOML'
[book]
title = "Generated large course"

[preprocessor.labbook]

[output.html]
additional-css = ["theme/labbook.css"]
TOML
  {
    printf '# Summary\n\n'
    for ((c = 1; c <= chapters; c++)); do printf -- '- [Lab %d](lab-%03d.md)\n' "$c" "$c"; done
  } > "$large/src/SUMMARY.md"
  local fence='```'
  local prose='The gateway receives the request first and hands it to the sidecar of the target pod, which applies
the routing rules before the application sees anything. Read the manifest below line by line: every
field changes how traffic flows, and the next exercise builds on what this one leaves running.'
  local c e x key
  for ((c = 1; c <= chapters; c++)); do
    key=$(printf 'lab-%03d' "$c")
    {
      printf '# Lab %d: traffic management, part %d\n\n%s\n\n## Lab Setup\n\n' "$c" "$c" "$prose"
      printf 'Create the namespace and turn on sidecar injection:\n\n%sbash\nkubectl create namespace lab-%d\nkubectl label namespace lab-%d istio-injection=enabled\n%s\n\n' "$fence" "$c" "$c" "$fence"
      for ((e = 1; e <= exercises; e++)); do
        printf '## Exercise %d: route version %d\n\n%s\n\n%s\n\n' "$e" "$e" "$prose" "$prose"
        for ((x = 1; x <= extra; x++)); do
          printf '%s\n\n%s\n\nThe route, as the mesh sees it:\n\n%syaml\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: web-%d\nspec:\n  host: web\n  subsets:\n  - name: v%d\n    labels:\n      version: v%d\n%s\n\n' "$prose" "$prose" "$fence" "$e" "$e" "$e" "$fence"
          printf '| Field | What it does |\n|---|---|\n| `hosts` | the names the rule applies to |\n| `subset` | the pods, by label, that get the traffic |\n| `weight` | the share of requests, in percent |\n\n'
        done
        printf 'Write the manifest:\n\n'
        printf '%sbash\ncat > web-%d.yaml <<'"'"'EOF'"'"'\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: web-%d\nspec:\n  hosts:\n  - web\n  http:\n  - route:\n    - destination:\n        host: web\n        subset: v%d\nEOF\n%s\n\n' "$fence" "$e" "$e" "$e" "$fence"
        printf 'Apply it and watch the pods roll:\n\n%sbash\nkubectl apply -n lab-%d -f web-%d.yaml\n%s\n\n' "$fence" "$c" "$e" "$fence"
        printf '%sbash\nkubectl get pods -n lab-%d -w\n%s\n\nStop watching with Ctrl+C when every pod is Running.\n\n' "$fence" "$c" "$fence"
        if ((e % 3 == 0)); then
          printf 'Open a shell in a throw-away pod:\n\n%sbash\nkubectl run debug -n lab-%d --image=busybox:1.36 --restart=Never -it --rm -- sh\n%s\n\nInside the `debug` pod:\n\n%ssh\nwget -qO- http://web\nexit\n%s\n\n' "$fence" "$c" "$fence" "$fence" "$fence"
        fi
        printf '### Verify\n\n%s\n\n%sbash\nkubectl get virtualservice web-%d -n lab-%d\n%s\n\n%sbash\nkubectl get pods -n lab-%d\n%s\n\n' "$prose" "$fence" "$e" "$c" "$fence" "$fence" "$c" "$fence"
        printf -- '---\nsource: "src/%s.md"\nassertion_line: 1\nexpression: "kubectl get pods"\n---\nNAME                   READY   STATUS    RESTARTS   AGE\nweb-[pod-hash]-[pod-suffix]   2/2     Running   0          [age]\n' "$key" \
          > "$large/snapshots/${key}__exercise-$e-route-version-$e--verify-2.snap"
      done
      printf '## Troubleshooting\n\n%sbash\nkubectl describe pods -n lab-%d\n%s\n\n' "$fence" "$c" "$fence"
      printf '## Cleanup\n\n%sbash\nkubectl delete namespace lab-%d\n%s\n' "$fence" "$c" "$fence"
    } > "$large/src/$key.md"
  done
}
large=$work/large
generate "$large" 2
dense=$work/large-dense
generate "$dense" 0

books=(fixtures/books/render-kinds "$large" "$dense")
for optional in fixtures/sample-course book; do
  [ -f "$optional/book.toml" ] && books+=("$optional")
done
books+=("$@")

# The two builds alternate, one run each per round, so that a busy machine slows both alike; the
# ratio reported is the median of the per-round ratios (the medians of each build are shown too).
printf '\n%-16s %6s %7s %12s %12s %8s\n' book steps "B/step" "labbook(med)" "stock(med)" ratio
status=0
for book in "${books[@]}"; do
  name=$(basename "$book")
  copy=$work/books/$name
  if [ "$book" != "$large" ] && [ "$book" != "$dense" ]; then
    mkdir -p "$work/books"
    cp -r "$book" "$copy"
    rm -rf "$copy/book"
    # Books that reference the course stylesheet get a copy of it.
    mkdir -p "$copy/theme"
    [ -f "$copy/theme/labbook.css" ] || cp book/theme/labbook.css "$copy/theme/"
  else
    copy=$book
  fi
  steps=$("$labbook" plan "$copy" --format json 2>/dev/null | jq '[.labs[].steps | length] | add // 0' || echo 0)
  bytes=$(find "$copy/src" -name '*.md' -exec cat {} + | wc -c)
  density=$( ((steps > 0)) && echo $((bytes / steps)) || echo -)
  rounds=()
  for ((r = -2; r < runs; r++)); do
    out=$work/$name-round.json
    hyperfine -N --style none --warmup 0 --runs 1 --export-json "$out" \
      -n labbook "$labbook build $copy" -n stock "$stock $copy" >/dev/null
    ((r < 0)) || rounds+=("$(jq -c '[.results[] | .mean]' "$out")")
  done
  read -r ours theirs ratio < <(printf '%s\n' "${rounds[@]}" | jq -s -r '
    def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    [([.[] | .[0]] | median), ([.[] | .[1]] | median), ([.[] | .[0] / .[1]] | median)] | @tsv')
  printf '%-16s %6s %7s %10.1fms %10.1fms %7.2fx\n' "$name" "$steps" "$density" \
    "$(jq -n "$ours * 1000")" "$(jq -n "$theirs * 1000")" "$ratio"
  if jq -e -n "$ratio > $budget" >/dev/null; then
    echo "  over the ${budget}x budget" >&2
    status=1
  fi
done
exit "$status"
