#!/usr/bin/env bash
# The forwarding benchmark (docs/PERFORMANCE.md): a load generator against three targets in
# one run, with the same CPU pinning, on the same requests:
#
#   backend  the in-memory ECI backend (`ramgate backend`) directly: the ceiling;
#   nginx    nginx in front of it (proxy_pass, keep-alive upstream, no authorization);
#   ramgate  ramgate in front of it (release build).
#
# Workloads (each names the request mix of benches/load.lua, and which nginx and ramgate):
#
#   single     DescribeContainerLog, metadata cached; both logs off.
#   describe   an allowed Describe whose 20 items ramgate checks; both logs off.
#   empty      a Describe that ramgate empties silently without calling the backend.
#   miss       DescribeContainerLog over 2,000 ids with [metadata] ttl_ms = 100.
#   audit      `single` as people run it: ramgate with its defaults (every decision logged),
#              the log written to a file; nginx with its access log (the default `combined`
#              format, unbuffered) written to a file.
#   signed-v3  `single`, ACS3-HMAC-SHA256-signed, each request with its own nonce (signed
#              before the run by benches/sign_requests.py); ramgate verifies, nginx passes on.
#   signed-v1  the same, RPC v1 HMAC-SHA1-signed.
#   tls        `single` over TLS 1.3 (ECDSA P-256 certificate, session cache), keep-alive.
#   mtls       the same with a client certificate, which is liumi's identity for ramgate.
#              wrk cannot present one: examples/tls_load.rs drives both servers instead.
#
# Prints a table: requests/s, p50, p99, the CPU time the target's processes spent per
# request (user and kernel), the ramgate/nginx ratios, and each budget of
# docs/PERFORMANCE.md met or not. Each cell is the median of REPEAT rounds; each round
# runs every workload against every target in turn, so that load from other processes
# falls on all cells alike (budget 3 compares two ramgate cells: `signed-*` and `single`).
#
# Pinning (2 cores): the proxy under test (ramgate or nginx: one worker each) on
# PROXY_CPU; the load generator and the backend share BACKEND_CPU. When the backend or the
# load generator saturates its core before the proxy does, requests/s measures them, not
# the proxy: the CPU-per-request column still compares the proxies.
#
# Settings (environment): DURATION (s, default 8), CONNS (default 32), REPEAT (default 3),
# WORKLOADS (default: all of the above), PROXY_CPU (1), BACKEND_CPU (0), RAMGATE_BIN
# (default: built here with `cargo build --release`), TLS_LOAD_BIN (default: built here,
# `cargo build --release --example tls_load`).
#
# Traffic goes to 127.0.0.1 only; every run is bounded by DURATION; everything started is
# stopped, and the temporary directory removed, on exit.
set -euo pipefail

DURATION=${DURATION:-8}
CONNS=${CONNS:-32}
REPEAT=${REPEAT:-3}
WORKLOADS=${WORKLOADS:-"single describe empty miss audit signed-v3 signed-v1 tls mtls"}
PROXY_CPU=${PROXY_CPU:-1}
BACKEND_CPU=${BACKEND_CPU:-0}
WRK_CPU=${WRK_CPU:-$BACKEND_CPU}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# shellcheck source=lib.sh
source "$ROOT/benches/lib.sh"
need_commands wrk nginx python3 curl openssl
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
ramgate_bin
if [[ -z ${TLS_LOAD_BIN:-} && " $WORKLOADS " == *" mtls "* ]]; then
  (cd "$ROOT" && cargo build --release --quiet --example tls_load)
  TLS_LOAD_BIN=$(dirname "$RAMGATE_BIN")/examples/tls_load
fi
temporary_workspace ramgate-load

# --- backend, seeded -----------------------------------------------------------------------
taskset -c "$BACKEND_CPU" "$RAMGATE_BIN" backend --listen 127.0.0.1:0 >"$TMP/backend.log" 2>&1 &
backend_PID=$!
PIDS+=("$backend_PID")
backend_ADDR=$(listening backend "$TMP/backend.log")
BACKEND=$backend_ADDR
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
FIRST_ID=$(head -1 "$TMP/ids")

