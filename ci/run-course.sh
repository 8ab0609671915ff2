#!/usr/bin/env bash
# Runs the whole course on kind, one cluster per lab, then builds the book with the run's report
# so that the published book shows when each lab was last verified.
#
#   ci/run-course.sh
#
# Needs Docker, and kind, kubectl and istioctl on PATH (ci/install-tools.sh). Writes out/
# (report.json, junit.xml, diagnostics of failed labs), book/report.json and the built book in
# book/book. Exits with the run's status: the book is built either way, so a failed run can be
# looked at, but the workflow publishes it only when every lab passed.
#
# Pending snapshots (`.snap.new`, outputs that differ or have no accepted snapshot yet) are
# copied into out/pending-snapshots/, so that they travel with the report. Under GitHub Actions
# the run's summary (one row per lab) is appended to $GITHUB_STEP_SUMMARY.
#
# Environment: JOBS (labs at once, default 2); LABBOOK (a labbook binary to use instead of
# building one); ACCEPT=1 (record mode: accept every output as the new snapshot).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=ci/versions.sh
. ci/versions.sh
load_versions "$root" KIND_VERSION KIND_NODE_IMAGE KUBECTL_VERSION ISTIO_VERSION
# labbook passes KIND_NODE_IMAGE to `kind create cluster --image`; a lab's own `make kind-up`
# reads it from the environment too.
export KIND_NODE_IMAGE

labbook=${LABBOOK:-}
if [ -z "$labbook" ]; then
  cargo build --release --locked -p labbook-harness
  labbook="$root/target/release/labbook"
fi

"$labbook" doctor

accept=()
if [ -n "${ACCEPT:-}" ]; then
  accept=(--accept)
fi

status=0
"$labbook" run book --cluster kind --jobs "${JOBS:-2}" --report out "${accept[@]}" || status=$?

# shellcheck source=ci/report.sh
. ci/report.sh
collect_report "$labbook" "$status"
cp out/report.json book/report.json
"$labbook" build book
exit "$status"
