#!/usr/bin/env bash
# The end-to-end suite. Expects the local control plane to be up with .tumbler-dev/env
# sourced (e2e/with-cluster.sh does both). Runs every part even when one fails, and exits
# non-zero if any did.
set -uo pipefail
cd "$(dirname "$0")/.."

: "${KUBECONFIG:?KUBECONFIG is not set: run through e2e/with-cluster.sh or source .tumbler-dev/env}"
failed=()
run() {
  local name=$1; shift
  echo "=== e2e: $name"
  local start=$SECONDS
  if "$@"; then
    echo "=== e2e: $name passed in $((SECONDS - start))s"
  else
    echo "=== e2e: $name FAILED after $((SECONDS - start))s"
    failed+=("$name")
  fi
}

run smoke e2e/smoke/run.sh
run tumbler cargo test --locked --features e2e --test e2e -- --test-threads="${E2E_THREADS:-3}"

if [ ${#failed[@]} -gt 0 ]; then
  echo "e2e: failed: ${failed[*]}"
  exit 1
fi
echo "e2e: all passed"
