#!/usr/bin/env bash
# Runs every smoke test of the local control plane and prints `N passed, M failed`.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
passed=0 failed=0
for t in "$here"/[0-9]*.sh; do
  name=$(basename "$t" .sh)
  start=$SECONDS
  if bash "$t"; then
    echo "smoke: $name ok ($((SECONDS - start))s)"; passed=$((passed + 1))
  else
    echo "smoke: $name FAILED ($((SECONDS - start))s)"; failed=$((failed + 1))
  fi
done
echo "smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
