#!/usr/bin/env bash
# Memory and reload of the real proxy (docs/PERFORMANCE.md):
#
# 1. resident memory (VmRSS) of `ramgate serve` at idle, with the demo policies and with the
#    generated directory of benches/common (10,000 users, 10,000 policies);
# 2. the same process after 100,000 container groups' metadata were cached (the backend is
#    seeded with 100,000 groups; DescribeContainerGroups with 20 ids at a time, as root,
#    makes ramgate look each one up once);
# 3. reloads under load: wrk runs a cached single-resource call while ramgate is sent
#    SIGHUP every RELOAD_EVERY seconds (each re-reads, parses and validates all 10,000
#    policies); the latency of the run with reloads is compared with a run without, and
#    each reload's duration is read from ramgate's log (SIGHUP received → reload done).
#
# Resident memory counts what the allocator keeps after freeing, too: loading a policy
# directory allocates several times what the snapshot finally holds. To tell the two apart,
# the script also asks the process's allocator to give free pages back (glibc's
# `malloc_trim(0)`, called through gdb) and reports resident memory again ("after trim").
#
# Settings (environment): CONTAINER_GROUPS (default 100000), RELOADS (default 8), RELOAD_EVERY (s,
# default 1), DURATION (s, default 10), PROXY_CPU (1), BACKEND_CPU (0), RAMGATE_BIN.
# Traffic goes to 127.0.0.1 only; everything started is stopped on exit.
set -euo pipefail

