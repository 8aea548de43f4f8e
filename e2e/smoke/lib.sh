# Shared by the smoke tests: a fresh namespace, assertions, and a Flux nudge.
set -euo pipefail
: "${KUBECONFIG:?source .tumbler-dev/env first}"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
fresh_ns() {
  local ns="smoke-$1-$RANDOM"
  kubectl create namespace "$ns" >/dev/null
  echo "$ns"
}
# nudge KIND NAME NS: ask a Flux controller to reconcile now, as `flux reconcile` does.
nudge() {
  kubectl -n "$3" annotate --overwrite "$1" "$2" "reconcile.fluxcd.io/requestedAt=$(date +%s%N)" >/dev/null
}
# wait_ready KIND NAME NS TIMEOUT: kubectl wait, and on failure the object's status.
wait_ready() {
  if ! kubectl -n "$3" wait --for=condition=Ready "$1/$2" --timeout="$4" >/dev/null; then
    kubectl -n "$3" get "$1" "$2" -o yaml >&2 || true
    fail "$1/$2 in $3 is not Ready"
  fi
}