# --- certificates (`tls`, `mtls`; ECDSA P-256 for both servers) ----------------------------
CERTS=$TMP/certs
bench_certificates "$CERTS"

# --- nginx: one worker each, as ramgate gets one core; keep-alive to the backend ----------
#   nginx       no access log (as ramgate with `decisions = "off"`);
#   nginx_log   its access log, default format, to a file: every request;
#   nginx_tls   TLS 1.3, a session cache; nginx_mtls: also requiring a client certificate.
start_nginx() {
  local name=$1 listen_extra=$2 server_extra=$3 access_log=$4 port
  port=$(free_port)
  mkdir -p "$TMP/$name"
  cat >"$TMP/$name/nginx.conf" <<EOF
user $(id -un) $(id -gn);
worker_processes 1;
daemon off;
pid $TMP/$name/nginx.pid;
error_log $TMP/$name/error.log warn;
events { worker_connections 4096; }
http {
  access_log $access_log;
  client_body_temp_path $TMP/$name/body;
  proxy_temp_path $TMP/$name/proxy;
  fastcgi_temp_path $TMP/$name/fastcgi;
  uwsgi_temp_path $TMP/$name/uwsgi;
  scgi_temp_path $TMP/$name/scgi;
  upstream backend { server $BACKEND; keepalive 64; }
  server {
    listen 127.0.0.1:$port $listen_extra;
    keepalive_requests 1000000;
    $server_extra
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
  taskset -c "$PROXY_CPU" "$NGINX" -p "$TMP/$name" -c "$TMP/$name/nginx.conf" \
    >"$TMP/$name/stdout.log" 2>&1 &
  PIDS+=("$!")
  printf -v "${name}_PID" %s "$!"
  printf -v "${name}_ADDR" %s "127.0.0.1:$port"
}
NGINX_TLS="ssl_certificate $CERTS/server.pem; ssl_certificate_key $CERTS/server.key;
    ssl_protocols TLSv1.3; ssl_session_cache shared:SSL:10m; ssl_session_tickets off;"
start_nginx nginx "" "" off
start_nginx nginx_log "" "" "$TMP/nginx_log/access.log combined"
start_nginx nginx_tls ssl "$NGINX_TLS" off
start_nginx nginx_mtls ssl "$NGINX_TLS ssl_client_certificate $CERTS/ca.pem; ssl_verify_client on;" off

# --- ramgate ---------------------------------------------------------------------------------
# The demo policies, with 16 access keys for liumi (the signed workloads use them in turn:
# one key may hold an eighth of the nonce memory), and a 60 s clock-skew window, so a run's
# nonces have expired before the next run of the same workload.
cp -r "$ROOT/config/policies" "$TMP/policies"
KEYS=()
for i in $(seq -w 0 15); do KEYS+=("LTAIbenchLiumiKey$i:bench-secret-$i"); done
python3 - "$TMP/policies/principals.toml" "${KEYS[@]}" <<'EOF'
import sys
path, keys = sys.argv[1], sys.argv[2:]
text = open(path).read()
old = 'access_keys = [{ id = "LTAIliumiExampleKey", secret = "inline-only-for-demos" }]'
assert old in text, "liumi's access key line has changed: update benches/load.sh"
listed = ", ".join('{ id = "%s", secret = "%s" }' % tuple(k.split(":", 1)) for k in keys)
open(path, "w").write(text.replace(old, f"access_keys = [{listed}]"))
EOF
#   ramgate       decision log off;  ramgate_log: every decision to a file (the defaults,
#   but for where lines go);  ramgate_miss: [metadata] ttl_ms = 100;
#   ramgate_tls   [listen.tls];  ramgate_mtls: with client_ca.
start_ramgate() {
  local name=$1 decisions=$2 more=$3
  ramgate_config "$TMP/$name.toml" "$TMP/policies" "[identity]
max_clock_skew_secs = 60
$more"
  sed -i "s|^decisions = \"off\"|decisions = \"$decisions\"|" "$TMP/$name.toml"
  taskset -c "$PROXY_CPU" "$RAMGATE_BIN" serve --config "$TMP/$name.toml" >"$TMP/$name.log" 2>&1 &
  PIDS+=("$!")
  printf -v "${name}_PID" %s "$!"
  printf -v "${name}_ADDR" %s "$(listening proxy "$TMP/$name.log")"
}
RAMGATE_TLS="[listen.tls]
cert = \"$CERTS/server.pem\"
key = \"$CERTS/server.key\""
start_ramgate ramgate off ""
start_ramgate ramgate_log "$TMP/decisions.log" ""
start_ramgate ramgate_miss off "[metadata]
ttl_ms = 100
negative_ttl_ms = 100"
start_ramgate ramgate_tls off "$RAMGATE_TLS"
start_ramgate ramgate_mtls off "$RAMGATE_TLS
client_ca = \"$CERTS/ca.pem\""
for _ in $(seq 1 100); do curl -fsS "http://$nginx_ADDR/_backend/faults" >/dev/null 2>&1 && break; sleep 0.05; done

# --- workloads: "load.lua workload, nginx, ramgate, scheme, load generator, measure the backend"
declare -A WORKLOAD=(
  [single]="single nginx ramgate http wrk yes"
  [describe]="describe nginx ramgate http wrk yes"
  [empty]="empty nginx ramgate http wrk yes"
  [miss]="miss nginx ramgate_miss http wrk yes"
  [audit]="single nginx_log ramgate_log http wrk no"
  [signed-v3]="signed nginx ramgate http wrk no"
  [signed-v1]="signed nginx ramgate http wrk no"
  [tls]="single nginx_tls ramgate_tls https wrk no"
  [mtls]="single nginx_mtls ramgate_mtls https tls_load no"
)
for workload in $WORKLOADS; do
  [[ -n ${WORKLOAD[$workload]:-} ]] || { echo "unknown workload $workload" >&2; exit 1; }
done

# Signed workloads: requests signed just before each run (they must be within the clock-skew
# window), more than the run can send.
sign_requests() {
  local kind=${1#signed-}
  python3 "$ROOT/benches/sign_requests.py" "$kind" $((DURATION * 60000)) "$FIRST_ID" \
    "$TMP/signed.requests" "${KEYS[@]}"
}

# --- sanity: each workload answers as expected through ramgate -------------------------------
check() {
  local what=$1 url=$2 want=$3 body
  shift 3
  body=$(curl -sS "$@" "$url")
  python3 -c "import json,sys; b=json.loads(sys.argv[1]); assert $want, b" "$body" ||
    { echo "sanity check '$what' failed: $body" >&2; exit 1; }
}
COMMON="Version=2018-08-08&Format=JSON&RegionId=cn-hangzhou"
SINGLE="Action=DescribeContainerLog&ContainerGroupId=$FIRST_ID&$COMMON"
AS_LIUMI=(-H "x-ramgate-principal: acs:ram::1234567890123456:user/liumi")
check single "http://$ramgate_ADDR/?$SINGLE" '"Code" not in b' "${AS_LIUMI[@]}"
check describe "http://$ramgate_ADDR/?Action=DescribeContainerGroups&Tag.1.Key=name&Tag.1.Value=liumi&Tag.2.Key=env&Tag.2.Value=test&$COMMON" \
  'len(b["ContainerGroups"]) == 20' "${AS_LIUMI[@]}"
check empty "http://$ramgate_ADDR/?Action=DescribeContainerGroups&$COMMON" \
  'b["TotalCount"] == 0 and b["ContainerGroups"] == []' -H "x-ramgate-principal: acs:ram::1234567890123456:user/test"
check tls "https://localhost:${ramgate_tls_ADDR#*:}/?$SINGLE" '"Code" not in b' --cacert "$CERTS/ca.pem" "${AS_LIUMI[@]}"
check mtls "https://localhost:${ramgate_mtls_ADDR#*:}/?$SINGLE" '"Code" not in b' --cacert "$CERTS/ca.pem" \
  --cert "$CERTS/client.pem" --key "$CERTS/client.key"

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

# One run of workload $1 against target $2 (backend, nginx or ramgate) →
# "rps p50_ms p99_ms cpu_us_per_request non2xx user_us sys_us".
run() {
  local workload=$1 target=$2 lua nginx ramgate scheme client _ out u0 s0 u1 s1 instance input
  read -r lua nginx ramgate scheme client _ <<<"${WORKLOAD[$workload]}"
  case $target in
    backend) instance=backend scheme=http client=wrk ;;
    nginx) instance=$nginx ;;
    ramgate) instance=$ramgate ;;
  esac
  local pid_var=${instance}_PID addr_var=${instance}_ADDR
  local pid=${!pid_var} addr=${!addr_var}
  input=$TMP/ids
  if [[ $lua == signed ]]; then
    sign_requests "$workload"
    input=$TMP/signed.requests
  fi
  read -r u0 s0 < <(ticks "$pid")
  if [[ $client == wrk ]]; then
    out=$(taskset -c "$WRK_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency \
      -s "$ROOT/benches/load.lua" "$scheme://$addr" -- "$lua" "$input")
  else
    out=$(taskset -c "$WRK_CPU" "$TLS_LOAD_BIN" "https://$addr/?$SINGLE" "$CONNS" "$DURATION" \
      "$CERTS/ca.pem" "$CERTS/client.pem" "$CERTS/client.key")
  fi
  read -r u1 s1 < <(ticks "$pid")
  echo "$out" >>"$TMP/wrk.log"
  echo "$out" | awk -v user=$((u1 - u0)) -v sys=$((s1 - s0)) -v hz="$HZ" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    / requests in / { n = $1 }
    /Requests\/sec:/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    /Non-2xx/ { bad = $NF }
    $1 == "requests" && $3 == "rps" { n = $2; rps = $4; p50 = $6; p99 = $8; bad = $10 }
    function per(t) { return n ? t * 1e6 / hz / n : 0 }
    END { printf "%.0f %.3f %.3f %.1f %d %.1f %.1f\n", rps, p50, p99, per(user + sys), bad, per(user), per(sys) }'
}

median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2)}'; }

