#!/usr/bin/env bash
# Runs a command against the local control plane: starts it (building it if needed), runs
# the command with .tumbler-dev/env sourced, and always stops it again, even when the
# command fails (set TUMBLER_KEEP_CLUSTER=1 to keep it). Exits with the command's status.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

cleanup() {
  if [ "${TUMBLER_KEEP_CLUSTER:-}" != 1 ]; then "$here/cluster.sh" down; fi
}
trap cleanup EXIT

if ! "$here/cluster.sh" up; then
  echo "with-cluster: the control plane did not start" >&2
  "$here/cluster.sh" logs 30 >&2 || true
  exit 1
fi
# shellcheck disable=SC1091
source "$root/.tumbler-dev/env"
"$@"
status=$?
if [ $status -ne 0 ]; then
  echo "with-cluster: '$*' failed ($status); control plane log tails:" >&2
  "$here/cluster.sh" logs 15 >&2 || true
fi
exit $status
