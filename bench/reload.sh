#!/usr/bin/env bash
# Hot restart under keep-alive load: wrk (which never retries) through
# `crawlctl run proxy` while it gets 20 SIGHUPs, one a second, and the same
# load and reloads on nginx (`nginx -s reload`, a reverse proxy in front of
# the same backend), in one run. For each: pairs of runs back to back,
# requests/s without reloads and during them, socket errors, non-2xx
# answers and how busy each CPU was. Prints a Markdown table.
# Usage: bench/reload.sh [connections, default 32] [reloads, default 20] [pairs, default 3]
# PERF=1 also samples CPU 1 (the servers') with `perf record -e cpu-clock`
# during each run and prints on stderr where its time went (kernel, the
# server's own code, vDSO): what a reload costs beside the run-to-run noise.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
need_go
apt_install wrk nginx util-linux
[ "${PERF:-0}" = 1 ] && apt_install linux-perf
CONNS=${1:-32}
RELOADS=${2:-20}
RUNS=${3:-3}
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

# cpu_busy N prints how busy CPU N was, in %, since the last call for it
# (from /proc/stat: all but idle and iowait).
declare -A CPU_LAST
cpu_busy() {
  local now; now=$(awk -v c="cpu$1" '$1 == c {t=0; for (i=2; i<=NF; i++) t+=$i; print t, $5+$6}' /proc/stat)
  local last=${CPU_LAST[$1]:-$now}
  CPU_LAST[$1]=$now
  awk -v a="$last" -v b="$now" 'BEGIN {split(a, x, " "); split(b, y, " "); t = y[1]-x[1]; if (t <= 0) t = 1; printf "%d", 100*(t-(y[2]-x[2]))/t}'
}

# load PORT LUA RELOAD-COMMAND (empty: none) runs wrk for $DUR seconds,
# reloading once a second from the first second, and sets RPS, SOCK (socket
# errors), NON2XX and BUSY (CPU 0 / CPU 1 busy %).
load() {
  cpu_busy 0 >/dev/null; cpu_busy 1 >/dev/null
  taskset -c 0 wrk -t2 -c"$CONNS" -d"${DUR}s" ${2:+-s "$2"} "http://127.0.0.1:$1/" > "$WORK/wrk.out" 2>&1 &
  local wrk=$! perf=
  if [ "${PERF:-0}" = 1 ]; then
    perf record -q -e cpu-clock -C 1 -o "$WORK/perf.data" -- sleep "$DUR" 2>/dev/null & perf=$!
  fi
  if [ -n "$3" ]; then
    sleep 1
    for _ in $(seq "$RELOADS"); do eval "$3"; sleep 1; done
  fi
  wait $wrk
  if [ -n "$perf" ]; then
    wait $perf || true
    printf '    CPU 1 on port %s, %s reloads: %s\n' "$1" "$([ -n "$3" ] && echo with || echo without)" \
      "$(perf report -i "$WORK/perf.data" --stdio --sort dso 2>/dev/null | awk '/^ +[0-9.]+%/ && n++ < 4 {printf "%s %s; ", $2, $1}')" >&2
  fi
  BUSY="$(cpu_busy 0)/$(cpu_busy 1)"
  RPS=$(awk '/^Requests\/sec:/ {printf "%d", $2}' "$WORK/wrk.out")
  SOCK=$(awk '/Socket errors:/ {sub(/.*Socket errors: /, ""); print}' "$WORK/wrk.out")
  SOCK=${SOCK:-0}
  NON2XX=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$WORK/wrk.out")
  NON2XX=${NON2XX:-0}
}
proxy_hup='kill -HUP "$(cat "$WORK/proxy.pid")"'
nginx_hup='nginx -c "$WORK/front/nginx.conf" -p "$WORK/front" -s reload 2>/dev/null'
nginx_name="nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') (reverse proxy)"

# pairs NAME PORT LUA RELOAD-COMMAND: $RUNS pairs of runs, each pair back
# to back so that the VM's drift between minutes does not decide the
# ratio, and in alternating order (odd pairs without reloads first, even
# ones with them first) so that neither side always gets the warmer or the
# later minute.
pairs() {
  local r without wbusy wsock with busy sock first
  for r in $(seq "$RUNS"); do
    if [ $((r % 2)) = 1 ]; then
      first=without
      load "$2" "$3" ""
      without=$RPS wbusy=$BUSY wsock="$SOCK, $NON2XX"
      load "$2" "$3" "$4"
      with=$RPS busy=$BUSY sock="$SOCK, $NON2XX"
    else
      first=with
      load "$2" "$3" "$4"
      with=$RPS busy=$BUSY sock="$SOCK, $NON2XX"
      load "$2" "$3" ""
      without=$RPS wbusy=$BUSY wsock="$SOCK, $NON2XX"
    fi
    printf '| %s | %d | %s | %s | %s | %s%% | %s | %s | %s / %s |\n' "$1" "$r" "$first" "$without" "$with" \
      "$(awk -v a="$without" -v b="$with" 'BEGIN {printf "%.0f", 100*b/a}')" "$wsock" "$sock" "$wbusy" "$busy"
  done
}

step "wrk -t2 -c$CONNS, ${DUR}s a run: $RUNS pairs without and with $RELOADS reloads one a second (servers on CPU 1; wrk, backend on CPU 0)"
echo "| server | pair | first | requests/s without | with $RELOADS reloads | with/without | socket errors, non-2xx without | with | CPU 0/1 busy % without / with |"
echo "|---|---|---|---|---|---|---|---|---|"
pairs "crawlctl proxy (SIGHUP)" $PROXY "$WORK/absolute.lua" "$proxy_hup"
pairs "$nginx_name (nginx -s reload)" $NGINX "" "$nginx_hup"
step_done
