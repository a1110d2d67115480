# kind-stack-images.sh is sourced by kind-offline.sh: it builds the images
# of the crawl stack's own services that no registry can give here, and
# writes the chart values that point the stack at them
# ($C/stack-values.yaml, which `crawlctl up -f` reads). Redis and
# PostgreSQL are Debian bookworm's packages on a debootstrap rootfs, with
# entrypoints that do what the official images' do for the chart's
# arguments; Prometheus (with Kubernetes service discovery only, which
# Debian's package leaves out) and kube-state-metrics are built from their
# Go modules. Kafka is the
# project's own in-memory stand-in (`crawlctl run broker`), chosen by the
# kafka.standIn value. KEDA is built from its module, with a chart
# repository assembled from the module's own manifests ($C/keda-repo).
# The browser worker's base (build_browser_base) is Debian's Chromium with
# this machine's Node.js and playwright-core from npm, in place of the
# official Playwright image. Users keep the official images and charts
# (the defaults).

KSM=v2.15.0         # k8s.io/kube-state-metrics/v2 (the proxy has no v2.16.0, the chart's default)
PROMETHEUS=$(cd "$ROOT" && go list -m -f '{{.Version}}' github.com/prometheus/prometheus) # go.mod's
KEDA=v$(sed -n 's/^\tKEDAVersion *= "\(.*\)"$/\1/p' "$ROOT/pkg/stack/options.go")                    # stack.KEDAVersion
STACK_TAG=bookworm-offline

# build_keda builds KEDA's operator, metrics API server and admission
# webhooks from its module, in a module of their own (KEDA pins k8s.io at
# v0.31 with replace directives, which a dependency's go.mod does not
# carry: they and its go.sum are copied in).
build_keda() {
  [ -x "$BIN/keda" ] && [ -x "$BIN/keda-adapter" ] && [ -x "$BIN/keda-admission-webhooks" ] && return
  step "building KEDA $KEDA: operator, metrics API server, admission webhooks (one-time, 10-20 minutes on 2 cores)"
  local src="$C/src/keda-build" k
  k=$(go mod download -json "github.com/kedacore/keda/v2@$KEDA" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -n "$k" ] || die "the module proxy has no github.com/kedacore/keda/v2@$KEDA"
  rm -rf "$src" && mkdir -p "$src"
  { printf 'module crawlctl.local/kedabuild\n\ngo 1.23.8\n\nrequire github.com/kedacore/keda/v2 %s\n\n' "$KEDA"
    sed -n '/^replace (/,/^)/p' "$k/go.mod"; } >"$src/go.mod"
  install -m 0644 "$k/go.sum" "$src/go.sum"
  printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "github.com/kedacore/keda/v2/cmd/adapter"\n\t_ "github.com/kedacore/keda/v2/cmd/operator"\n\t_ "github.com/kedacore/keda/v2/cmd/webhooks"\n)\n' >"$src/tools.go"
  (cd "$src" && GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod tidy >"$src/tidy.log" 2>&1) || die "go mod tidy for KEDA failed: see $src/tidy.log"
  (cd "$src" && gobuild -ldflags "-s -X=github.com/kedacore/keda/v2/version.Version=${KEDA#v}" -o "$src/bin/" \
    github.com/kedacore/keda/v2/cmd/operator github.com/kedacore/keda/v2/cmd/adapter github.com/kedacore/keda/v2/cmd/webhooks)
  install -m 0755 "$src/bin/operator" "$BIN/keda"
  install -m 0755 "$src/bin/adapter" "$BIN/keda-adapter"
  install -m 0755 "$src/bin/webhooks" "$BIN/keda-admission-webhooks"
}

