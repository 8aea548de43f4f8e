#!/usr/bin/env bash
# Builds the local control plane from the Go module proxy: kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, etcd, the Flux controllers, kwok and
# helm, at the versions of e2e/versions.env. Each upstream gets its own generated wrapper
# module (minimal version selection must not mix their dependencies), with the upstream's
# non-local `replace` lines copied in. Binaries land in a cache directory keyed by the
# versions and this script, so a second build costs nothing. Prints the bin directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck disable=SC1091
source "$here/versions.env"

key=$(cat "$here/versions.env" "$here/build.sh" | sha256sum | cut -c1-16)
cache=${TUMBLER_E2E_CACHE:-$HOME/.cache/tumbler-e2e}/$key
bin=$cache/bin
mkdir -p "$bin" "$cache/src" "$cache/logs"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local GOTELEMETRY=off

log() { echo "build: $*" >&2; }

# wrapper NAME MODULE VERSION: a fresh module in $cache/src/NAME requiring MODULE@VERSION
# with MODULE's non-local replace directives; leaves the shell in it, and MODULE's own
# go.mod path in $modfile.
modfile=
wrapper() {
  local name=$1 module=$2 version=$3 dir=$cache/src/$1
  rm -rf "$dir"; mkdir -p "$dir"; cd "$dir"
  go mod init "tumbler-e2e/$name" >/dev/null 2>&1
  go mod download -json "$module@$version" > download.json
  modfile=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])' < download.json)
  # Seed go.sum with the upstream's own: the checksum database does not know every
  # pseudo-version upstream pins, and these hashes are the ones upstream verified.
  local srcdir
  srcdir=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])' < download.json)
  rm download.json
  if [ -f "$srcdir/go.sum" ]; then cp "$srcdir/go.sum" go.sum; chmod u+w go.sum; fi
  go mod edit -json "$modfile" > replaces.json
  python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    new = r["New"]
    if new["Path"].startswith(("./", "../")):
        continue
    old = r["Old"]["Path"] + ("@" + r["Old"]["Version"] if r["Old"].get("Version") else "")
    target = new["Path"] + ("@" + new["Version"] if new.get("Version") else "")
    print("-replace=" + old + "=" + target)
' < replaces.json > replaces.txt
  rm replaces.json
  while read -r edit; do go mod edit "$edit"; done < replaces.txt
  go mod edit -require="$module@$version"
}

# have NAME...: whether every binary is already built.
have() { for b in "$@"; do [ -x "$bin/$b" ] || return 1; done; }

timed() {
  local what=$1; shift
  local start=$SECONDS
  log "$what ..."
  # A subshell outside any `if`, so that `set -e` holds inside the build function.
  set +e
  (set -e; "$@") >"$cache/logs/$what.log" 2>&1
  local rc=$?
  set -e
  if [ $rc -ne 0 ]; then
    log "$what FAILED; last lines of $cache/logs/$what.log:"
    tail -n 40 "$cache/logs/$what.log" >&2
    exit 1
  fi
  log "$what built in $((SECONDS - start))s"
}

build_kubernetes() {
  local v=$KUBERNETES_VERSION minor
  minor=$(echo "$v" | cut -d. -f2)
  wrapper kubernetes k8s.io/kubernetes "$v"
  # k8s.io/kubernetes replaces its staging modules with local paths; use their published
  # versions (v0.<minor>.<patch>) instead.
  grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$modfile" | awk '{print $1}' | while read -r m; do
    go mod edit -replace="$m=$m@v0.${v#v1.}"
  done
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  go mod tidy
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    go build -trimpath -p 2 -ldflags "$ld" -o "$bin/$cmd" "k8s.io/kubernetes/cmd/$cmd"
  done
}

build_etcd() {
  wrapper etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
  go mod tidy 2>/dev/null || true
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go build -trimpath -p 2 -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3
}

build_flux() {
  local name=$1 version=$2
  wrapper "$name" "github.com/fluxcd/$name" "$version"
  go get "github.com/fluxcd/$name@$version"
  go build -trimpath -p 2 -ldflags "-s -w" -o "$bin/$name" "github.com/fluxcd/$name"
  # Their CRDs, from the same module version.
  local dir
  dir=$(go list -m -f '{{.Dir}}' "github.com/fluxcd/$name")
  mkdir -p "$cache/crds/$name"
  cp "$dir"/config/crd/bases/*.yaml "$cache/crds/$name/"
  chmod -R u+w "$cache/crds/$name"
}

build_kwok() {
  wrapper kwok sigs.k8s.io/kwok "$KWOK_VERSION"
  go get "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  go build -trimpath -p 2 -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" -o "$bin/kwok" sigs.k8s.io/kwok/cmd/kwok
  local dir
  dir=$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  rm -rf "$cache/kwok"; mkdir -p "$cache/kwok"
  cp -r "$dir/kustomize/crd/bases" "$cache/kwok/crds"
  cp -r "$dir/kustomize/stage" "$cache/kwok/stage"
  chmod -R u+w "$cache/kwok"
}

build_helm() {
  wrapper helm helm.sh/helm/v3 "$HELM_VERSION"
  go get "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  go build -trimpath -p 2 -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" -o "$bin/helm" helm.sh/helm/v3/cmd/helm
}

command -v go >/dev/null || { log "Go is required"; exit 1; }
have kube-apiserver kube-controller-manager kube-scheduler kubectl || timed kubernetes build_kubernetes
have etcd || timed etcd build_etcd
have source-controller || timed source-controller build_flux source-controller "$FLUX_SOURCE_CONTROLLER_VERSION"
have kustomize-controller || timed kustomize-controller build_flux kustomize-controller "$FLUX_KUSTOMIZE_CONTROLLER_VERSION"
have helm-controller || timed helm-controller build_flux helm-controller "$FLUX_HELM_CONTROLLER_VERSION"
have kwok || timed kwok build_kwok
have helm || timed helm build_helm
echo "$bin"
