#!/usr/bin/env bash
# Hot restart under keep-alive load: wrk (which never retries) through
# `crawlctl run proxy` while it gets 20 SIGHUPs, one a second, and the same
# load and reloads on nginx (`nginx -s reload`, a reverse proxy in front of
# the same backend), in one run. For each: requests/s without reloads,
# requests/s during them, socket errors and non-2xx answers. Prints a
# Markdown table.
# Usage: bench/reload.sh [connections, default 32] [reloads, default 20]
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
need_go
apt_install wrk nginx util-linux
CONNS=${1:-32}
RELOADS=${2:-20}
DUR=$((RELOADS + 2))
ROOT=$(repo_root)
bench_workdir reloadbench

BACKEND=18090 PROXY=13138 NGINX=13139
bench_backend $BACKEND
mkdir -p "$WORK/front"
# nginx as the reverse proxy that gets reloaded: a master and one worker,
# daemonised so that -s reload finds its pid file.
cat > "$WORK/front/nginx.conf" <<EOF
worker_processes 1; pid $WORK/front/nginx.pid; error_log $WORK/front/error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$BACKEND; keepalive 128; }
  server { listen 127.0.0.1:$NGINX;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
EOF
taskset -c 1 nginx -c "$WORK/front/nginx.conf" -p "$WORK/front"
# After SIGHUPs the proxy serving is a successor of the one started here:
# stop the one the pid file names too.
trap 'nginx -c "$WORK/front/nginx.conf" -p "$WORK/front" -s stop 2>/dev/null || true
  [ -s "$WORK/proxy.pid" ] && kill "$(cat "$WORK/proxy.pid")" 2>/dev/null; bench_cleanup' EXIT

step "building crawlctl (the runtime build, what pods run)"
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -tags crawlctl_runtime -o "$WORK/crawlctl" ./cmd/crawlctl)
GOMAXPROCS=1 taskset -c 1 "$WORK/crawlctl" run proxy -q --listen 127.0.0.1:$PROXY --admin-listen 127.0.0.1:0 \
  --allow 127.0.0.1:$BACKEND --pid-file "$WORK/proxy.pid" & PIDS+=($!)
for p in $BACKEND $PROXY $NGINX; do wait_port $p; done
sleep 1

cat > "$WORK/absolute.lua" <<EOF
wrk.path = "http://127.0.0.1:$BACKEND/x"
wrk.headers["Host"] = "127.0.0.1:$BACKEND"
EOF

# load NAME PORT LUA SECONDS RELOAD-COMMAND (empty: none) prints a table row.
load() {
  local out
  taskset -c 0 wrk -t2 -c"$CONNS" -d"${4}s" ${3:+-s "$3"} "http://127.0.0.1:$2/" > "$WORK/wrk.out" 2>&1 &
  local wrk=$!
  if [ -n "$5" ]; then
    sleep 1
    for _ in $(seq "$RELOADS"); do eval "$5"; sleep 1; done
  fi
  wait $wrk
  out=$(cat "$WORK/wrk.out")
  local rps sock non2xx
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  sock=$(awk '/Socket errors:/ {sub(/.*Socket errors: /, ""); print}' <<<"$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")
  printf '| %s | %s | %s | %s | %s |\n' "$1" "${6:-none}" "$rps" "${sock:-0}" "${non2xx:-0}"
}
proxy_hup='kill -HUP "$(cat "$WORK/proxy.pid")"'
nginx_hup='nginx -c "$WORK/front/nginx.conf" -p "$WORK/front" -s reload'

step "wrk -t2 -c$CONNS, ${DUR}s: without reloads, then with $RELOADS reloads one a second (servers on CPU 1; wrk, backend on CPU 0)"
echo "| server | reloads | requests/s | socket errors | non-2xx |"
echo "|---|---|---|---|---|"
load "crawlctl proxy" $PROXY "$WORK/absolute.lua" "$DUR" "" 
load "crawlctl proxy" $PROXY "$WORK/absolute.lua" "$DUR" "$proxy_hup" "$RELOADS SIGHUP"
load "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') (reverse proxy)" $NGINX "" "$DUR" ""
load "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') (reverse proxy)" $NGINX "" "$DUR" "$nginx_hup" "$RELOADS nginx -s reload"
