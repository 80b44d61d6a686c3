#!/usr/bin/env bash
# The forwarding benchmark (docs/PERFORMANCE.md): wrk against three targets in one run,
# with the same CPU pinning, on the same requests:
#
#   backend  the in-memory ECI backend (`ramgate backend`) directly: the ceiling;
#   nginx    nginx in front of it (proxy_pass, keep-alive upstream, no authorization);
#   ramgate  ramgate in front of it (release build, decision log off).
#
# Workloads (benches/load.lua): `single` (DescribeContainerLog, metadata cached),
# `describe` (an allowed Describe whose 20 items ramgate checks), `empty` (a Describe that
# ramgate empties silently without calling the backend) and `miss` (DescribeContainerLog
# over 2,000 ids with [metadata] ttl_ms = 100: mostly cache misses).
#
# Prints a table: requests/s, p50, p99, the CPU time the target's processes spent per
# request, and the ramgate/nginx ratios. Each cell is the median of REPEAT runs; runs of
# the three targets are interleaved so that load from other processes falls on all alike.
#
# Pinning (2 cores): the proxy under test (ramgate or nginx: one worker each) on
# PROXY_CPU; wrk and the backend share BACKEND_CPU. When the backend or wrk saturates its
# core before the proxy does, requests/s measures them, not the proxy: the CPU-per-request
# column still compares the proxies.
#
# Settings (environment): DURATION (s, default 8), CONNS (default 32), REPEAT (default 3),
# WORKLOADS (default "single describe empty miss"), PROXY_CPU (1), BACKEND_CPU (0),
# RAMGATE_BIN (default: built here with `cargo build --release`).
#
# Traffic goes to 127.0.0.1 only; every run is bounded by DURATION; everything started is
# stopped, and the temporary directory removed, on exit.
set -euo pipefail

