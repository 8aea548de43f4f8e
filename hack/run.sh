#!/usr/bin/env bash
# `make run`: the five-minute walkthrough. Builds Tumbler, starts the local control plane,
# creates a gitops repo on the local git server with Flux pointed at it, applies an
# Environment and two Releases, runs the controller and shows the Releases reaching Ready.
# Ctrl-C stops the controller; `make cluster-down` stops the control plane.
# With TUMBLER_RUN_ONCE=1 (or CI=true) it exits once every Release is Ready.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

e2e/cluster.sh up
# shellcheck disable=SC1091
source .tumbler-dev/env
cargo build --locked --quiet
bin=target/debug/tumbler

ns=demo
url=$(e2e/cluster.sh repo tumbler-demo 2>/dev/null | tail -n1)
echo "gitops repository: $url"

kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply -f - <<YAML
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: demo-gitops, namespace: flux-system}
spec:
  interval: 1m
  url: $url
  ref: {branch: main}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: demo-apps, namespace: flux-system}
spec:
  interval: 1m
  retryInterval: 5s
  path: ./envs/local
  prune: true
  wait: false    # Tumbler checks the rollout itself (README, "The Flux wiring")
  timeout: 2m
  sourceRef: {kind: GitRepository, name: demo-gitops}
---
apiVersion: tumbler.dev/v1alpha1
kind: Environment
metadata: {name: local, namespace: $ns}
spec:
  repository: {url: "$url", branch: main, path: envs/local}
  commit: {author: {name: Tumbler, email: tumbler@localhost}}
  flux:
    kustomizations: [{name: demo-apps, namespace: flux-system}]
  targetNamespace: $ns
---
apiVersion: tumbler.dev/v1alpha1
kind: Release
metadata: {name: hello, namespace: $ns}
spec:
  environment: local
  app: hello
  version: "1.0.0"
  template:
    image: {repository: registry.example.com/hello, tag: "1.0.0"}
    replicas: 2
    ports: [{name: http, containerPort: 8080}]
    env: {GREETING: hello}
---
apiVersion: tumbler.dev/v1alpha1
kind: Release
metadata: {name: settings, namespace: $ns}
spec:
  environment: local
  app: settings
  version: "2026-11-22.1"
  manifests:
    - {apiVersion: v1, kind: ConfigMap, metadata: {name: settings}, data: {feature-x: "on"}}
YAML

log=.tumbler-dev/logs/controller.log
echo "controller log: $log"
"$bin" controller --log-format text --metrics-addr 127.0.0.1:18080 --cache-dir .tumbler-dev/cache >>"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT INT TERM

kubectl -n "$ns" wait --for=condition=Ready release/hello release/settings --timeout=180s >/dev/null || {
  kubectl -n "$ns" get releases -o wide
  tail -n 30 "$log"
  exit 1
}
kubectl -n "$ns" get releases -o wide
kubectl -n "$ns" get deployments,configmaps -l app.kubernetes.io/managed-by=tumbler
echo "every Release is Ready, $((SECONDS - start))s after make run started"

if [ "${TUMBLER_RUN_ONCE:-}" = 1 ] || [ "${CI:-}" = true ]; then
  exit 0
fi
cat <<EOT

The controller keeps running (Ctrl-C stops it). In another shell:
  source .tumbler-dev/env
  kubectl -n $ns get releases -w
  kubectl -n $ns edit release hello        # change spec.version and watch a new commit land
  git clone $url /tmp/demo && git -C /tmp/demo log --stat
EOT
wait "$pid"
