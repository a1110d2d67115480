# Shared helpers for the scripts in this folder. Source it; do not run it.
# Every install step is idempotent and quick when the tool is already there.

# step prints one progress line on stderr (quiet with QUIET=1), after the
# duration of the step before it; step_done closes the last one.
STEP_NAME="" STEP_START=$SECONDS
step() {
  step_done
  STEP_NAME="$*" STEP_START=$SECONDS
  [ "${QUIET:-0}" = 1 ] || printf '==> %s\n' "$*" >&2
}
step_done() {
  [ -n "$STEP_NAME" ] && [ "${QUIET:-0}" != 1 ] && printf '    %ds: %s\n' $((SECONDS - STEP_START)) "$STEP_NAME" >&2
  STEP_NAME=""
}

die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# repo_root is the checkout this script lives in.
repo_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }

# need_go checks for a Go toolchain new enough for go.mod.
need_go() {
  command -v go >/dev/null 2>&1 || die "Go is not on PATH: install Go 1.26 (https://go.dev/dl) and retry"
}

APT_UPDATED=0
# apt_install PKG... installs the Debian packages that are missing.
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || die "missing packages ${missing[*]} and no apt-get: install them by hand"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  step "installing Debian packages: ${missing[*]}"
  if [ "$APT_UPDATED" = 0 ]; then
    $sudo apt-get update -qq >/dev/null || die "apt-get update failed"
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}

# need_node makes sure Node.js 20 or later and npm are here (playwright-core
# needs 20): installs Debian's nodejs and npm when node is missing.
need_node() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  local major; major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge 20 ] || die "Node.js $(node --version) is too old for playwright-core (needs 20 or later): install a newer one (e.g. from nodesource)"
}

# bench_workdir NAME makes $WORK (a temp dir) and $PIDS (background
# processes to stop): at exit each gets SIGTERM, then SIGKILL a second
# later, and $WORK is removed.
bench_workdir() {
  WORK=$(mktemp -d "/tmp/crawlctl-$1-XXXX")
  chmod 755 "$WORK"
  PIDS=()
  trap bench_cleanup EXIT
}
bench_cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}

# wait_port PORT waits (10 s at most) until something listens on
# 127.0.0.1:PORT.
wait_port() {
  for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done
  die "nothing listens on port $1"
}

# bench_backend PORT starts the benchmarks' backend on CPU 0 (in $WORK,
# stopped with $PIDS): nginx answering a small body on 127.0.0.1:PORT.
bench_backend() {
  mkdir -p "$WORK/backend"
  printf '%s\n' "worker_processes 1; daemon off; pid $WORK/backend/nginx.pid; error_log $WORK/backend/error.log;" \
    "events { worker_connections 4096; }" \
    "http { access_log off; keepalive_requests 1000000;" \
    "  server { listen 127.0.0.1:$1; location / { return 200 \"hello from the backend\\n\"; } } }" > "$WORK/backend/nginx.conf"
  taskset -c 0 nginx -c "$WORK/backend/nginx.conf" -p "$WORK/backend" & PIDS+=($!)
  wait_port "$1"
}

# go_tool NAME MODULE@VERSION installs a pinned Go tool into $(go env GOPATH)/bin
# unless that exact version is already there, and prints its path.
go_tool() {
  local name=$1 modver=$2
  local bin; bin="$(go env GOPATH)/bin/$name"
  local stamp="$bin.version"
  if [ ! -x "$bin" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$modver" ]; then
    step "installing $modver (one-time build)"
    GOFLAGS= GOTOOLCHAIN=local CGO_ENABLED=0 go install -trimpath "$modver" >&2 || die "go install $modver failed"
    echo "$modver" > "$stamp"
  fi
  echo "$bin"
}

# build_crawlctl builds the static binary into bin/crawlctl with version stamps.
build_crawlctl() {
  local root; root=$(repo_root)
  local commit date
  commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
  date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  local pkg=github.com/crawlctl/crawlctl/pkg/version
  step "building bin/crawlctl ($commit)"
  (cd "$root" && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X $pkg.Version=dev-$commit -X $pkg.Commit=$commit -X $pkg.Date=$date" \
    -o bin/crawlctl ./cmd/crawlctl) || die "build failed"
}

# helm_packages prints the import paths of this module's packages that link
# the Helm SDK (test.sh runs their tests without -race).
helm_packages() {
  go list -f '{{.ImportPath}} {{join .Deps " "}}' ./... | awk '/ helm\.sh\/helm\/v3[\/ ]/ {print $1}'
}
