#!/usr/bin/env bash
# kind-offline.sh makes `crawlctl up --provider kind` work on a machine with
# no container registry, as the project's own: it installs Docker (Debian's
# docker.io) if it is missing, starts a daemon when none answers (with
# hack/runc-nocap where the capability bounding set lacks one a privileged
# container asks for; a daemon that already answers is left alone), and
# builds a kind node image for Kubernetes v1.37.2 with every image kind and
# kubeadm use, all from the Go module cache, Debian's packages and kind's
# own base files (read from its module at build time, never copied into
# this repository), and the crawl stack's own service images
# (kind-stack-images.sh). It prints on stdout the export lines that point
# crawlctl at the node image and at the chart values for those images;
# progress goes to stderr. Everything is cached under
# ${XDG_CACHE_HOME:-~/.cache}/crawlctl/kind-offline/: a warm run takes
# seconds. See docs/kind.md.
#
#   eval "$(./scripts/kind-offline.sh)"
#   crawlctl up --provider kind --node-cpu 2
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_go
ROOT=$(repo_root)
source "$ROOT/scripts/kind-stack-images.sh"

K8S=v1.37.2             # hack/kubernetes/go.mod
KIND=v0.33.0            # go.mod: sigs.k8s.io/kind
ETCD_TAG=3.7.0-0        # kubeadm v1.37.2's DefaultEtcdVersion (hack/etcd/go.mod: v3.7.0)
COREDNS=v1.14.6         # kubeadm v1.37.2's CoreDNSVersion
CONTAINERD=v2.3.4       # kind v0.33.0's base image
RUNC=v1.4.3
CRICTL=v1.36.0
CNI=v1.9.1
LPP=v0.0.30             # local-path-provisioner (kind pins v0.0.34, whose source the proxy refuses)
KINDNET_TAG=v20260820-69b56db7
LPP_TAG=v20260820-69b56db7
LPH_TAG=v20260131-7181c60a
NODE_IMAGE="crawlctl/kind-node:$K8S-offline"
ROOTFS_REV=2 # bump to rebuild the node rootfs (2: images preloaded, not imported at boot)

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/crawlctl/kind-offline"
C="$CACHE/k8s-$K8S"
BIN="$C/bin" IMG="$C/img" STAMPS="$C/stamps"
mkdir -p "$BIN" "$IMG" "$STAMPS" "$C/src"

done_() { [ -e "$STAMPS/$1" ]; }
mark() { touch "$STAMPS/$1"; }
# gobuild builds with CGO off, trimmed, at low priority (the machine has two cores).
gobuild() { nice -n 10 env CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local go build -trimpath "$@"; }
# moddir MODULE VERSION prints the module's directory in the module cache,
# downloading it first when it is not there (a brand-new machine has none).
moddir() {
  local dir
  dir=$(go mod download -json "$1@$2" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] && [ -d "$dir" ] || die "the module proxy has no $1@$2 (GOPROXY=$(go env GOPROXY))"
  echo "$dir"
}
# modsrc MODULE VERSION copies a module from the cache into a writable tree
# and prints its path.
modsrc() {
  local dst="$C/src/$(basename "$1")@$2"
  if [ ! -d "$dst" ]; then
    local dir
    dir=$(moddir "$1" "$2")
    cp -r "$dir" "$dst.tmp" && chmod -R u+w "$dst.tmp" && mv "$dst.tmp" "$dst"
  fi
  echo "$dst"
}
# kind's base image files and node-image constants, read from its module.
KINDSRC=$(moddir sigs.k8s.io/kind "$KIND")

# --- Docker -------------------------------------------------------------

