#!/usr/bin/env bash
# Flux's helm-controller installs a chart from a Helm repository served on loopback:
# HelmRelease Ready, and the chart's objects exist.
source "$(dirname "$0")/lib.sh"
ns=$(fresh_ns helm)
chart="smoke-chart"
version="0.1.$RANDOM"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$work/$chart/templates"
cat > "$work/$chart/Chart.yaml" <<YAML
apiVersion: v2
name: $chart
version: $version
YAML
cat > "$work/$chart/values.yaml" <<YAML
greeting: hello
YAML
cat > "$work/$chart/templates/configmap.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
data:
  greeting: {{ .Values.greeting | quote }}
YAML
repo_dir="$TUMBLER_GIT_ROOT/static/charts-$ns"
mkdir -p "$repo_dir"
tar -C "$work" -czf "$repo_dir/$chart-$version.tgz" "$chart"
digest=$(sha256sum "$repo_dir/$chart-$version.tgz" | cut -d' ' -f1)
cat > "$repo_dir/index.yaml" <<YAML
apiVersion: v1
entries:
  $chart:
  - apiVersion: v2
    name: $chart
    version: $version
    digest: $digest
    created: "2026-01-01T00:00:00Z"
    urls: [$TUMBLER_GIT_STATIC_URL/charts-$ns/$chart-$version.tgz]
generated: "2026-01-01T00:00:00Z"
YAML
kubectl apply -f - >/dev/null <<YAML
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: smoke, namespace: $ns}
spec:
  interval: 1m
  url: $TUMBLER_GIT_STATIC_URL/charts-$ns
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: smoke, namespace: $ns}
spec:
  interval: 1m
  chart:
    spec:
      chart: $chart
      version: "$version"
      sourceRef: {kind: HelmRepository, name: smoke}
  values: {greeting: from-flux}
YAML
wait_ready helmrepository smoke "$ns" 60s
wait_ready helmrelease smoke "$ns" 120s
got=$(kubectl -n "$ns" get configmap smoke-settings -o jsonpath='{.data.greeting}')
[ "$got" = from-flux ] || fail "chart ConfigMap greeting=$got, want from-flux"
rm -rf "$repo_dir"
kubectl delete namespace "$ns" --wait=false >/dev/null
