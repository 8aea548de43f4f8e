#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test Tumbler: Debian packages for the
# control plane and the git server, and the rustfmt/clippy components. Idempotent and quiet
# when everything is present.
set -euo pipefail

need=()
for cmd in git openssl python3 curl perl make gcc; do
  command -v "$cmd" >/dev/null 2>&1 || need+=("$cmd")
done
# git http-backend ships with git-core; check it explicitly.
if command -v git >/dev/null 2>&1 && [ ! -x "$(git --exec-path)/git-http-backend" ]; then
  need+=(git)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "deps: installing ${need[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v go >/dev/null 2>&1 || { echo "deps: Go is required (go1.26) and is not on PATH" >&2; exit 1; }
if command -v rustup >/dev/null 2>&1; then
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
fi
