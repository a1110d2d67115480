#!/usr/bin/env bash
# Forward-proxy throughput on loopback: crawlctl's egress proxy vs squid and
# tinyproxy (forward proxies) and nginx (reverse proxy, the ceiling), all in
# front of the same nginx backend, one run each with the same wrk settings.
# Each proxy is pinned to CPU 1 (one worker process / GOMAXPROCS=1); wrk and
# the backend share CPU 0. Prints a Markdown table.
# Usage: bench/proxy.sh [duration, default 10s] [connections, default 64]
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
need_go
apt_install wrk squid tinyproxy nginx util-linux
DUR=${1:-10s}
CONNS=${2:-64}
ROOT=$(repo_root)
bench_workdir proxybench

BACKEND=18080
# The backend: nginx answering a small body, on CPU 0.
bench_backend $BACKEND

# The runtime build, what the proxy's pods run (BENCH_BUILD=full: the build
# users install, which also links the Helm SDK and client-go).
tags=-tags=crawlctl_runtime
[ "${BENCH_BUILD:-}" = full ] && tags=
step "building crawlctl (${BENCH_BUILD:-runtime} build)"
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath $tags -o "$WORK/crawlctl" ./cmd/crawlctl)

# crawlctl proxy
GOMAXPROCS=1 taskset -c 1 "$WORK/crawlctl" run proxy -q --listen 127.0.0.1:13128 --admin-listen 127.0.0.1:0 \
  --allow 127.0.0.1:$BACKEND & PIDS+=($!)

# squid: a forward proxy with caching off, one process.
mkdir -p "$WORK/squid"; chown proxy:proxy "$WORK/squid" 2>/dev/null || true
cat > "$WORK/squid/squid.conf" <<EOF
http_port 127.0.0.1:13129
acl localnet src 127.0.0.0/8
http_access allow localnet
http_access deny all
cache deny all
cache_mem 0 MB
access_log none
cache_log $WORK/squid/cache.log
pid_filename $WORK/squid/squid.pid
coredump_dir $WORK/squid
workers 1
shutdown_lifetime 0 seconds
EOF
taskset -c 1 squid -N -f "$WORK/squid/squid.conf" & PIDS+=($!)

# tinyproxy
cat > "$WORK/tinyproxy.conf" <<EOF
Port 13130
Listen 127.0.0.1
Timeout 600
MaxClients 1024
Allow 127.0.0.1
LogLevel Critical
EOF
taskset -c 1 tinyproxy -d -c "$WORK/tinyproxy.conf" & PIDS+=($!)

# nginx as a reverse proxy with upstream keep-alive: the ceiling.
mkdir -p "$WORK/front"
cat > "$WORK/front/nginx.conf" <<EOF
worker_processes 1; daemon off; pid $WORK/front/nginx.pid; error_log $WORK/front/error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$BACKEND; keepalive 128; }
  server { listen 127.0.0.1:13131;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
EOF
taskset -c 1 nginx -c "$WORK/front/nginx.conf" -p "$WORK/front" & PIDS+=($!)

for p in 13128 13129 13130 13131; do wait_port $p; done
sleep 1

# wrk sends absolute-form requests (GET http://backend/x), as a proxy client does.
cat > "$WORK/absolute.lua" <<EOF
wrk.path = "http://127.0.0.1:$BACKEND/x"
wrk.headers["Host"] = "127.0.0.1:$BACKEND"
EOF

run() { # name port
  local out
  out=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"$DUR" --latency -s "$WORK/absolute.lua" "http://127.0.0.1:$2/" 2>&1)
  local rps p99 errs
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx or 3xx responses:/ {print $NF} /Socket errors:/ {print "socket errors"}' <<<"$out" | tr '\n' ' ')
  printf '| %s | %s | %s | %s |\n' "$1" "$rps" "$p99" "${errs:-none}"
}
step "wrk -t1 -c$CONNS -d$DUR per proxy (proxy on CPU 1; wrk and backend on CPU 0)"
echo "| proxy | requests/s | p99 latency | errors |"
echo "|---|---|---|---|"
run "crawlctl proxy" 13128
run "squid $(squid -v | awk 'NR==1{print $4}')" 13129
run "tinyproxy $(tinyproxy -v 2>&1 | awk '{print $2}')" 13130
run "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') (reverse proxy, ceiling)" 13131

step "resident memory of crawlctl proxy with 1,000 open CONNECT tunnels"
(cd "$ROOT" && go test ./pkg/runtime/proxy -run '^$' -bench BenchmarkProxyTunnels -benchtime 1x | grep -E '^Benchmark')
