# The real node, sourced by e2e/cluster.sh: containerd (built by e2e/build-node.sh) with
# Debian's runc and CNI plugins, and kubelet, registering the node `tumbler-node` with the
# API server. Everything lives under $state/node: containerd's root, state and socket,
# kubelet's root dir and pod logs, a cgroup parent /tumbler-<offset> in every v1 hierarchy,
# and a bridge tmb<offset> with the pod subnet 10.89.<offset/10>.0/24, so that nodes of
# checkouts at other offsets never collide.
#
# Pods reach the host's loopback services through two DNAT rules on their bridge (with
# route_localnet): the `kubernetes` Service address 10.0.0.1:443 goes to the API server,
# and the gateway's git port to the git server. Host processes (Flux) reach the same
# gateway URL through an OUTPUT rule, so one git URL works for pods and for Flux.
#
# The node is tainted tumbler.dev/node=real:NoSchedule and labelled type=real: pods meant
# for it say so (toleration + nodeSelector), every other pod stays on kwok's node.
# TUMBLER_E2E_NODE=0 leaves it out (a host without root, cgroups or iptables).

NODE_NAME=tumbler-node
KUBELET_PORT=$((20262 + o)) KUBELET_HEALTHZ=$((20263 + o))
NODE_BRIDGE=tmb$o
NODE_NET=10.89.$((o / 10 % 250))
NODE_GW=$NODE_NET.1
NODE_CGROUP=tumbler-$o
# Images made here (nothing can be pulled): the controller under the chart's tag, the
# sandbox (pause) and the HTTP server of the test apps.
TUMBLER_IMAGE=ghcr.io/tumbler-dev/tumbler:0.1.0
PAUSE_IMAGE=tumbler.local/pause:1
TESTAPP_IMAGE=tumbler.local/testapp:1

# Only the first cluster has a real node; the second (TUMBLER_CLUSTER_ROLE=remote) has none.
node_enabled() { [ "${TUMBLER_E2E_NODE:-1}" != 0 ] && [ "${role:-main}" = main ]; }

node_bin_dir() { "$here/build-node.sh"; }

ctr_() { "$nbin/ctr" --address "$state/node/containerd.sock" -n k8s.io "$@"; }
# ctr_import ARCHIVE: quiet unless it fails (ctr warns of cgroup v1 on every call).
ctr_import() {
  local out
  out=$(ctr_ images import "$1" 2>&1) || { log "ctr images import $1 failed: $out"; return 1; }
}

# node_cgroups: the cgroup parent in each v1 hierarchy (cpuset needs its cpus and mems set
# before a process may join), or nothing on a cgroup v2 host.
node_cgroups() {
  [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] && return
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -d "$h" ] && [ "$(basename "$h")" != unified ] || continue
    mkdir -p "$h$NODE_CGROUP"
  done
  if [ -d /sys/fs/cgroup/cpuset/$NODE_CGROUP ]; then
    cat /sys/fs/cgroup/cpuset/cpuset.cpus > /sys/fs/cgroup/cpuset/$NODE_CGROUP/cpuset.cpus
    cat /sys/fs/cgroup/cpuset/cpuset.mems > /sys/fs/cgroup/cpuset/$NODE_CGROUP/cpuset.mems
  fi
}

node_network() {
  if ! ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    ip link add "$NODE_BRIDGE" type bridge
  fi
  ip addr replace "$NODE_GW/24" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  sysctl -qw "net.ipv4.conf.$NODE_BRIDGE.route_localnet=1" net.ipv4.ip_forward=1
  modprobe br_netfilter 2>/dev/null || true
  local rules=(
    "PREROUTING -i $NODE_BRIDGE -d 10.0.0.1/32 -p tcp --dport 443 -j DNAT --to-destination 127.0.0.1:$APISERVER_PORT"
    "PREROUTING -i $NODE_BRIDGE -d $NODE_GW/32 -p tcp --dport $GIT_PORT -j DNAT --to-destination 127.0.0.1:$GIT_PORT"
    "OUTPUT -d $NODE_GW/32 -p tcp --dport $GIT_PORT -j DNAT --to-destination 127.0.0.1:$GIT_PORT"
  )
  local r
  for r in "${rules[@]}"; do
    # shellcheck disable=SC2086
    iptables -t nat -C $r 2>/dev/null || iptables -t nat -A $r
  done
  # Answers from 127.0.0.1 to a pod leave through the bridge with the DNATed source
  # restored by conntrack; nothing to masquerade.
  mkdir -p "$state/node/cni/net.d"
  cat > "$state/node/cni/net.d/10-tumbler.conflist" <<CNI
{
  "cniVersion": "1.0.0",
  "name": "tumbler-$o",
  "plugins": [
    {"type": "bridge", "bridge": "$NODE_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$NODE_NET.0/24", "gateway": "$NODE_GW"}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$state/node/cni/ipam"}},
    {"type": "loopback"}
  ]
}
CNI
}

