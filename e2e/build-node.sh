#!/usr/bin/env bash
# Builds the real node's components from the Go module proxy: kubelet (from the same
# Kubernetes module and version as the control plane), containerd, its runc shim and ctr,
# at the versions of e2e/node-versions.env. Their cache directory is their own
# (node-<hash> beside the control plane's), keyed by node-versions.env, this script and
# KUBERNETES_VERSION, so adding the node never rebuilt the control plane and a bump of
# containerd rebuilds only this. Prints the bin directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck disable=SC1091
source "$here/versions.env"
# shellcheck disable=SC1091
source "$here/node-versions.env"

key=$( (cat "$here/node-versions.env" "$here/build-node.sh"; echo "$KUBERNETES_VERSION") | sha256sum | cut -c1-16)
cache=${TUMBLER_E2E_CACHE:-$HOME/.cache/tumbler-e2e}/node-$key
bin=$cache/bin
mkdir -p "$bin" "$cache/src" "$cache/logs"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local GOTELEMETRY=off

log() { echo "build-node: $*" >&2; }

# The wrapper-module helper is build.sh's own (one definition): its text is read from
# there rather than sourced, since sourcing build.sh would run its builds.
eval "$(sed -n '/^wrapper() {/,/^}/p; /^have() {/p; /^timed() {/,/^}/p' "$here/build.sh")"

build_kubelet() {
  local v=$KUBERNETES_VERSION minor
  minor=$(echo "$v" | cut -d. -f2)
  wrapper kubelet k8s.io/kubernetes "$v"
  grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$modfile" | awk '{print $1}' | while read -r m; do
    go mod edit -replace="$m=$m@v0.${v#v1.}"
  done
  cat > tools.go <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kubelet"
GO
  go mod tidy
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  go build -trimpath -p 2 -ldflags "$ld" -o "$bin/kubelet" k8s.io/kubernetes/cmd/kubelet
}

build_containerd() {
  local m=github.com/containerd/containerd/v2 v=$CONTAINERD_VERSION
  wrapper containerd "$m" "$v"
  go get "$m@$v"
  local ld="-s -w -X $m/version.Version=$v"
  # Static (no cgo): the btrfs snapshotter, which needs cgo, is left out; overlayfs is in.
  for cmd in containerd containerd-shim-runc-v2 ctr; do
    go build -trimpath -p 2 -ldflags "$ld" -o "$bin/$cmd" "$m/cmd/$cmd"
  done
}

command -v go >/dev/null || { log "Go is required"; exit 1; }
have kubelet || timed kubelet build_kubelet
have containerd containerd-shim-runc-v2 ctr || timed containerd build_containerd
echo "$bin"
