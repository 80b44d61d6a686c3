#!/usr/bin/env bash
# The cost of signing and of upstream TLS per call (docs/PERFORMANCE.md §6): two ramgate
# proxies in front of one `ramgate backend`, measured in one run, interleaved round by round:
#
#   none   signing = "none", plain HTTP to the backend (as in load.sh);
#   acs3   signing = "acs3" over HTTPS to the same backend's cloud listener (the demo
#          certificate of config/demo-cloud/, ca_file = its CA), every call and every
#          metadata lookup signed with an AccessKey from the environment, and each call
#          verified by the backend.
#
# The workload is `single` of load.sh: DescribeContainerLog of one container group whose
# metadata is cached, by a trusted-header caller. Connections to the upstream are kept
# alive, so TLS costs a handshake per pooled connection and then record encryption.
#
# Printed per target: requests/s, and the CPU time the proxy process spent per request
# (user + system, from /proc/<pid>/stat), the median of REPEAT rounds; then the ratio
# acs3/none. CPU per request is the figure to compare: requests/s on two shared cores also
# measures wrk and the backend (which verifies every signature in the acs3 case).
#
# The fake cloud remembers each signed call's nonce for 15 minutes, at most 131,072 per
# AccessKey (as ramgate's own nonce memory does): all `acs3` rounds together must stay
# under that, which at ~18,000 calls/s is REPEAT × DURATION ≤ 7 s.
#
# Settings (environment): DURATION (s, default 2), CONNS (default 16), REPEAT (default 3),
# PROXY_CPU (1), BACKEND_CPU (0), RAMGATE_BIN (default: built here, release).
# Traffic goes to 127.0.0.1 only; everything started is stopped on exit.
set -euo pipefail

DURATION=${DURATION:-2}
CONNS=${CONNS:-16}
REPEAT=${REPEAT:-3}
PROXY_CPU=${PROXY_CPU:-1}
BACKEND_CPU=${BACKEND_CPU:-0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# shellcheck source=lib.sh
source "$ROOT/benches/lib.sh"
need_commands wrk curl python3
ramgate_bin
temporary_workspace ramgate-upstream

KEY_ID=LTAIbenchUpstreamKey
export BENCH_UPSTREAM_SECRET=bench-upstream-secret
CERTS=$ROOT/config/demo-cloud

# --- the backend, with its cloud listener ------------------------------------------------
taskset -c "$BACKEND_CPU" "$RAMGATE_BIN" backend --listen 127.0.0.1:0 \
  --cloud-listen 127.0.0.1:0 --tls-cert "$CERTS/server.pem" --tls-key "$CERTS/server-key.pem" \
  --access-key-id "$KEY_ID" --access-key-secret-env BENCH_UPSTREAM_SECRET \
  >"$TMP/backend.log" 2>&1 &
PIDS+=("$!")
BACKEND=$(listening backend "$TMP/backend.log")
CLOUD=$(listening cloud "$TMP/backend.log")
curl -fsS -X POST "http://$BACKEND/_backend/faults?record_requests=false" >/dev/null
ID=$(curl -fsS -X POST "http://$BACKEND/?Action=CreateContainerGroup&Version=2018-08-08&RegionId=cn-hangzhou&ContainerGroupName=bench&ResourceGroupId=rg-default&Tag.1.Key=name&Tag.1.Value=liumi&Tag.2.Key=env&Tag.2.Value=test&Container.1.Name=c1&Container.1.Image=nginx" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["ContainerGroupId"])')

# --- the two proxies ------------------------------------------------------------------------
start_ramgate() {
  local name=$1 upstream=$2
  cat >"$TMP/$name.toml" <<TOML
account_id = "1234567890123456"
region = "cn-hangzhou"
[listen]
addr = "127.0.0.1:0"
[admin]
addr = "127.0.0.1:0"
[upstream]
$upstream
[policy]
dir = "$ROOT/config/policies"
[log]
decisions = "off"
TOML
  ALIBABA_CLOUD_ACCESS_KEY_ID=$KEY_ID ALIBABA_CLOUD_ACCESS_KEY_SECRET=$BENCH_UPSTREAM_SECRET \
    taskset -c "$PROXY_CPU" "$RAMGATE_BIN" serve --config "$TMP/$name.toml" \
    >"$TMP/$name.log" 2>&1 &
  PIDS+=("$!")
  eval "${name}_PID=$!"
  eval "${name}_ADDR=$(listening proxy "$TMP/$name.log")"
}
start_ramgate none "url = \"http://$BACKEND\""
start_ramgate acs3 "url = \"https://localhost:${CLOUD##*:}\"
signing = \"acs3\"
ca_file = \"$CERTS/ca.pem\"
[upstream.credentials]
source = \"env\""

cat >"$TMP/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["x-ramgate-principal"] = "acs:ram::1234567890123456:user/liumi"
wrk.headers["x-acs-action"] = "DescribeContainerLog"
wrk.headers["x-acs-version"] = "2018-08-08"
LUA

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)

# One round against proxy $1: prints "requests_per_second cpu_us_per_request".
round() {
  local name=$1 pid addr before after out requests
  pid=$(eval echo "\$${name}_PID")
  addr=$(eval echo "\$${name}_ADDR")
  local url="http://$addr/?RegionId=cn-hangzhou&ContainerGroupId=$ID"
  # Warm: the metadata cache and the upstream connections.
  curl -fsS -X POST -H 'x-ramgate-principal: acs:ram::1234567890123456:user/liumi' \
    -H 'x-acs-action: DescribeContainerLog' -H 'x-acs-version: 2018-08-08' "$url" >/dev/null
  before=$(cpu_ticks "$pid")
  out=$(taskset -c "$BACKEND_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$TMP/post.lua" "$url")
  after=$(cpu_ticks "$pid")
  if grep -q "Non-2xx" <<<"$out"; then echo "$name: errors:" >&2; echo "$out" >&2; exit 1; fi
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  python3 -c "import sys; r=$requests; print(f'{r/$DURATION:.0f} {($after-$before)*1e6/$TICK/r:.1f}')"
}

declare -A RPS CPU
for i in $(seq 1 "$REPEAT"); do
  for name in none acs3; do
    read -r rps cpu < <(round "$name")
    RPS[$name]+="$rps "
    CPU[$name]+="$cpu "
    echo "round $i $name: $rps requests/s, $cpu µs CPU per request" >&2
  done
done
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-6s %12s %22s\n' target requests/s "CPU µs per request"
for name in none acs3; do
  printf '%-6s %12s %22s\n' "$name" "$(median "${RPS[$name]}")" "$(median "${CPU[$name]}")"
done
python3 -c "print(f'acs3/none: CPU per request {$(median "${CPU[acs3]}")/$(median "${CPU[none]}"):.2f}x, +{$(median "${CPU[acs3]}")-$(median "${CPU[none]}"):.1f} µs; requests/s {$(median "${RPS[acs3]}")/$(median "${RPS[none]}"):.2f}x')"