node_network_down() {
  local r
  for r in \
    "PREROUTING -i $NODE_BRIDGE -d 10.0.0.1/32 -p tcp --dport 443 -j DNAT --to-destination 127.0.0.1:$APISERVER_PORT" \
    "PREROUTING -i $NODE_BRIDGE -d $NODE_GW/32 -p tcp --dport $GIT_PORT -j DNAT --to-destination 127.0.0.1:$GIT_PORT" \
    "OUTPUT -d $NODE_GW/32 -p tcp --dport $GIT_PORT -j DNAT --to-destination 127.0.0.1:$GIT_PORT"; do
    # shellcheck disable=SC2086
    while iptables -t nat -D $r 2>/dev/null; do :; done
  done
  ip link del "$NODE_BRIDGE" 2>/dev/null || true
}

containerd_config() {
  local d=$state/node
  cat > "$d/containerd.toml" <<TOML
version = 3
root = "$d/containerd/root"
state = "$d/containerd/state"
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[metrics]
  address = ""

[plugins.'io.containerd.internal.v1.opt']
  path = "$d/containerd/opt"
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "$PAUSE_IMAGE"
[plugins.'io.containerd.cri.v1.runtime']
  # Root here lacks CAP_SYS_RESOURCE, so no process may lower its OOM score (the sandbox's
  # -998 fails with "failed to update /proc/self/oom_score_adj: Permission denied"):
  # scores below containerd's own are raised to it.
  restrict_oom_score_adj = true
  # Pod network namespaces under the state dir (not /var/run/netns), where down finds them.
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$d/cni/net.d"
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
TOML
}

kubelet_config() {
  local d=$state/node
  cat > "$d/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$d/containerd.sock
# On the bridge's gateway, the node's address, where the API server reaches it for
# kubectl logs and exec (anonymous: it sends no client certificate here).
address: $NODE_GW
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: AlwaysAllow}
# This host has cgroup v1 hierarchies and no swap accounting to speak of.
failCgroupV1: false
failSwapOn: false
cgroupDriver: cgroupfs
cgroupRoot: /$NODE_CGROUP
cgroupsPerQOS: true
podLogsDir: $d/pod-logs
resolvConf: /etc/resolv.conf
registerNode: true
registerWithTaints:
- {key: tumbler.dev/node, value: real, effect: NoSchedule}
maxPods: 30
serializeImagePulls: false
# The disk is shared with other checkouts' builds: evict nothing for it, never GC images
# (nothing could pull them back).
evictionHard: {memory.available: 100Mi, nodefs.available: "0%", imagefs.available: "0%", nodefs.inodesFree: "0%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
localStorageCapacityIsolation: true
nodeStatusReportFrequency: 10s
nodeStatusUpdateFrequency: 5s
YAML
}

# node_images: the Tumbler image (from the release binary), the pause and test-app images
# (one static Go binary, e2e/testimage), built as OCI archives and imported into the
# node's containerd under the names pods use.
node_images() {
  local d=$state/node/images
  mkdir -p "$d"
  local ti_key; ti_key=$(sha256sum "$here/testimage/main.go" | cut -c1-16)
  local ti=$ncache/testimage-$ti_key
  if [ ! -x "$ti" ]; then
    (cd "$here/testimage" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS= go build -trimpath -ldflags '-s -w' -o "$ti" main.go)
  fi
  rm -rf "$d/testapp" && mkdir -p "$d/testapp"
  cp "$ti" "$d/testapp/testimage"
  python3 "$here/image/oci.py" "$d/testapp" "$PAUSE_IMAGE" "$d/pause.tar" --entrypoint '["/testimage"]' --cmd '["pause"]' --user 65535 >/dev/null
  python3 "$here/image/oci.py" "$d/testapp" "$TESTAPP_IMAGE" "$d/testapp.tar" --entrypoint '["/testimage"]' --cmd '["serve"]' --user 65532 >/dev/null
  ctr_import "$d/pause.tar"
  ctr_import "$d/testapp.tar"
  node_tumbler_image
}