DURATION=${DURATION:-8}
CONNS=${CONNS:-32}
REPEAT=${REPEAT:-3}
WORKLOADS=${WORKLOADS:-"single describe empty miss"}
PROXY_CPU=${PROXY_CPU:-1}
BACKEND_CPU=${BACKEND_CPU:-0}
WRK_CPU=${WRK_CPU:-$BACKEND_CPU}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# --- tools -------------------------------------------------------------------------------
need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
NGINX=$(command -v nginx || true)
[[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
[[ -z $NGINX ]] && need_apt+=(nginx)
command -v python3 >/dev/null || need_apt+=(python3)
command -v curl >/dev/null || need_apt+=(curl)
if ((${#need_apt[@]})); then
  echo "installing ${need_apt[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi

# shellcheck source=lib.sh
source "$ROOT/benches/lib.sh"
ramgate_bin
temporary_workspace ramgate-load


free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- backend, seeded -----------------------------------------------------------------------
taskset -c "$BACKEND_CPU" "$RAMGATE_BIN" backend --listen 127.0.0.1:0 >"$TMP/backend.log" 2>&1 &
BACKEND_PID=$!
PIDS+=("$BACKEND_PID")
BACKEND=$(listening backend "$TMP/backend.log")
curl -fsS -X POST "http://$BACKEND/_backend/faults?record_requests=false" >/dev/null

# 2,000 groups tagged name=liumi, env=test (the `miss` ids; the first is the `single` one)
# and 500 tagged env=prod, all in the default resource group.
python3 - "$BACKEND" "$TMP/ids" <<'EOF'
import http.client, json, sys
host, out = sys.argv[1], sys.argv[2]
conn = http.client.HTTPConnection(host)
ids = []
for i in range(2500):
    env = "test" if i < 2000 else "prod"
    q = ("/?Action=CreateContainerGroup&Version=2018-08-08&RegionId=cn-hangzhou"
         f"&ContainerGroupName=bench-{i}&ResourceGroupId=rg-default"
         f"&Tag.1.Key=name&Tag.1.Value=liumi&Tag.2.Key=env&Tag.2.Value={env}"
         "&Container.1.Name=c1&Container.1.Image=nginx")
    conn.request("POST", q)
    r = conn.getresponse()
    body = json.loads(r.read())
    assert r.status == 200, body
    if env == "test":
        ids.append(body["ContainerGroupId"])
open(out, "w").write("\n".join(ids) + "\n")
EOF

# --- nginx ---------------------------------------------------------------------------------
NGINX_PORT=$(free_port)
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<EOF
# One worker, as ramgate gets one core; keep-alive to the backend; no logging, no buffering
# to disk for these small answers.
user $(id -un) $(id -gn);
worker_processes 1;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  upstream backend { server $BACKEND; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
taskset -c "$PROXY_CPU" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" \
  >"$TMP/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
NGINX_ADDR=127.0.0.1:$NGINX_PORT

# --- ramgate: one with the default metadata TTL, one with a short TTL for `miss` -----------
start_ramgate() {
  local name=$1 ttl_ms=$2
  ramgate_config "$TMP/$name.toml" "$ROOT/config/policies" "[metadata]
ttl_ms = $ttl_ms
negative_ttl_ms = $ttl_ms"
  taskset -c "$PROXY_CPU" "$RAMGATE_BIN" serve --config "$TMP/$name.toml" >"$TMP/$name.log" 2>&1 &
  PIDS+=("$!")
  eval "${name}_PID=$!"
  eval "${name}_ADDR=$(listening proxy "$TMP/$name.log")"
}
start_ramgate ramgate 30000
start_ramgate ramgate_miss 100
for _ in $(seq 1 100); do curl -fsS "http://$NGINX_ADDR/_backend/faults" >/dev/null 2>&1 && break; sleep 0.05; done

# --- sanity: each workload answers as expected through ramgate -------------------------------
FIRST_ID=$(head -1 "$TMP/ids")
check() {
  local what=$1 query=$2 who=$3 want=$4
  local body
  body=$(curl -sS -H "x-ramgate-principal: acs:ram::1234567890123456:$who" \
    "http://$ramgate_ADDR/?$query&Version=2018-08-08&Format=JSON&RegionId=cn-hangzhou")
  python3 -c "import json,sys; b=json.loads(sys.argv[1]); assert $want, b" "$body" ||
    { echo "sanity check '$what' failed: $body" >&2; exit 1; }
}
check single "Action=DescribeContainerLog&ContainerGroupId=$FIRST_ID" user/liumi '"Code" not in b'
check describe "Action=DescribeContainerGroups&Tag.1.Key=name&Tag.1.Value=liumi&Tag.2.Key=env&Tag.2.Value=test" user/liumi 'len(b["ContainerGroups"]) == 20'
check empty "Action=DescribeContainerGroups" user/test 'b["TotalCount"] == 0 and b["ContainerGroups"] == []'

# --- measuring -------------------------------------------------------------------------------
# "utime stime" (clock ticks) of a process and its children.
ticks() {
  local user=0 sys=0 pid u s
  for pid in "$@" $(ps -o pid= --ppid "$1" 2>/dev/null); do
    [[ -r /proc/$pid/stat ]] || continue
    read -r u s < <(awk '{print $14, $15}' "/proc/$pid/stat")
    user=$((user + u)) sys=$((sys + s))
  done
  echo "$user $sys"
}
HZ=$(getconf CLK_TCK)

# One wrk run → "rps p50_ms p99_ms cpu_us_per_request non2xx user_us sys_us".
run() {
  local addr=$1 workload=$2 pid=$3
  local before after out u0 s0 u1 s1
  read -r u0 s0 < <(ticks "$pid")
  out=$(taskset -c "$WRK_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency \
    -s "$ROOT/benches/load.lua" "http://$addr" -- "$workload" "$TMP/ids")
  read -r u1 s1 < <(ticks "$pid")
  echo "$out" >>"$TMP/wrk.log"
  echo "$out" | awk -v user=$((u1 - u0)) -v sys=$((s1 - s0)) -v hz="$HZ" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    / requests in / { n = $1 }
    /Requests\/sec:/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    /Non-2xx/ { bad = $NF }
    function per(t) { return n ? t * 1e6 / hz / n : 0 }
    END { printf "%.0f %.3f %.3f %.1f %d %.1f %.1f\n", rps, p50, p99, per(user + sys), bad, per(user), per(sys) }'
}

median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2)}'; }

declare -A RESULT
echo "load: ${DURATION}s × $REPEAT per cell, $CONNS connections, proxy on CPU $PROXY_CPU," \
  "backend and wrk on CPU $BACKEND_CPU" >&2
for workload in $WORKLOADS; do
  rg_pid=$ramgate_PID rg_addr=$ramgate_ADDR
  if [[ $workload == miss ]]; then rg_pid=$ramgate_miss_PID rg_addr=$ramgate_miss_ADDR; fi
  for target in backend nginx ramgate; do : >"$TMP/$workload.$target"; done
  for rep in $(seq 1 "$REPEAT"); do
    for target in backend nginx ramgate; do
      case $target in
        backend) line=$(run "$BACKEND" "$workload" "$BACKEND_PID") ;;
        nginx) line=$(run "$NGINX_ADDR" "$workload" "$NGINX_PID") ;;
        ramgate) line=$(run "$rg_addr" "$workload" "$rg_pid") ;;
      esac
      echo "  $workload $target run $rep: $line" >&2
      echo "$line" >>"$TMP/$workload.$target"
    done
  done
  for target in backend nginx ramgate; do
    f=$TMP/$workload.$target
    RESULT[$workload.$target]="$(cut -d' ' -f1 "$f" | median) $(cut -d' ' -f2 "$f" | median) \
$(cut -d' ' -f3 "$f" | median) $(cut -d' ' -f4 "$f" | median) $(cut -d' ' -f5 "$f" | sort -g | tail -1) \
$(cut -d' ' -f6 "$f" | median) $(cut -d' ' -f7 "$f" | median)"
  done
done

echo
echo "| workload | target | requests/s | p50 (ms) | p99 (ms) | target CPU per request (µs): all / user / kernel | non-2xx |"
echo "|---|---|---|---|---|---|---|"
for workload in $WORKLOADS; do
  for target in backend nginx ramgate; do
    read -r rps p50 p99 cpu bad user sys <<<"${RESULT[$workload.$target]}"
    printf "| %s | %s | %.0f | %.3f | %.3f | %.1f / %.1f / %.1f | %d |\n" "$workload" "$target" "$rps" "$p50" "$p99" "$cpu" "$user" "$sys" "$bad"
  done
done
echo
echo "| workload | ramgate/nginx requests/s | ramgate/nginx p99 | ramgate/nginx CPU per request |"
echo "|---|---|---|---|"
for workload in $WORKLOADS; do
  read -r n_rps _ n_p99 n_cpu _ <<<"${RESULT[$workload.nginx]}"
  read -r r_rps _ r_p99 r_cpu _ <<<"${RESULT[$workload.ramgate]}"
  awk -v w="$workload" -v a="$r_rps" -v b="$n_rps" -v c="$r_p99" -v d="$n_p99" -v e="$r_cpu" -v f="$n_cpu" \
    'BEGIN { printf "| %s | %.2f | %.2f | %.2f |\n", w, a / b, c / d, (f > 0 ? e / f : 0) }'
done
echo
for workload in $WORKLOADS; do
  read -r n_rps _ n_p99 _ _ <<<"${RESULT[$workload.nginx]}"
  read -r r_rps _ r_p99 _ _ <<<"${RESULT[$workload.ramgate]}"
  case $workload in
    single) awk -v a="$r_rps" -v b="$n_rps" -v c="$r_p99" -v d="$n_p99" 'BEGIN {
      printf "budget single: requests/s ≥ nginx: %s (%.2f); p99 ≤ nginx: %s (%.2f)\n",
        (a >= b ? "met" : "NOT met"), a / b, (c <= d ? "met" : "NOT met"), c / d }' ;;
    describe) awk -v a="$r_rps" -v b="$n_rps" 'BEGIN {
      printf "budget describe: requests/s ≥ 80%% of nginx: %s (%.2f)\n", (a >= 0.8 * b ? "met" : "NOT met"), a / b }' ;;
  esac
done
