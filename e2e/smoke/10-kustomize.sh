#!/usr/bin/env bash
# Flux's kustomize-controller applies a repo from the local git server (the protected one,
# with credentials from a Secret): Ready, with lastAppliedRevision equal to the pushed
# commit, and the Deployment Available on the kwok node.
source "$(dirname "$0")/lib.sh"
ns=$(fresh_ns kustomize)
repo="smoke-kustomize-$RANDOM"
url=$("$here/cluster.sh" repo "$repo" --private)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
auth_url=${url/http:\/\//http://$TUMBLER_GIT_USERNAME:$TUMBLER_GIT_PASSWORD@}
git clone -q "$auth_url" "$work/repo"
mkdir -p "$work/repo/app"
cat > "$work/repo/app/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [configmap.yaml, deployment.yaml]
YAML
cat > "$work/repo/app/configmap.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata: {name: smoke-settings}
data: {greeting: hello}
YAML
cat > "$work/repo/app/deployment.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: smoke-app}
spec:
  replicas: 2
  selector: {matchLabels: {app: smoke-app}}
  template:
    metadata: {labels: {app: smoke-app}}
    spec:
      containers: [{name: app, image: registry.example.com/smoke:1}]
YAML
git -C "$work/repo" add -A
git -C "$work/repo" -c user.name=smoke -c user.email=smoke@localhost commit -qm "smoke app"
git -C "$work/repo" push -q origin HEAD:main
sha=$(git -C "$work/repo" rev-parse HEAD)

kubectl -n "$ns" create secret generic git-auth --from-literal=username="$TUMBLER_GIT_USERNAME" --from-literal=password="$TUMBLER_GIT_PASSWORD" >/dev/null
kubectl apply -f - >/dev/null <<YAML
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: smoke, namespace: $ns}
spec:
  interval: 1m
  url: $url
  ref: {branch: main}
  secretRef: {name: git-auth}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: smoke, namespace: $ns}
spec:
  interval: 1m
  retryInterval: 5s
  path: ./app
  prune: true
  wait: true
  timeout: 2m
  targetNamespace: $ns
  sourceRef: {kind: GitRepository, name: smoke}
YAML
wait_ready gitrepository smoke "$ns" 60s
wait_ready kustomization smoke "$ns" 120s
applied=$(kubectl -n "$ns" get kustomization smoke -o jsonpath='{.status.lastAppliedRevision}')
[ "$applied" = "main@sha1:$sha" ] || fail "lastAppliedRevision $applied, pushed main@sha1:$sha"
[ "$(kubectl -n "$ns" get configmap smoke-settings -o jsonpath='{.data.greeting}')" = hello ] || fail "ConfigMap not applied"
kubectl -n "$ns" wait --for=condition=Available deployment/smoke-app --timeout=60s >/dev/null || fail "Deployment not Available"
ready=$(kubectl -n "$ns" get deployment smoke-app -o jsonpath='{.status.readyReplicas}')
[ "$ready" = 2 ] || fail "readyReplicas $ready, want 2"
kubectl delete namespace "$ns" --wait=false >/dev/null
