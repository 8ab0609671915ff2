# shellcheck shell=bash
# Sourced by the CI scripts that run labs (run-course.sh, run-shard.sh): what follows a run.
#
#   collect_report LABBOOK STATUS   copies the pending snapshots (`.snap.new`) into
#                                   out/pending-snapshots/ so that they travel with the report,
#                                   appends the run's summary to $GITHUB_STEP_SUMMARY under
#                                   GitHub Actions, and stops the script (with the run's status,
#                                   or 1) when the run wrote no out/report.json

collect_report() {
  local labbook="$1" status="$2"
  mkdir -p out/pending-snapshots
  find book/snapshots -maxdepth 1 -name '*.snap.new' -exec cp {} out/pending-snapshots/ \; 2>/dev/null || true
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f out/report.json ]; then
    "$labbook" report summary out >>"$GITHUB_STEP_SUMMARY" || true
  fi
  if [ ! -f out/report.json ]; then
    echo "error: the run wrote no out/report.json (exit status $status)" >&2
    exit "$(( status == 0 ? 1 : status ))"
  fi
}
