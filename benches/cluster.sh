#!/usr/bin/env bash
# What `[cluster]` (SPEC §9) and a `[[quotas]]` check add to a request (docs/PERFORMANCE.md),
# in one run: two release `ramgate serve` in front of one backend, the same policies, one
# without `[cluster]` and one with it (redis-server on loopback), each called with
#
#   signed   DescribeContainerLog signed with liumi's AccessKey (RPC v1): the nonce is
#            claimed in process, or in Redis (one SET NX PX);
#   header   the same call named by the trusted header, as liumi (no quota applies);
#   quota    the same, as a user with the same policy and a [[quotas]] limit too high to
#            refuse: counted in process, or by the Redis script.
#
# The client is one Python process making N sequential keep-alive requests per cell (so
# latency is a request's own, not queueing); each cell is the median of REPEAT runs, the
# cells of a repeat interleaved. Columns: client-side p50 and p99, ramgate's CPU time per
# request (utime + stime from /proc), and redis-server's.
#
# Settings (environment): N (requests per cell, default 3000), REPEAT (default 3),
# PROXY_CPU (1), OTHER_CPU (0: backend, Redis and the client), RAMGATE_BIN (default: built
# here with `cargo build --release`). Loopback only; everything started is stopped on exit.
set -euo pipefail

