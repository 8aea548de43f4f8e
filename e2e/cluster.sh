#!/usr/bin/env bash
# The local control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kwok (a fake node that makes pods Running), Flux's source-, kustomize- and helm-controller,
# and a smart-HTTP git server, all as processes on loopback, built from source by
# e2e/build.sh; and a real node (containerd + runc + kubelet, e2e/node.sh, built by
# e2e/build-node.sh) with the Tumbler image and the test images loaded (TUMBLER_E2E_NODE=0:
# none). State, logs and pids live in .tumbler-dev/ at the repository root.
#
#   e2e/cluster.sh build              build (or find cached) binaries; print the bin dir
#   e2e/cluster.sh up                 start everything (idempotent) and write .tumbler-dev/env
#   e2e/cluster.sh down               stop everything it started
#   e2e/cluster.sh status             what is running
#   e2e/cluster.sh images             (re)load the Tumbler image from the release binary
#   e2e/cluster.sh repo NAME [--private]   a bare repo with an initial commit; prints its URL
#   e2e/cluster.sh logs               the tail of every log
#   e2e/cluster.sh remote-apiserver stop|start   stop or start the second cluster's API server
#
# `up` also starts a second, lighter control plane (etcd, kube-apiserver, a few
# kube-controller-manager controllers, kube-scheduler, kwok, Flux's source- and
# kustomize-controller) under .tumbler-dev/remote with the port offset + 1050: a workload
# cluster whose Flux reads the same git server, for Environments with `spec.cluster`.
# TUMBLER_REMOTE_CLUSTER=0 leaves it out.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
state=${TUMBLER_DEV_DIR:-$root/.tumbler-dev}
pki=$state/pki logs=$state/logs pids=$state/pids
# `remote`: this run is the second (workload) cluster, started by the first one's `up`.
role=${TUMBLER_CLUSTER_ROLE:-main}
remote_state=$state/remote

# Loopback ports, all in one place; TUMBLER_PORT_OFFSET shifts them all, so two checkouts
# can run a control plane each.
o=${TUMBLER_PORT_OFFSET:-0}
ETCD_PORT=$((22379 + o)) ETCD_PEER_PORT=$((22380 + o))
APISERVER_PORT=$((16443 + o))
KCM_PORT=$((20257 + o)) SCHEDULER_PORT=$((20259 + o))
KWOK_PORT=$((20260 + o))
SOURCE_METRICS=$((28080 + o)) SOURCE_HEALTH=$((29440 + o)) SOURCE_STORAGE=$((29090 + o))
KUSTOMIZE_METRICS=$((28081 + o)) KUSTOMIZE_HEALTH=$((29441 + o))
HELM_METRICS=$((28082 + o)) HELM_HEALTH=$((29442 + o))
GIT_PORT=$((28090 + o))
# The second cluster's offset; with offsets 0..600 in steps of 100 for the first clusters,
# no port of a second cluster meets a port of any first or second cluster.
REMOTE_OFFSET=$((o + 1050))

log() { echo "cluster: $*" >&2; }
die() { log "$*"; exit 1; }

# shellcheck source=e2e/node.sh
source "$here/node.sh"

bin_dir() { "$here/build.sh"; }

running() { [ -f "$pids/$1" ] && kill -0 "$(cat "$pids/$1")" 2>/dev/null; }

# start NAME CMD...: runs CMD in its own process group, logging to logs/NAME.log.
start() {
  local name=$1; shift
  if running "$name"; then return; fi
  setsid "$@" >>"$logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$pids/$name"
}

# wait_for NAME SECONDS CHECK...: polls CHECK until it passes; on timeout shows the log.
wait_for() {
  local name=$1 timeout=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ! running "$name"; then
      log "$name exited; last lines of $logs/$name.log:"; tail -n 40 "$logs/$name.log" >&2; exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "$name not healthy after ${timeout}s; last lines of $logs/$name.log:"; tail -n 40 "$logs/$name.log" >&2; exit 1
    fi
    sleep 0.5
  done
}

pki_setup() {
  [ -f "$pki/admin.crt" ] && return
  mkdir -p "$pki"; cd "$pki"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=tumbler-e2e-ca" 2>/dev/null
  cat > apiserver.ext <<EXT
subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:127.0.0.1,IP:10.0.0.1
extendedKeyUsage=serverAuth
EXT
  openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 3650 -extfile apiserver.ext 2>/dev/null
  echo "extendedKeyUsage=clientAuth" > client.ext
  openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=tumbler-e2e-admin" 2>/dev/null
  openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out admin.crt -days 3650 -extfile client.ext 2>/dev/null
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  cd - >/dev/null
}