# node_tumbler_image: the controller image from the release binary (cargo build --release;
# TUMBLER_BINARY names another), imported under the chart's tag. Rebuilt when the binary
# changed.
node_tumbler_image() {
  local d=$state/node/images
  local binary=${TUMBLER_BINARY:-${CARGO_TARGET_DIR:-$root/target}/release/tumbler}
  if [ ! -x "$binary" ]; then
    log "no release binary at $binary: the controller image is not loaded (cargo build --release, then e2e/cluster.sh images)"
    return 0
  fi
  local sum; sum=$(sha256sum "$binary" "$here/image/rootfs.sh" "$here/image/image.json" | sha256sum | cut -c1-16)
  if [ "$(cat "$d/tumbler.sum" 2>/dev/null)" != "$sum" ] || ! ctr_ images ls -q | grep -qx "$TUMBLER_IMAGE"; then
    "$here/image/rootfs.sh" "$binary" "$d/tumbler-rootfs"
    python3 "$here/image/oci.py" "$d/tumbler-rootfs" "$TUMBLER_IMAGE" "$d/tumbler.tar" --config "$here/image/image.json" >/dev/null
    ctr_import "$d/tumbler.tar"
    echo "$sum" > "$d/tumbler.sum"
    log "image $TUMBLER_IMAGE loaded from $binary"
  fi
}

containerd_ready() { ctr_ version; }
kubelet_ready() {
  curl -sf "http://127.0.0.1:$KUBELET_HEALTHZ/healthz" | grep -q ok \
    && "$bin/kubectl" get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -q True
}

node_up() {
  node_enabled || return 0
  local t0=$SECONDS
  nbin=$(node_bin_dir); ncache=$(dirname "$nbin")
  mkdir -p "$state/node/pod-logs" "$state/node/kubelet"
  node_cgroups
  node_network
  containerd_config
  kubelet_config
  start containerd env PATH="$nbin:$PATH" "$nbin/containerd" --config "$state/node/containerd.toml"
  wait_for containerd 30 containerd_ready
  node_images
  start kubelet "$nbin/kubelet" --config "$state/node/kubelet.yaml" --kubeconfig "$state/kubeconfig" \
    --root-dir "$state/node/kubelet" --hostname-override "$NODE_NAME" --node-ip "$NODE_GW" \
    --node-labels "type=real" --v=1
  wait_for kubelet 90 kubelet_ready
  # No node lifecycle controller runs, so nothing would lift the not-ready taint the API
  # server puts on a new node.
  "$bin/kubectl" taint node "$NODE_NAME" node.kubernetes.io/not-ready:NoSchedule- >/dev/null 2>&1 || true
  log "real node $NODE_NAME up in $((SECONDS - t0))s (pods on $NODE_NET.0/24, API at 10.0.0.1:443, git at http://$NODE_GW:$GIT_PORT)"
}

# node_down: kubelet first, then every pod's containers (containerd's shims outlive it),
# then containerd, the mounts under the state dir, the cgroups and the bridge.
node_down() {
  local pid
  if [ -f "$pids/kubelet" ]; then
    pid=$(cat "$pids/kubelet"); kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true; rm -f "$pids/kubelet"
  fi
  if running containerd && [ -x "${nbin:=$(node_bin_dir 2>/dev/null)}/ctr" ]; then
    local c
    for c in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s KILL "$c" >/dev/null 2>&1 || true; done
    sleep 0.5
    for c in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$c" >/dev/null 2>&1 || true; done
    for c in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$c" >/dev/null 2>&1 || true; done
  fi
  # Shims whose containerd socket is ours.
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $state/node/containerd.sock" 2>/dev/null); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ -f "$pids/containerd" ]; then
    pid=$(cat "$pids/containerd"); kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true; rm -f "$pids/containerd"
  fi
  if [ -d "$state/node" ]; then
    # Deepest first: pod volumes, sandbox shm, overlay rootfs.
    awk -v p="$state/node/" 'index($2, p) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
      umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$state/node/kubelet/pods" "$state/node/pod-logs" "$state/node/cni/ipam"
  fi
  if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]; then
    find /sys/fs/cgroup/*/"$NODE_CGROUP" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  fi
  node_network_down
}