build_stack_images() {
  local sb="$C/svcbase-redis-postgresql"
  if ! done_ svcbase-redis-postgresql; then
    step "debootstrap: the Debian base of the stack's Redis and PostgreSQL (one-time, a few minutes)"
    rm -rf "$sb"
    debootstrap --variant=minbase --include=redis-server,postgresql,ca-certificates \
      bookworm "$sb" http://deb.debian.org/debian >"$sb.log" 2>&1 || die "debootstrap failed: see $sb.log"
    rm -rf "$sb/var/cache/apt/archives"/*.deb "$sb/var/lib/apt/lists"/* "$sb/usr/share/doc" "$sb/usr/share/man" \
      "$sb/var/lib/postgresql/15/main"
    mark svcbase-redis-postgresql
  fi
  if [ ! -x "$BIN/prometheus" ]; then
    step "building Prometheus (github.com/prometheus/prometheus $PROMETHEUS, Kubernetes discovery only; one-time, several minutes)"
    local psrc
    psrc=$(modsrc github.com/prometheus/prometheus "$PROMETHEUS")
    (cd "$psrc" && GOWORK=off gobuild -tags remove_all_sd,enable_kubernetes_sd -ldflags=-s -o "$BIN/prometheus" ./cmd/prometheus)
  fi
  if [ ! -x "$BIN/kube-state-metrics" ]; then
    step "building kube-state-metrics $KSM"
    local src
    src=$(modsrc k8s.io/kube-state-metrics/v2 "$KSM")
    (cd "$src" && gobuild -ldflags=-s -o "$BIN/kube-state-metrics" .)
  fi
  build_keda
  done_ "stack-images-$STACK_TAG-prometheus-$PROMETHEUS-keda-$KEDA" && return
  step "writing the stack's service images (hack/mkimage)"
  local d
  d=$(layer redis) && mkdir -p "$d/usr/local/bin"
  cat >"$d/usr/local/bin/entrypoint" <<'EOF'
#!/bin/sh
# As the official image: reachable in the cluster (no protected mode), the
# chart's arguments after.
exec runuser -u redis -- redis-server --protected-mode no --bind 0.0.0.0 --dir /tmp "$@"
EOF
  chmod 0755 "$d/usr/local/bin/entrypoint"
  "$MKIMAGE" -tag "crawlctl/redis:$STACK_TAG" -layer "$sb" -layer "$d" -entrypoint /usr/local/bin/entrypoint -o "$IMG/stack-redis.tar"

  d=$(layer postgres) && mkdir -p "$d/usr/local/bin"
  cat >"$d/usr/local/bin/entrypoint" <<'EOF'
#!/bin/sh
# As the official image for the variables the chart sets: POSTGRES_USER
# (the superuser), POSTGRES_DB, POSTGRES_HOST_AUTH_METHOD; the chart's
# arguments go to postgres.
set -e
export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
user="${POSTGRES_USER:-postgres}" auth="${POSTGRES_HOST_AUTH_METHOD:-trust}"
mkdir -p "$PGDATA" /run/postgresql
chown -R postgres:postgres "$PGDATA" /run/postgresql
chmod 0700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  runuser -u postgres -- initdb -D "$PGDATA" -U "$user" --auth="$auth" >/dev/null
  echo "host all all all $auth" >>"$PGDATA/pg_hba.conf"
  if [ -n "$POSTGRES_DB" ] && [ "$POSTGRES_DB" != postgres ]; then
    echo "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$user\"" | runuser -u postgres -- postgres --single -D "$PGDATA" postgres >/dev/null
  fi
fi
exec runuser -u postgres -- postgres -D "$PGDATA" -c listen_addresses='*' "$@"
EOF
  chmod 0755 "$d/usr/local/bin/entrypoint"
  "$MKIMAGE" -tag "crawlctl/postgres:$STACK_TAG" -layer "$sb" -layer "$d" -entrypoint /usr/local/bin/entrypoint \
    -env PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin -o "$IMG/stack-postgres.tar"

  d=$(layer prometheus) && mkdir -p "$d/bin" "$d/prometheus" && chmod 0777 "$d/prometheus" && cp "$BIN/prometheus" "$d/bin/"
  "$MKIMAGE" -tag "crawlctl/prometheus:${PROMETHEUS#v}" -layer "$C/layers/base" -layer "$d" -entrypoint /bin/prometheus \
    -workdir /prometheus -user 65534:65534 -o "$IMG/stack-prometheus.tar"

  d=$(layer kube-state-metrics) && mkdir -p "$d/usr/local/bin" && cp "$BIN/kube-state-metrics" "$d/usr/local/bin/"
  "$MKIMAGE" -tag "crawlctl/kube-state-metrics:$KSM" -layer "$C/layers/base" -layer "$d" \
    -entrypoint /usr/local/bin/kube-state-metrics -user 65534:65534 -o "$IMG/stack-kube-state-metrics.tar"

  # KEDA: its three images, and a chart repository assembled from its
  # module's config/default (hack/kedachart), which up serves on loopback.
  local b k
  for b in keda keda-adapter keda-admission-webhooks; do
    d=$(layer "$b") && cp "$BIN/$b" "$d/$b"
  done
  "$MKIMAGE" -tag "crawlctl/keda:${KEDA#v}" -layer "$C/layers/base" -layer "$C/layers/keda" -entrypoint /keda -user 65532:65532 -o "$IMG/keda.tar"
  "$MKIMAGE" -tag "crawlctl/keda-metrics-apiserver:${KEDA#v}" -layer "$C/layers/base" -layer "$C/layers/keda-adapter" \
    -entrypoint /keda-adapter -user 65532:65532 -o "$IMG/keda-metrics-apiserver.tar"
  "$MKIMAGE" -tag "crawlctl/keda-admission-webhooks:${KEDA#v}" -layer "$C/layers/base" -layer "$C/layers/keda-admission-webhooks" \
    -entrypoint /keda-admission-webhooks -user 65532:65532 -o "$IMG/keda-admission-webhooks.tar"
  k=$(go mod download -json "github.com/kedacore/keda/v2@$KEDA" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  "$BIN/kubectl" kustomize "$k/config/default" >"$C/keda-manifests.yaml" || die "kubectl kustomize of KEDA's config/default failed"
  (cd "$ROOT" && gobuild -o "$BIN/kedachart" ./hack/kedachart)
  rm -rf "$C/keda-repo"
  "$BIN/kedachart" -manifests "$C/keda-manifests.yaml" -version "${KEDA#v}" -image-prefix crawlctl/ -o "$C/keda-repo"

  cat >"$C/stack-values.yaml" <<EOF
# Written by scripts/kind-offline.sh: the stack's images built on this
# machine (\`crawlctl up --provider kind -f $C/stack-values.yaml\`).
kafka: {standIn: true}   # crawlctl run broker, in memory: a stand-in for apache/kafka
images:
  redis: crawlctl/redis:$STACK_TAG
  postgres: crawlctl/postgres:$STACK_TAG
  prometheus: crawlctl/prometheus:${PROMETHEUS#v}
  kubeStateMetrics: crawlctl/kube-state-metrics:$KSM
EOF
  rm -f "$STAMPS"/stack-images-*
  mark "stack-images-$STACK_TAG-prometheus-$PROMETHEUS-keda-$KEDA"
}

# build_browser_base writes $BROWSER_BASE into Docker: Debian bookworm's
# Chromium on a debootstrap rootfs, this machine's Node.js (20 or later;
# bookworm's is 18, too old for playwright-core) and playwright-core
# $PLAYWRIGHT from npm under /opt/crawlctl/playwright (playwright.ImagePrefix),
# which `crawlctl up --provider kind --browser-base` builds the browser
# worker image on. debootstrap does not pick a provider for a virtual
# package, so dbus-user-session is named for dconf-service's dbus-session-bus.
PLAYWRIGHT=$(sed -n 's/^const Version = "\(.*\)"$/\1/p' "$ROOT/pkg/playwright/playwright.go")   # playwright.Version
BROWSER_BASE=crawlctl/browser-base:$STACK_TAG-playwright-$PLAYWRIGHT
build_browser_base() {
  if done_ "browser-base-$PLAYWRIGHT" && docker image inspect "$BROWSER_BASE" >/dev/null 2>&1; then
    return
  fi
  need_node
  local rb="$C/browserbase"
  if ! done_ browserbase-rootfs; then
    step "debootstrap: Debian's Chromium for the browser worker's base (one-time, a few minutes)"
    rm -rf "$rb"
    debootstrap --variant=minbase --include=chromium,ca-certificates,fonts-liberation,dbus,dbus-user-session \
      bookworm "$rb" http://deb.debian.org/debian >"$rb.log" 2>&1 || die "debootstrap failed: see $rb.log"
    rm -rf "$rb/var/cache/apt/archives"/*.deb "$rb/var/lib/apt/lists"/* "$rb/usr/share/doc" "$rb/usr/share/man"
    mark browserbase-rootfs
  fi
  step "writing the browser worker's base $BROWSER_BASE (playwright-core $PLAYWRIGHT from npm)"
  local d
  d=$(layer browser) && mkdir -p "$d/usr/local/bin" "$d/opt/crawlctl/playwright"
  cp "$(command -v node)" "$d/usr/local/bin/node"
  npm install --prefix "$d/opt/crawlctl/playwright" --no-save --no-audit --no-fund --loglevel=error "playwright-core@$PLAYWRIGHT" >/dev/null ||
    die "npm install playwright-core@$PLAYWRIGHT failed"
  "$MKIMAGE" -tag "$BROWSER_BASE" -layer "$rb" -layer "$d" -env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    -o "$C/browser-base.tar"
  docker load -i "$C/browser-base.tar" >/dev/null || die "docker load of $BROWSER_BASE failed"
  rm -f "$C/browser-base.tar" "$STAMPS"/browser-base-*
  mark "browser-base-$PLAYWRIGHT"
}