CONTAINER_GROUPS=${CONTAINER_GROUPS:-100000}
RELOADS=${RELOADS:-8}
RELOAD_EVERY=${RELOAD_EVERY:-1}
DURATION=${DURATION:-10}
PROXY_CPU=${PROXY_CPU:-1}
BACKEND_CPU=${BACKEND_CPU:-0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# shellcheck source=lib.sh
source "$ROOT/benches/lib.sh"
need_commands wrk python3 curl gdb
ramgate_bin
temporary_workspace ramgate-memory

# Resident memory after glibc's malloc_trim(0) in the process (free pages returned).
trimmed_mib() {
  timeout 120 gdb -p "$1" -batch -ex 'call (int)malloc_trim(0)' >/dev/null 2>&1 || true
  rss_mib "$1"
}
rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
hwm_mib() { awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# The generated directory, written by the reload bench's generator (benches/common).
(cd "$ROOT" && cargo bench --quiet --bench reload -- --write-dir "$TMP/policies" >&2)

taskset -c "$BACKEND_CPU" "$RAMGATE_BIN" backend --listen 127.0.0.1:0 >"$TMP/backend.log" 2>&1 &
PIDS+=("$!")
BACKEND=$(listening backend "$TMP/backend.log")
curl -fsS -X POST "http://$BACKEND/_backend/faults?record_requests=false" >/dev/null

start_ramgate() {
  local name=$1 dir=$2
  ramgate_config "$TMP/$name.toml" "$dir" "[metadata]
ttl_ms = 3600000
max_entries = 100000"
  taskset -c "$PROXY_CPU" "$RAMGATE_BIN" serve --config "$TMP/$name.toml" >"$TMP/$name.log" 2>&1 &
  PIDS+=("$!")
  eval "${name}_PID=$!"
  eval "${name}_ADDR=$(listening proxy "$TMP/$name.log" 30)"
  eval "${name}_ADMIN=$(listening admin "$TMP/$name.log" 30)"
}

start_ramgate demo "$ROOT/config/policies"
start_ramgate big "$TMP/policies"
sleep 2
IDLE_DEMO=$(rss_mib "$demo_PID")
IDLE_BIG=$(rss_mib "$big_PID")
IDLE_BIG_TRIMMED=$(trimmed_mib "$big_PID")
kill "$demo_PID"

echo "seeding $CONTAINER_GROUPS container groups..." >&2
SEED_START=$(date +%s)
python3 - "$BACKEND" "$CONTAINER_GROUPS" "$TMP/ids" <<'EOF'
import http.client, json, sys
host, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conn = http.client.HTTPConnection(host)
with open(out, "w") as f:
    for i in range(n):
        q = ("/?Action=CreateContainerGroup&Version=2018-08-08&RegionId=cn-hangzhou"
             f"&ContainerGroupName=g{i}&ResourceGroupId=rg-{i % 50}"
             f"&Tag.1.Key=team&Tag.1.Value=team-{i % 200}&Tag.2.Key=env&Tag.2.Value=test")
        conn.request("POST", q)
        r = conn.getresponse()
        body = json.loads(r.read())
        assert r.status == 200, body
        f.write(body["ContainerGroupId"] + "\n")
EOF
echo "seeded in $(($(date +%s) - SEED_START)) s; caching through ramgate..." >&2

python3 - "$big_ADDR" "$TMP/ids" <<'EOF'
import http.client, json, sys
host, path = sys.argv[1], sys.argv[2]
ids = open(path).read().split()
conn = http.client.HTTPConnection(host)
root = "acs:ram::1234567890123456:root"
for i in range(0, len(ids), 20):
    batch = json.dumps(ids[i:i + 20], separators=(",", ":"))
    q = ("/?Action=DescribeContainerGroups&Version=2018-08-08&RegionId=cn-hangzhou"
         "&ContainerGroupIds=" + __import__("urllib.parse").parse.quote(batch, safe=""))
    conn.request("GET", q, headers={"x-ramgate-principal": root})
    r = conn.getresponse()
    body = json.loads(r.read())
    assert r.status == 200 and len(body["ContainerGroups"]) == len(ids[i:i + 20]), body
EOF
sleep 1
CACHED=$(curl -fsS "http://$big_ADMIN/metrics" | awk '/^ramgate_metadata_cache_requests_total\{result="miss"\}/ {print $2}')
FULL_BIG=$(rss_mib "$big_PID")
PEAK_BIG=$(hwm_mib "$big_PID")
FULL_BIG_TRIMMED=$(trimmed_mib "$big_PID")

# Reloads under load: the cached call of benches/load.lua, as root, on the first group.
head -1 "$TMP/ids" >"$TMP/one-id"
load() {
  taskset -c "$BACKEND_CPU" wrk -t1 -c16 -d"${DURATION}s" --latency \
    -s "$ROOT/benches/load.lua" "http://$big_ADDR" -- single "$TMP/one-id" root
}
BASE=$(load)
LINES_BEFORE=$(wc -l <"$TMP/big.log")
(
  sleep 1
  for _ in $(seq 1 "$RELOADS"); do kill -HUP "$big_PID"; sleep "$RELOAD_EVERY"; done
) &
HUPPER=$!
WITH=$(load)
wait "$HUPPER"
sleep 2
tail -n +"$((LINES_BEFORE + 1))" "$TMP/big.log" >"$TMP/reloads.log"
# Each reload: from "SIGHUP: reloading" to the next "valid and unchanged"/"reloaded" line.
DURATIONS=$(python3 - "$TMP/reloads.log" <<'EOF'
import re, sys, datetime
start, out = None, []
for line in open(sys.argv[1]):
    m = re.search(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z", line)
    if not m:
        continue
    t = datetime.datetime.fromisoformat(m.group(1)[:26])
    if "SIGHUP: reloading" in line:
        start = t
    elif start and ("unchanged" in line or "reloaded" in line):
        out.append((t - start).total_seconds() * 1e3)
        start = None
print(" ".join(f"{d:.1f}" for d in out))
EOF
)
lat() { echo "$1" | awk -v k="$2" '$1 == k {print $2}'; }
maxlat() { echo "$1" | awk '/Latency/ && !/Distribution/ {print $4}'; }
rps() { echo "$1" | awk '/Requests\/sec/ {print $2}'; }

echo
echo "| measurement | value |"
echo "|---|---|"
echo "| RSS idle, demo policies | $IDLE_DEMO MiB |"
echo "| RSS idle, 10,000 users and 10,000 policies | $IDLE_BIG MiB (after trim: $IDLE_BIG_TRIMMED MiB) |"
echo "| RSS with ${CACHED:-?} container groups cached (10,000 users) | $FULL_BIG MiB (peak $PEAK_BIG MiB; after trim: $FULL_BIG_TRIMMED MiB) |"
echo "| reload (SIGHUP → done), 10,000 policies, ms each | ${DURATIONS:-none seen} |"
echo "| cached call without reloads: requests/s, p50, p99, max | $(rps "$BASE"), $(lat "$BASE" 50%), $(lat "$BASE" 99%), $(maxlat "$BASE") |"
echo "| the same with $RELOADS reloads: requests/s, p50, p99, max | $(rps "$WITH"), $(lat "$WITH" 50%), $(lat "$WITH" 99%), $(maxlat "$WITH") |"
echo
awk -v m="$FULL_BIG" -v n="${CACHED:-?}" 'BEGIN { printf "budget memory: under 64 MiB with %s cached (budget: 100,000) and 10,000 principals: %s (%.1f MiB)\n", n, (m < 64 && n >= 100000 ? "met" : "NOT met (or not measured)"), m }'