targets() {
  local _ measure_backend
  read -r _ _ _ _ _ measure_backend <<<"${WORKLOAD[$1]}"
  if [[ $measure_backend == yes ]]; then echo backend nginx ramgate; else echo nginx ramgate; fi
}

declare -A RESULT
echo "load: ${DURATION}s × $REPEAT per cell, $CONNS connections, proxy on CPU $PROXY_CPU," \
  "backend and load generator on CPU $BACKEND_CPU" >&2
for workload in $WORKLOADS; do
  for target in $(targets "$workload"); do : >"$TMP/$workload.$target"; done
done
for rep in $(seq 1 "$REPEAT"); do
  for workload in $WORKLOADS; do
    for target in $(targets "$workload"); do
      line=$(run "$workload" "$target")
      echo "  $workload $target run $rep: $line" >&2
      echo "$line" >>"$TMP/$workload.$target"
    done
  done
done
for workload in $WORKLOADS; do
  for target in $(targets "$workload"); do
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
  for target in $(targets "$workload"); do
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

# --- budgets (docs/PERFORMANCE.md) -------------------------------------------------------------
has() { [[ -n ${RESULT[$1.ramgate]:-} ]]; }
field() { local v; read -r -a v <<<"${RESULT[$1]}"; echo "${v[$2]}"; }
verdict() { awk -v ok="$1" 'BEGIN { printf (ok ? "met" : "NOT met") }'; }
atleast() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b) }'; }
# "<label>: requests/s ≥ nginx: ...; p99 ≤ nginx: ..." for workload $2.
at_nginx_speed() {
  local rps n_rps p99 n_p99
  rps=$(field "$2.ramgate" 0) n_rps=$(field "$2.nginx" 0) p99=$(field "$2.ramgate" 2) n_p99=$(field "$2.nginx" 2)
  printf "%s: requests/s ≥ nginx: %s (%.2f); p99 ≤ nginx: %s (%.2f)\n" "$1" \
    "$(verdict "$(atleast "$rps" "$n_rps")")" "$(awk -v a="$rps" -v b="$n_rps" 'BEGIN{print a/b}')" \
    "$(verdict "$(atleast "$n_p99" "$p99")")" "$(awk -v a="$p99" -v b="$n_p99" 'BEGIN{print a/b}')"
}
if has single; then at_nginx_speed "budget 2 (single, both logs off)" single; fi
if has describe; then
  rps=$(field describe.ramgate 0) n_rps=$(field describe.nginx 0)
  printf "budget describe: requests/s ≥ 80%% of nginx: %s (%.2f)\n" \
    "$(verdict "$(atleast "$rps" "$(awk -v b="$n_rps" 'BEGIN{print 0.8*b}')")")" "$(awk -v a="$rps" -v b="$n_rps" 'BEGIN{print a/b}')"