kubeconfig_write() {
  cat > "$state/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: tumbler-e2e
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $pki/ca.crt
users:
- name: admin
  user:
    client-certificate: $pki/admin.crt
    client-key: $pki/admin.key
contexts:
- name: tumbler-e2e
  context: {cluster: tumbler-e2e, user: admin}
current-context: tumbler-e2e
KC
}

start_apiserver() {
  start kube-apiserver "$1/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 --authorization-mode Node,RBAC --allow-privileged=true \
    --cert-dir "$state/apiserver-certs" --profiling=false --v=1 \
    --kubelet-preferred-address-types InternalIP,Hostname
  wait_for kube-apiserver 90 api_ready
}

api_ready() { curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "https://127.0.0.1:$APISERVER_PORT/readyz" | grep -q ok; }
http_ok() { curl -sf "$1" >/dev/null; }

env_write() {
  local bin=$1
  cat > "$state/env" <<ENV
# Written by e2e/cluster.sh up: source it to use the local control plane.
export KUBECONFIG=$state/kubeconfig
export PATH=$bin:\$PATH
export TUMBLER_GIT_URL=http://127.0.0.1:$GIT_PORT/git
export TUMBLER_GIT_PRIVATE_URL=http://127.0.0.1:$GIT_PORT/private
export TUMBLER_GIT_STATIC_URL=http://127.0.0.1:$GIT_PORT/static
export TUMBLER_GIT_USERNAME=tumbler
export TUMBLER_GIT_PASSWORD=$(cat "$state/git-password")
export TUMBLER_GIT_ROOT=$state/git
export TUMBLER_E2E_BIN=$bin
export TUMBLER_E2E_CACHE_DIR=$(dirname "$bin")
export TUMBLER_PORT_OFFSET=$o
export TUMBLER_REMOTE_KUBECONFIG=$remote_state/kubeconfig
export TUMBLER_REMOTE_SERVER=https://127.0.0.1:$((16443 + REMOTE_OFFSET))
ENV
  if node_enabled; then
    cat >> "$state/env" <<ENV
export TUMBLER_NODE=$NODE_NAME
export TUMBLER_NODE_GIT_URL=http://$NODE_GW:$GIT_PORT/git
export TUMBLER_NODE_IMAGE=$TUMBLER_IMAGE
export TUMBLER_NODE_TESTAPP_IMAGE=$TESTAPP_IMAGE
ENV
  fi
}

up() {
  local bin; bin=$(bin_dir)
  local cache; cache=$(dirname "$bin")
  mkdir -p "$state" "$logs" "$pids" "$state/git" "$state/flux-storage"
  pki_setup
  kubeconfig_write
  export KUBECONFIG=$state/kubeconfig
  local t0=$SECONDS
  if [ "$role" = remote ]; then up_workloads "$bin" "$cache"; log "remote cluster up in $((SECONDS - t0))s; logs in $logs"; return; fi
  [ -f "$state/git-password" ] || head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$state/git-password"
  env_write "$bin"

  start gitserver env GIT_SERVER_USERNAME=tumbler GIT_SERVER_PASSWORD="$(cat "$state/git-password")" \
    python3 "$here/gitserver.py" "$state/git" "$GIT_PORT"
  wait_for gitserver 10 http_ok "http://127.0.0.1:$GIT_PORT/healthz"
  up_workloads "$bin" "$cache"
  node_up
  local t1=$SECONDS
  if [ "${TUMBLER_REMOTE_CLUSTER:-1}" != 0 ]; then
    TUMBLER_CLUSTER_ROLE=remote TUMBLER_DEV_DIR="$remote_state" TUMBLER_PORT_OFFSET=$REMOTE_OFFSET "$here/cluster.sh" up
  fi
  log "up in $((SECONDS - t0))s (the second cluster $((SECONDS - t1))s of it); logs in $logs"
  echo "export KUBECONFIG=$state/kubeconfig   # or: source $state/env"
}