# cap_missing says whether this process's bounding set lacks
# CAP_SYS_RESOURCE (bit 24), which privileged containers ask for.
cap_missing() {
  local bnd
  bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
  (( (16#$bnd >> 24 & 1) == 0 ))
}

ensure_docker() {
  apt_install docker.io busybox-static libseccomp-dev debootstrap jq
  [ -d /lib/modules ] || mkdir -p /lib/modules # kind mounts it into the node
  if docker info >/dev/null 2>&1; then
    step "a Docker daemon answers: leaving it as it is"
    return
  fi
  local args=()
  if cap_missing; then
    step "building hack/runc-nocap (this machine's bounding set lacks CAP_SYS_RESOURCE)"
    (cd "$ROOT" && gobuild -o "$BIN/runc-nocap" ./hack/runc-nocap)
    args=(--add-runtime "nocap=$BIN/runc-nocap" --default-runtime nocap)
  fi
  step "starting dockerd ${args[*]} (log: $CACHE/dockerd.log)"
  nohup dockerd "${args[@]}" >"$CACHE/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return
    sleep 1
  done
  die "dockerd did not answer within 60 s: see $CACHE/dockerd.log"
}

# --- binaries -------------------------------------------------------------

build_kubernetes() {
  local need=0
  for b in kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubeadm kubectl; do
    [ -x "$BIN/$b" ] || need=1
  done
  done_ kubernetes && [ $need = 0 ] && return
  step "building Kubernetes $K8S: 7 commands in one go build (one-time, 15-25 minutes on 2 cores)"
  local ld="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$K8S -X $p.gitMajor=1 -X $p.gitMinor=37 -X $p.gitCommit=0000000000000000000000000000000000000000"
    ld="$ld -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$ROOT/hack/kubernetes" && gobuild -ldflags "$ld" -o "$BIN/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubeadm k8s.io/kubernetes/cmd/kubectl)
  "$BIN/kubeadm" version -o short | grep -qx "$K8S" || die "kubeadm reports $("$BIN/kubeadm" version -o short), not $K8S"
  mark kubernetes
}

build_tools() {
  if ! done_ etcd; then
    step "building etcd (hack/etcd)"
    (cd "$ROOT/hack/etcd" && gobuild -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3)
    mark etcd
  fi
  if ! done_ coredns; then
    step "building CoreDNS $COREDNS"
    (cd "$(modsrc github.com/coredns/coredns $COREDNS)" && gobuild -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS" -o "$BIN/coredns" .)
    mark coredns
  fi
  if ! done_ containerd; then
    step "building containerd $CONTAINERD, ctr and the runc shim"
    (cd "$(modsrc github.com/containerd/containerd/v2 $CONTAINERD)" &&
      gobuild -tags "urfave_cli_no_docs no_btrfs no_devmapper no_zfs no_aufs osusergo netgo" \
        -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD" -o "$BIN/" ./cmd/containerd ./cmd/ctr &&
      gobuild -tags "urfave_cli_no_docs no_grpc osusergo netgo" -ldflags "-s -w" -o "$BIN/" ./cmd/containerd-shim-runc-v2)
    mark containerd
  fi
  if ! done_ runc; then
    step "building runc $RUNC (cgo, static, with seccomp)"
    (cd "$(modsrc github.com/opencontainers/runc $RUNC)" &&
      nice -n 10 env CGO_ENABLED=1 GOFLAGS=-mod=mod go build -trimpath -buildmode=pie -tags "seccomp urfave_cli_no_docs netgo osusergo" \
        -ldflags "-s -w -X main.gitCommit=$RUNC -X main.version=${RUNC#v} -linkmode external -extldflags -static-pie" -o "$BIN/runc" .)
    mark runc
  fi
  if ! done_ crictl; then
    step "building crictl $CRICTL"
    (cd "$(modsrc sigs.k8s.io/cri-tools $CRICTL)" && gobuild -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=${CRICTL#v}" -o "$BIN/crictl" ./cmd/crictl)
    mark crictl
  fi
  if ! done_ cni; then
    step "building the CNI plugins $CNI: host-local, loopback, ptp, portmap"
    mkdir -p "$BIN/cni"
    (cd "$(modsrc github.com/containernetworking/plugins $CNI)" && gobuild -ldflags "-s -w" -o "$BIN/cni/" \
      ./plugins/ipam/host-local ./plugins/main/loopback ./plugins/main/ptp ./plugins/meta/portmap)
    mark cni
  fi
  if ! done_ local-path-provisioner; then
    step "building local-path-provisioner $LPP"
    (cd "$(modsrc github.com/rancher/local-path-provisioner $LPP)" && gobuild -ldflags "-s -w" -o "$BIN/local-path-provisioner" .)
    mark local-path-provisioner
  fi
  if ! done_ pause; then
    step "building pause (C, static)"
    gcc -Os -Wall -Werror -static -DVERSION=v3.10.2-0 -o "$BIN/pause" "$(moddir k8s.io/kubernetes "$K8S")/build/pause/linux/pause.c"
    strip "$BIN/pause"
    mark pause
  fi
}

# --- images ---------------------------------------------------------------

MKIMAGE="$BIN/mkimage"

# layer NAME populates and prints a fresh layer directory.
layer() {
  local d="$C/layers/$1"
  rm -rf "$d" && mkdir -p "$d"
  echo "$d"
}

build_images() {
  done_ images && return
  step "writing the images kind and kubeadm use (hack/mkimage)"
  (cd "$ROOT" && gobuild -o "$MKIMAGE" ./hack/mkimage)
  local base b d
  base=$(layer base)
  mkdir -p "$base/etc/ssl/certs" "$base/tmp" "$base/usr/local/bin" "$base/var/lib"
  chmod 1777 "$base/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' >"$base/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$base/etc/group"
  echo 'hosts: files dns' >"$base/etc/nsswitch.conf"
  cp /etc/ssl/certs/ca-certificates.crt "$base/etc/ssl/certs/"
  for b in kube-apiserver kube-controller-manager kube-scheduler; do
    d=$(layer "$b") && mkdir -p "$d/usr/local/bin" && cp "$BIN/$b" "$d/usr/local/bin/"
    "$MKIMAGE" -tag "registry.k8s.io/$b:$K8S" -layer "$base" -layer "$d" -o "$IMG/$b.tar"
  done
  d=$(layer etcd) && mkdir -p "$d/usr/local/bin" "$d/var/lib/etcd" && cp "$BIN/etcd" "$d/usr/local/bin/"
  "$MKIMAGE" -tag "registry.k8s.io/etcd:$ETCD_TAG" -layer "$base" -layer "$d" -o "$IMG/etcd.tar"
  d=$(layer coredns) && cp "$BIN/coredns" "$d/coredns"
  "$MKIMAGE" -tag "registry.k8s.io/coredns/coredns:$COREDNS" -layer "$base" -layer "$d" -entrypoint /coredns -o "$IMG/coredns.tar"
  d=$(layer pause) && cp "$BIN/pause" "$d/pause"
  "$MKIMAGE" -tag registry.k8s.io/pause:3.10 -tag registry.k8s.io/pause:3.10.2 -layer "$d" -entrypoint /pause -user 65535:65535 -o "$IMG/pause.tar"
  # kube-proxy runs iptables, ip6tables and conntrack: a Debian base.
  if ! done_ netbase; then
    step "debootstrap: the Debian base of kube-proxy (iptables, nftables, conntrack)"
    rm -rf "$C/netbase"
    debootstrap --variant=minbase --include=iptables,nftables,conntrack,ipset bookworm "$C/netbase" http://deb.debian.org/debian >"$C/netbase.log" 2>&1 ||
      die "debootstrap failed: see $C/netbase.log"
    rm -rf "$C/netbase/var/cache/apt/archives"/*.deb "$C/netbase/var/lib/apt/lists"/* "$C/netbase/usr/share/doc" "$C/netbase/usr/share/man"
    mark netbase
  fi
  d=$(layer kube-proxy) && mkdir -p "$d/usr/local/bin" && cp "$BIN/kube-proxy" "$d/usr/local/bin/"
  "$MKIMAGE" -tag "registry.k8s.io/kube-proxy:$K8S" -layer "$C/netbase" -layer "$d" -o "$IMG/kube-proxy.tar"
  d=$(layer local-path-provisioner) && mkdir -p "$d/usr/local/bin" && cp "$BIN/local-path-provisioner" "$d/usr/local/bin/"
  "$MKIMAGE" -tag "docker.io/kindest/local-path-provisioner:$LPP_TAG" -layer "$base" -layer "$d" \
    -entrypoint /usr/local/bin/local-path-provisioner -o "$IMG/local-path-provisioner.tar"
  d=$(layer local-path-helper) && mkdir -p "$d/bin" && cp /bin/busybox "$d/bin/"
  for b in sh mkdir rm chmod; do ln -sf busybox "$d/bin/$b"; done
  "$MKIMAGE" -tag "docker.io/kindest/local-path-helper:$LPH_TAG" -layer "$d" -o "$IMG/local-path-helper.tar"
  mark images
}

# --- the node -------------------------------------------------------------

build_rootfs() {
  done_ "rootfs-$ROOTFS_REV" && return
  local R="$C/rootfs" F="$KINDSRC/images/base/files"
  step "debootstrap: the node's Debian bookworm rootfs with systemd (one-time, a few minutes)"
  rm -rf "$R"
  debootstrap --variant=minbase \
    --include=systemd,dbus,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,e2fsprogs,bash,ca-certificates,curl,jq,procps \
    bookworm "$R" http://deb.debian.org/debian >"$C/rootfs.log" 2>&1 || die "debootstrap failed: see $C/rootfs.log"
  step "the node's files: kind $KIND's base files, binaries, manifests"
  rm -rf "$R/var/cache/apt/archives"/*.deb "$R/var/lib/apt/lists"/* "$R/usr/share/doc" "$R/usr/share/man"
  # kind's base image (images/base/Dockerfile), from its module.
  install -m 0755 "$F/usr/local/bin/entrypoint" "$R/usr/local/bin/entrypoint"
  mkdir -p "$R/kind/bin" "$R/kind/manifests" "$R/etc/containerd" "$R/etc/kubernetes/manifests" "$R/opt/cni/bin" "$R/etc/cni/net.d"
  install -m 0755 "$F/kind/bin/"*.sh "$R/kind/bin/"
  cp "$F/etc/crictl.yaml" "$R/etc/"
  cp "$F/etc/containerd/config.toml" "$R/etc/containerd/"
  mkdir -p "$R/etc/default" "$R/etc/sysctl.d"
  cp "$F/etc/default/kubelet" "$R/etc/default/"
  cp "$F/etc/sysctl.d/"* "$R/etc/sysctl.d/"
  cp -r "$F/etc/systemd/system/"* "$R/etc/systemd/system/"
  rm -f "$R/etc/systemd/system/containerd-fuse-overlayfs.service" # rootless only
  rm -f "$R/lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service" \
    "$R/lib/systemd/system/multi-user.target.wants/"* "$R/etc/systemd/system/"*.wants/* \
    "$R/lib/systemd/system/local-fs.target.wants/"* "$R/lib/systemd/system/sockets.target.wants/"*udev* \
    "$R/lib/systemd/system/sockets.target.wants/"*initctl* "$R/lib/systemd/system/basic.target.wants/"*
  echo 'ReadKMsg=no' >>"$R/etc/systemd/journald.conf"
  ln -sf /usr/lib/systemd/systemd "$R/sbin/init"
  # Binaries.
  install -m 0755 "$BIN/kubelet" "$BIN/kubeadm" "$BIN/kubectl" "$R/usr/bin/"
  install -m 0755 "$BIN/containerd" "$BIN/ctr" "$BIN/containerd-shim-runc-v2" "$BIN/crictl" "$R/usr/local/bin/"
  if cap_missing; then
    # Pods inside the node ask for CAP_SYS_RESOURCE too (privileged ones)
    # and for an oom_score_adj below the node's (-998 for static pods):
    # the wrapper stands in for runc there.
    (cd "$ROOT" && gobuild -ldflags "-X main.realRunc=/usr/local/sbin/runc.real" -o "$BIN/runc-nocap-node" ./hack/runc-nocap)
    install -m 0755 "$BIN/runc" "$R/usr/local/sbin/runc.real"
    install -m 0755 "$BIN/runc-nocap-node" "$R/usr/local/sbin/runc"
  else
    install -m 0755 "$BIN/runc" "$R/usr/local/sbin/runc"
  fi
  install -m 0755 "$BIN/cni/"* "$R/opt/cni/bin/"
  "$BIN/ctr" oci spec | jq '.hooks.createContainer[.hooks.createContainer|length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' |
    jq 'del(.process.rlimits)' >"$R/etc/containerd/cri-base.json"
  printf '%s' "$K8S" >"$R/kind/version"
  # The pod network: one node, so the CNI plugins' ptp with host-local
  # addresses from the node's pod CIDR, instead of kindnetd (whose source
  # the module proxy does not serve). kind's default CNI manifest is then a
  # no-op.
  cat >"$R/etc/cni/net.d/10-crawlctl.conflist" <<'EOF'
{"cniVersion": "1.0.0", "name": "crawlctl", "plugins": [
  {"type": "ptp", "ipMasq": true, "mtu": 1500,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF
  cat >"$R/kind/manifests/default-cni.yaml" <<'EOF'
# The node's CNI is /etc/cni/net.d/10-crawlctl.conflist (scripts/kind-offline.sh).
apiVersion: v1
kind: ConfigMap
metadata: {name: crawlctl-cni, namespace: kube-system}
data: {conflist: /etc/cni/net.d/10-crawlctl.conflist}
EOF
  # kind's storage manifest, from its module (a Go string constant).
  local gen="$C/src/manifests"
  rm -rf "$gen" && mkdir -p "$gen"
  sed 's/^package nodeimage/package main/' "$KINDSRC/pkg/build/nodeimage/const_storage.go" >"$gen/storage.go"
  printf 'package main\n\nimport "os"\n\nfunc main() { os.Stdout.WriteString(defaultStorageManifest) }\n' >"$gen/main.go"
  (cd "$gen" && go run storage.go main.go) >"$R/kind/manifests/default-storage.yaml"
  chroot "$R" systemctl enable kubelet containerd undo-mount-hacks >/dev/null 2>&1 ||
    die "enabling the node's units failed"
  chroot "$R" systemctl mask systemd-binfmt.service >/dev/null 2>&1 || true
  : >"$R/etc/machine-id"
  rm -f "$R/etc/hostname"
  mark "rootfs-$ROOTFS_REV"
}

# preload_images imports every image into the node rootfs's containerd
# content store, as `kind build node-image` does: not unpacked, since the
# CRI unpacks an image when a container first needs it. The node's own
# containerd and ctr run here on the host against the rootfs's
# /var/lib/containerd, so no container has to be run and committed.
preload_images() {
  local R="$C/rootfs" T="$C/preload" pid f
  [ -d "$R/usr" ] || die "no node rootfs at $R"
  rm -rf "$R/var/lib/containerd" "$T" && mkdir -p "$T"
  cat >"$T/config.toml" <<EOF
version = 3
root = "$R/var/lib/containerd"
state = "$T/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images", "io.containerd.podsandbox.controller.v1.podsandbox"]
[grpc]
  address = "$T/containerd.sock"
[ttrpc]
  address = "$T/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$T/opt"
EOF
  "$BIN/containerd" --config "$T/config.toml" >"$T/containerd.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    "$BIN/ctr" -a "$T/containerd.sock" version >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || die "the preload's containerd exited: see $T/containerd.log"
    sleep 0.2
  done
  for f in "$IMG/"*.tar; do
    if ! "$BIN/ctr" -a "$T/containerd.sock" -n k8s.io images import --label=io.cri-containerd.pinned=pinned \
      --all-platforms --no-unpack --digests "$f" >/dev/null 2>>"$T/ctr.log"; then
      kill "$pid"
      die "importing $f into the node's content store failed: see $T/ctr.log and $T/containerd.log"
    fi
  done
  kill "$pid"
  wait "$pid" || true
  rm -rf "$T"
}

build_node() {
  # The node is rebuilt when its images or its rootfs change.
  local key
  key=$( (echo "$ROOTFS_REV" && cd "$IMG" && ls -l --time-style=+%s -- *.tar) | md5sum | cut -c1-12)
  if done_ "node-$key" && docker image inspect "$NODE_IMAGE" >/dev/null 2>&1; then
    return
  fi
  step "preloading the images into the node's containerd; writing and loading the node image $NODE_IMAGE"
  preload_images
  "$MKIMAGE" -tag "$NODE_IMAGE" -layer "$C/rootfs" -entrypoint /usr/local/bin/entrypoint -entrypoint /sbin/init \
    -env container=docker -stopsignal SIGRTMIN+3 -o "$C/node.tar"
  docker load -i "$C/node.tar" >/dev/null
  rm -f "$C/node.tar" "$STAMPS"/node-*
  mark "node-$key"
}

ensure_docker
build_kubernetes
build_tools
build_images
build_stack_images
build_browser_base
build_rootfs
build_node
step_done
echo "export CRAWLCTL_NODE_IMAGE=$NODE_IMAGE"
echo "export CRAWLCTL_VALUES=$C/stack-values.yaml"
echo "export CRAWLCTL_KEDA_REPO=$C/keda-repo"
echo "export CRAWLCTL_BROWSER_BASE=$BROWSER_BASE"