N=${N:-3000}
REPEAT=${REPEAT:-3}
PROXY_CPU=${PROXY_CPU:-1}
OTHER_CPU=${OTHER_CPU:-0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# shellcheck source=lib.sh
source "$ROOT/benches/lib.sh"
need_commands redis-server redis-cli:redis-tools python3 curl
ramgate_bin
temporary_workspace ramgate-cluster

# --- backend, Redis -------------------------------------------------------------------------
taskset -c "$OTHER_CPU" "$RAMGATE_BIN" backend --listen 127.0.0.1:0 >"$TMP/backend.log" 2>&1 &
PIDS+=("$!")
BACKEND=$(listening backend "$TMP/backend.log")
curl -fsS -X POST "http://$BACKEND/_backend/faults?record_requests=false" >/dev/null
ID=$(curl -fsS -X POST "http://$BACKEND/?Action=CreateContainerGroup&Version=2018-08-08&RegionId=cn-hangzhou&ContainerGroupName=bench&ResourceGroupId=rg-default&Tag.1.Key=name&Tag.1.Value=liumi&Tag.2.Key=env&Tag.2.Value=test&Container.1.Name=app&Container.1.Image=nginx" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["ContainerGroupId"])')

REDIS_PORT=$(free_port)
taskset -c "$OTHER_CPU" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" \
  --appendonly no --dir "$TMP" >"$TMP/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

# --- policies: the demo's, plus a user like liumi with a quota --------------------------------
mkdir "$TMP/policies"
cp "$ROOT"/config/policies/* "$TMP/policies/"
cat >>"$TMP/policies/principals.toml" <<'EOF'

[[users]]
name = "quoted"
attach = [{ policy = "eci-tag-liumi-test" }]

[[quotas]]
principals = ["user/quoted"]
actions = ["DescribeContainerLog"]
per_minute = 100000000
EOF

start_ramgate() {
  local name=$1 cluster=$2
  ramgate_config "$TMP/$name.toml" "$TMP/policies" "$cluster"
  taskset -c "$PROXY_CPU" "$RAMGATE_BIN" serve --config "$TMP/$name.toml" >"$TMP/$name.log" 2>&1 &
  PIDS+=("$!")
  eval "${name}_PID=$!"
  eval "${name}_ADDR=$(listening proxy "$TMP/$name.log")"
}
start_ramgate local ""
start_ramgate cluster "[cluster]
redis_url = \"redis://127.0.0.1:$REDIS_PORT/0\""
grep -q "subscribed" "$TMP/cluster.log" || sleep 1

# "utime stime" (clock ticks) of a process.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# One cell → "p50_ms p99_ms ramgate_us_per_request redis_us_per_request".
run() {
  local addr=$1 mode=$2 pid=$3 r0 r1 d0 d1 out
  r0=$(ticks "$pid") d0=$(ticks "$REDIS_PID")
  out=$(taskset -c "$OTHER_CPU" python3 - "$addr" "$mode" "$N" "$ID" <<'EOF'
import base64, hashlib, hmac, http.client, sys, time, uuid, urllib.parse
addr, mode, n, gid = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
quote = lambda s: urllib.parse.quote(s, safe="-_.~")
base = {"Action": "DescribeContainerLog", "RegionId": "cn-hangzhou", "Version": "2018-08-08",
        "ContainerGroupId": gid, "ContainerName": "app", "Format": "JSON"}
def signed():
    p = dict(base, AccessKeyId="LTAIliumiExampleKey", SignatureMethod="HMAC-SHA1",
             SignatureVersion="1.0", SignatureNonce=str(uuid.uuid4()),
             Timestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    q = "&".join(f"{quote(k)}={quote(v)}" for k, v in sorted(p.items()))
    mac = hmac.new(b"inline-only-for-demos&", f"GET&%2F&{quote(q)}".encode(), hashlib.sha1)
    return f"/?{q}&Signature={quote(base64.b64encode(mac.digest()).decode())}", {}
plain = "/?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in sorted(base.items()))
who = {"header": "user/liumi", "quota": "user/quoted"}.get(mode)
conn = http.client.HTTPConnection(addr)
lat = []
for i in range(n):
    path, headers = signed() if mode == "signed" else (plain, {"x-ramgate-principal": f"acs:ram::1234567890123456:{who}"})
    t = time.perf_counter()
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    body = r.read()
    lat.append(time.perf_counter() - t)
    if r.status != 200:
        sys.exit(f"{mode}: {r.status} {body[:300]!r}")
lat.sort()
print(f"{lat[len(lat) // 2] * 1000:.3f} {lat[int(len(lat) * 0.99)] * 1000:.3f}")
EOF
)
  r1=$(ticks "$pid") d1=$(ticks "$REDIS_PID")
  echo "$out" | awk -v r=$((r1 - r0)) -v d=$((d1 - d0)) -v hz="$HZ" -v n="$N" \
    '{ printf "%s %s %.1f %.1f\n", $1, $2, r * 1e6 / hz / n, d * 1e6 / hz / n }'
}

median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2)}'; }

CELLS="signed.local signed.cluster header.local header.cluster quota.local quota.cluster"
for cell in $CELLS; do : >"$TMP/$cell"; done
echo "cluster: $N sequential requests × $REPEAT per cell; ramgate on CPU $PROXY_CPU, client, backend and Redis on CPU $OTHER_CPU" >&2
for rep in $(seq 1 "$REPEAT"); do
  for cell in $CELLS; do
    mode=${cell%.*} target=${cell#*.}
    pid_var=${target}_PID addr_var=${target}_ADDR
    line=$(run "${!addr_var}" "$mode" "${!pid_var}")
    echo "  $cell run $rep: $line" >&2
    echo "$line" >>"$TMP/$cell"
  done
done

declare -A R
for cell in $CELLS; do
  f=$TMP/$cell
  R[$cell]="$(cut -d' ' -f1 "$f" | median) $(cut -d' ' -f2 "$f" | median) $(cut -d' ' -f3 "$f" | median) $(cut -d' ' -f4 "$f" | median)"
done
echo
echo "| request | [cluster] | p50 (ms) | p99 (ms) | ramgate CPU per request (µs) | redis-server CPU per request (µs) |"
echo "|---|---|---|---|---|---|"
for cell in $CELLS; do
  read -r p50 p99 cpu redis <<<"${R[$cell]}"
  printf "| %s | %s | %.3f | %.3f | %.1f | %.1f |\n" "${cell%.*}" "$([[ ${cell#*.} == cluster ]] && echo yes || echo no)" "$p50" "$p99" "$cpu" "$redis"
done
echo
echo "| what | added p50 (ms) | p50 ratio | added ramgate CPU (µs) | CPU ratio |"
echo "|---|---|---|---|---|"
added() {
  local what=$1 with=$2 without=$3
  read -r a50 _ acpu _ <<<"${R[$with]}"
  read -r b50 _ bcpu _ <<<"${R[$without]}"
  awk -v w="$what" -v a="$a50" -v b="$b50" -v c="$acpu" -v d="$bcpu" \
    'BEGIN { printf "| %s | %+.3f | %.2f | %+.1f | %.2f |\n", w, a - b, a / b, c - d, (d > 0 ? c / d : 0) }'
}
added "signed request, [cluster] against none" signed.cluster signed.local
added "header request, [cluster] against none" header.cluster header.local
added "quota check, in process" quota.local header.local
added "quota check, Redis script" quota.cluster header.cluster