# up_workloads BIN CACHE: a cluster with its Flux; the first one also runs helm-controller and
# holds Tumbler's CRDs.
up_workloads() {
  local bin=$1 cache=$2
  start etcd "$bin/etcd" --data-dir "$state/etcd" --name e2e \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "e2e=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --quota-backend-bytes 4294967296
  wait_for etcd 30 http_ok "http://127.0.0.1:$ETCD_PORT/health"
  start_apiserver "$bin"

  # The second cluster runs only what its workloads and ServiceAccounts need.
  local controllers='*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle'
  [ "$role" = remote ] && controllers='deployment,replicaset,serviceaccount,serviceaccount-token,namespace,garbagecollector,root-ca-cert-publisher'
  start kube-controller-manager "$bin/kube-controller-manager" --kubeconfig "$state/kubeconfig" \
    --authentication-kubeconfig "$state/kubeconfig" --authorization-kubeconfig "$state/kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --leader-elect=false \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --use-service-account-credentials=true --controllers "$controllers" --v=1
  start kube-scheduler "$bin/kube-scheduler" --kubeconfig "$state/kubeconfig" \
    --authentication-kubeconfig "$state/kubeconfig" --authorization-kubeconfig "$state/kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --leader-elect=false --v=1
  wait_for kube-controller-manager 60 curl -skf "https://127.0.0.1:$KCM_PORT/healthz"
  wait_for kube-scheduler 60 curl -skf "https://127.0.0.1:$SCHEDULER_PORT/healthz"

  local kubectl="$bin/kubectl"
  # CRDs: kwok's, Flux's (from the same module versions as the binaries), Tumbler's.
  "$kubectl" apply --server-side --force-conflicts -f "$cache/kwok/crds" >/dev/null
  for c in source-controller kustomize-controller helm-controller; do
    "$kubectl" apply --server-side --force-conflicts -f "$cache/crds/$c" >/dev/null
  done
  if [ "$role" = main ] && ls "$root"/crds/*.yaml >/dev/null 2>&1; then
    "$kubectl" apply --server-side --force-conflicts -f "$root/crds" >/dev/null
  fi
  "$kubectl" wait --for condition=Established crd --all --timeout=60s >/dev/null
  "$kubectl" create namespace flux-system --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null

  # The fake node and the stages that make its pods Running and Ready.
  "$kubectl" apply -f - >/dev/null <<NODE
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {kubernetes.io/hostname: kwok-node-0, kubernetes.io/os: linux, kubernetes.io/arch: amd64, type: kwok}
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "500"}
  capacity: {cpu: "32", memory: 256Gi, pods: "500"}
NODE
  # kwok's own stage definitions: node initialise + lease heartbeat, pods created, ready,
  # completed and deleted.
  local stages=()
  for f in "$cache"/kwok/stage/node/fast/*.yaml "$cache"/kwok/stage/node/heartbeat-with-lease/*.yaml "$cache"/kwok/stage/pod/general/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] && continue
    stages+=(--config "$f")
  done
  [ ${#stages[@]} -ge 4 ] || die "kwok stage definitions not found under $cache/kwok/stage"
  start kwok "$bin/kwok" --kubeconfig "$state/kubeconfig" --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --server-address "127.0.0.1:$KWOK_PORT" --node-ip 127.0.0.1 --node-lease-duration-seconds 40 "${stages[@]}"
  wait_for kwok 60 node_ready
  # No node lifecycle controller runs (kwok is the kubelet here), so nothing would lift the
  # not-ready taint the API server puts on new nodes.
  "$kubectl" taint node kwok-node-0 node.kubernetes.io/not-ready:NoSchedule- >/dev/null 2>&1 || true

  export RUNTIME_NAMESPACE=flux-system SOURCE_CONTROLLER_LOCALHOST="127.0.0.1:$SOURCE_STORAGE"
  start source-controller "$bin/source-controller" \
    --metrics-addr "127.0.0.1:$SOURCE_METRICS" --health-addr "127.0.0.1:$SOURCE_HEALTH" \
    --enable-leader-election=false --watch-all-namespaces=true --log-encoding console \
    --storage-path "$state/flux-storage" --storage-addr "127.0.0.1:$SOURCE_STORAGE" --storage-adv-addr "127.0.0.1:$SOURCE_STORAGE"
  start kustomize-controller "$bin/kustomize-controller" \
    --metrics-addr "127.0.0.1:$KUSTOMIZE_METRICS" --health-addr "127.0.0.1:$KUSTOMIZE_HEALTH" \
    --enable-leader-election=false --watch-all-namespaces=true --log-encoding console
  if [ "$role" = main ]; then
    start helm-controller "$bin/helm-controller" \
      --metrics-addr "127.0.0.1:$HELM_METRICS" --health-addr "127.0.0.1:$HELM_HEALTH" \
      --enable-leader-election=false --watch-all-namespaces=true --log-encoding console
  fi
  wait_for source-controller 60 http_ok "http://127.0.0.1:$SOURCE_HEALTH/readyz"
  wait_for kustomize-controller 60 http_ok "http://127.0.0.1:$KUSTOMIZE_HEALTH/readyz"
  if [ "$role" = main ]; then
    wait_for helm-controller 60 http_ok "http://127.0.0.1:$HELM_HEALTH/readyz"
  fi
}

node_ready() {
  "$(bin_dir)/kubectl" --kubeconfig "$state/kubeconfig" get node kwok-node-0 \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -q True
}

down() {
  if [ "$role" = main ] && [ -d "$remote_state/pids" ]; then
    TUMBLER_CLUSTER_ROLE=remote TUMBLER_DEV_DIR="$remote_state" TUMBLER_PORT_OFFSET=$REMOTE_OFFSET "$here/cluster.sh" down
  fi
  [ -d "$pids" ] || return 0
  node_enabled && node_down
  local order="helm-controller kustomize-controller source-controller kwok kube-scheduler kube-controller-manager kube-apiserver etcd gitserver"
  for name in $order; do
    [ -f "$pids/$name" ] || continue
    local pid; pid=$(cat "$pids/$name")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for name in $order; do
    [ -f "$pids/$name" ] || continue
    local pid; pid=$(cat "$pids/$name")
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pids/$name"
  done
  # A fresh start next time: the cluster's data is throw-away.
  rm -rf "$state/etcd" "$state/flux-storage"
  if [ "$role" = main ]; then log "down"; else log "second cluster down"; fi
}

# remote_apiserver stop|start: the second cluster's API server alone, so that a test can
# make the workload cluster unreachable and bring it back.
remote_apiserver() {
  if [ "$role" = main ]; then
    TUMBLER_CLUSTER_ROLE=remote TUMBLER_DEV_DIR="$remote_state" TUMBLER_PORT_OFFSET=$REMOTE_OFFSET "$here/cluster.sh" remote-apiserver "$1"
    return
  fi
  case "$1" in
    stop)
      [ -f "$pids/kube-apiserver" ] || return 0
      local pid; pid=$(cat "$pids/kube-apiserver")
      kill -TERM -- "-$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL -- "-$pid" 2>/dev/null || true
      rm -f "$pids/kube-apiserver"
      log "remote kube-apiserver stopped" ;;
    start)
      start_apiserver "$(bin_dir)"
      log "remote kube-apiserver started" ;;
    *) die "usage: cluster.sh remote-apiserver stop|start" ;;
  esac
}

status() {
  if [ "$role" = main ] && [ -d "$remote_state/pids" ]; then
    echo "second cluster:"
    TUMBLER_CLUSTER_ROLE=remote TUMBLER_DEV_DIR="$remote_state" TUMBLER_PORT_OFFSET=$REMOTE_OFFSET "$here/cluster.sh" status | sed 's/^/  /'
  fi
  for f in "$pids"/*; do
    [ -e "$f" ] || { echo "nothing running"; return; }
    local name; name=$(basename "$f")
    if running "$name"; then echo "$name: running (pid $(cat "$f"))"; else echo "$name: stopped"; fi
  done
}

repo() {
  local name=${1:?usage: cluster.sh repo NAME [--private]} area=public base=git
  [ "${2:-}" = --private ] && { area=private; base=private; }
  local dir=$state/git/$area/$name.git
  if [ ! -d "$dir" ]; then
    mkdir -p "$(dirname "$dir")"
    git init -q --bare -b main "$dir"
    git -C "$dir" config http.receivepack true
    local blob tree commit
    blob=$(printf '# %s\n\nA gitops repository written by Tumbler.\n' "$name" | git -C "$dir" hash-object -w --stdin)
    tree=$(printf '100644 blob %s\tREADME.md\n' "$blob" | git -C "$dir" mktree)
    commit=$(GIT_AUTHOR_NAME=e2e GIT_AUTHOR_EMAIL=e2e@localhost GIT_COMMITTER_NAME=e2e GIT_COMMITTER_EMAIL=e2e@localhost \
      git -C "$dir" commit-tree "$tree" -m "initial commit")
    git -C "$dir" update-ref refs/heads/main "$commit"
  fi
  echo "http://127.0.0.1:$GIT_PORT/$base/$name.git"
}

logs_tail() {
  for f in "$logs"/*.log "$remote_state"/logs/*.log; do
    [ -e "$f" ] || continue
    echo "==> $f <=="; tail -n "${1:-20}" "$f"
  done
}

case "${1:-}" in
  build) bin_dir; if node_enabled; then node_bin_dir >/dev/null; fi ;;
  up) up ;;
  down) down ;;
  status) status ;;
  images) nbin=$(node_bin_dir); node_tumbler_image ;;
  repo) shift; repo "$@" ;;
  logs) shift; logs_tail "$@" ;;
  remote-apiserver) shift; remote_apiserver "${1:-}" ;;
  *) sed -n '2,22p' "$0"; exit 2 ;;
esac
