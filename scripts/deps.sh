#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test Tumbler. Idempotent and quiet when
# everything is present.
#   scripts/deps.sh rust   what building, linting and unit-testing need: a C toolchain and
#                          perl (vendored libgit2/OpenSSL), rustfmt and clippy. No Go.
#   scripts/deps.sh        that, plus what the local control plane and the git server need
#                          (git with http-backend, openssl, python3, curl) and Go, and what
#                          its real node needs from Debian (runc, the CNI plugins, iptables).
set -euo pipefail
mode=${1:-all}

need=()
cmds=(perl make gcc)
[ "$mode" = rust ] || cmds+=(git openssl python3 curl)
for cmd in "${cmds[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || need+=("$cmd")
done
# git http-backend ships with git-core; check it explicitly.
if [ "$mode" != rust ] && command -v git >/dev/null 2>&1 && [ ! -x "$(git --exec-path)/git-http-backend" ]; then
  need+=(git)
fi
if [ "$mode" != rust ]; then
  command -v runc >/dev/null 2>&1 || need+=(runc)
  command -v iptables >/dev/null 2>&1 || need+=(iptables)
  [ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "deps: installing ${need[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ "$mode" != rust ]; then
  command -v go >/dev/null 2>&1 || { echo "deps: Go is required (go1.26) to build the local control plane and is not on PATH" >&2; exit 1; }
fi
if command -v rustup >/dev/null 2>&1; then
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
fi