fi
if has audit; then
  at_nginx_speed "budget 1 (audit, logs to files)" audit
  if has single; then
    rps=$(field audit.ramgate 0) off=$(field single.ramgate 0)
    printf "budget 1 (the decision log's cost): ≤ 10%% of requests/s against decisions = \"off\": %s (%.1f%%)\n" \
      "$(verdict "$(atleast "$rps" "$(awk -v b="$off" 'BEGIN{print 0.9*b}')")")" "$(awk -v a="$rps" -v b="$off" 'BEGIN{print 100*(1-a/b)}')"
  fi
fi
for signed in signed-v3 signed-v1; do
  if has "$signed" && has single; then
    extra=$(awk -v a="$(field "$signed.ramgate" 3)" -v b="$(field single.ramgate 3)" 'BEGIN{print a-b}')
    printf "budget 3 (%s): ≤ 3 µs of proxy CPU over the trusted header: %s (%+.1f µs)\n" \
      "$signed" "$(verdict "$(atleast 3 "$extra")")" "$extra"
  fi
done
for tls in tls mtls; do
  if has "$tls"; then
    rps=$(field "$tls.ramgate" 0) n_rps=$(field "$tls.nginx" 0)
    printf "budget 4 (%s): requests/s ≥ nginx: %s (%.2f)\n" "$tls" \
      "$(verdict "$(atleast "$rps" "$n_rps")")" "$(awk -v a="$rps" -v b="$n_rps" 'BEGIN{print a/b}')"
  fi
done

# --- the decision log under budget 1's load: a line for every request ramgate answered -------
if has audit; then
  admin=$(listening admin "$TMP/ramgate_log.log")
  sleep 0.2 # lines reach the file within 20 ms of their answer
  metrics=$(curl -fsS "http://$admin/metrics")
  answered=$(awk '/^ramgate_requests_total\{/ { n += $NF } END { printf "%d", n }' <<<"$metrics")
  dropped=$(awk '/^ramgate_decision_log_dropped_total\{/ { n += $NF } END { printf "%d", n }' <<<"$metrics")
  lines=$(wc -l <"$TMP/decisions.log")
  printf "decision log (audit): %d lines for %d requests answered, %d dropped: %s\n" \
    "$lines" "$answered" "$dropped" "$( ((lines == answered && dropped == 0)) && echo complete || echo "LINES LOST")"
fi
