#!/usr/bin/env bash
# User-space instructions per cached single-resource call (the `single` workload of
# benches/load.sh), counted exactly with callgrind, so that a change to the forwarding path
# can be measured on a busy machine where wall-clock figures are noise.
#
# Method: `ramgate serve` (decision log off unless DECISIONS=file, identity from
# `x-ramgate-principal` unless SIGNED is set, pinned to one CPU so that its runtime runs one
# worker) is run under callgrind twice: once serving
# N1 and once N2 DescribeContainerLog calls on one cached container group, over one
# keep-alive connection. Counting starts after the first call (start-up, policy load, the
# metadata miss and one-off calibrations such as the cache's clock vary from run to run);
# what is left besides the calls (shutdown) is the same in both runs, so
# (total(N2) - total(N1)) / (N2 - N1) is the cost of one call. The same difference is
# printed per function (self cost, and with INCLUSIVE=1 inclusive cost), the TOP largest.
#
# Settings (environment): N1 (default 500), N2 (3000), TOP (40), INCLUSIVE (0),
# DECISIONS (`off`, the default, or `file`: every decision logged to a file, as by default),
# TLS (1: the calls over TLS 1.3, `[listen.tls]` with an ECDSA P-256 certificate),
# PROXY_CPU (1), KEEP (a directory to keep the callgrind.out files in),
# RAMGATE_BIN (default: built here with `cargo build --release`), SIGNED (empty: identity
# from `x-ramgate-principal`; `v3` or `v1`: each call signed ACS3-HMAC-SHA256 or RPC v1
# HMAC-SHA1 with liumi's demo key, a fresh nonce and the current time, as
# benches/sign_requests.py signs them). `SIGNED=v3` minus the default run is what verifying
# a signature costs per call.
#
# Traffic goes to 127.0.0.1 only; everything started is stopped and the temporary
# directory removed on exit.
set -euo pipefail

N1=${N1:-500}
N2=${N2:-3000}
SIGNED=${SIGNED:-}
case $SIGNED in "" | v3 | v1) ;; *) echo "SIGNED is v3, v1 or empty" >&2; exit 1 ;; esac
TOP=${TOP:-40}
INCLUSIVE=${INCLUSIVE:-0}
DECISIONS=${DECISIONS:-off}
TLS=${TLS:-0}
PROXY_CPU=${PROXY_CPU:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

for tool in valgrind callgrind_annotate callgrind_control python3 curl; do
  command -v "$tool" >/dev/null || { echo "callgrind.sh needs $tool" >&2; exit 1; }
done
# shellcheck source=lib.sh
source "$ROOT/benches/lib.sh"
ramgate_bin
temporary_workspace ramgate-callgrind


# --- backend with one container group --------------------------------------------------
"$RAMGATE_BIN" backend --listen 127.0.0.1:0 >"$TMP/backend.log" 2>&1 &
PIDS+=("$!")
BACKEND=$(listening backend "$TMP/backend.log")
curl -fsS -X POST "http://$BACKEND/_backend/faults?record_requests=false" >/dev/null
ID=$(curl -fsS -X POST "http://$BACKEND/?Action=CreateContainerGroup&Version=2018-08-08&RegionId=cn-hangzhou&ContainerGroupName=bench-0&ResourceGroupId=rg-default&Tag.1.Key=name&Tag.1.Value=liumi&Tag.2.Key=env&Tag.2.Value=test&Container.1.Name=c1&Container.1.Image=nginx" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["ContainerGroupId"])')

ramgate_config "$TMP/ramgate.toml" "$ROOT/config/policies"
if [[ $TLS == 1 ]]; then
  bench_certificates "$TMP/certs"
  cat >>"$TMP/ramgate.toml" <<EOF
[listen.tls]
cert = "$TMP/certs/server.pem"
key = "$TMP/certs/server.key"
EOF
fi
if [[ $DECISIONS == file ]]; then
  sed -i "s|^decisions = \"off\"|decisions = \"$TMP/decisions.log\"|" "$TMP/ramgate.toml"
fi

# One callgrind run of the proxy serving $1 calls; prints the callgrind.out path.
run() {
  local n=$1 out=$TMP/callgrind.out.$1
  # glibc copies large blocks (say, a future that hyper moves) with `rep movsb`, which
  # callgrind counts as one instruction per byte: a future growing past glibc's threshold
  # would look like thousands of instructions more. Vector copies are counted as the CPU
  # runs them.
  GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=1000000000 \
    taskset -c "$PROXY_CPU" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
    "$RAMGATE_BIN" serve --config "$TMP/ramgate.toml" >"$TMP/serve.$n.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  local addr
  addr=$(listening proxy "$TMP/serve.$n.log" 60)  # valgrind is slow to start
  # The request bytes of benches/load.lua's `single`, sent back to back on one connection.
  # Signed calls are signed here, each just before it is sent (a fresh nonce, the time
  # now); signing costs the client, not the proxy.
  python3 - "$addr" "$ID" "$n" "$pid" "$SIGNED" "$ROOT/benches" "$TLS" "$TMP/certs/ca.pem" <<'EOF'
import socket, ssl, subprocess, sys, time, uuid
addr, gid, n, pid, signed = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
tls, ca = sys.argv[7], sys.argv[8]
sys.path.insert(0, sys.argv[6])
from sign_requests import v1, v3
host, port = addr.rsplit(":", 1)
trusted = (f"GET /?Action=DescribeContainerLog&ContainerGroupId={gid}"
           "&Version=2018-08-08&Format=JSON&RegionId=cn-hangzhou HTTP/1.1\r\n"
           f"Host: {addr}\r\n"
           "x-ramgate-principal: acs:ram::1234567890123456:user/liumi\r\n\r\n").encode()
sign = {"v3": v3, "v1": v1}.get(signed)
def request():
    if sign is None:
        return trusted
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return sign(gid, "LTAIliumiExampleKey", "inline-only-for-demos", now, uuid.uuid4().hex).encode()
s = socket.create_connection((host, int(port)))
if tls == "1":
    s = ssl.create_default_context(cafile=ca).wrap_socket(s, server_hostname="localhost")
f = s.makefile("rb")
for i in range(n + 1):
    if i == 1:
        subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
    s.sendall(request())
    status = f.readline()
    assert b" 200 " in status, status
    length = 0
    while (line := f.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    f.read(length)
s.close()
EOF
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  [[ -s $out ]] || { echo "no callgrind output; log:" >&2; cat "$TMP/serve.$n.log" >&2; exit 1; }
  echo "$out"
}

OUT1=$(run "$N1")
OUT2=$(run "$N2")
if [[ -n ${KEEP:-} ]]; then mkdir -p "$KEEP" && cp "$OUT1" "$OUT2" "$KEEP/"; fi

# Per-function difference of the two runs, per call.
annotate() {
  local flag=no
  [[ $INCLUSIVE == 1 ]] && flag=yes
  callgrind_annotate --auto=no --inclusive="$flag" --threshold=100 "$1" 2>/dev/null
}
annotate "$OUT1" >"$TMP/a1"
annotate "$OUT2" >"$TMP/a2"
python3 - "$TMP/a1" "$TMP/a2" "$((N2 - N1))" "$TOP" <<'EOF'
import re, sys
def read(path):
    total, funcs, listing = 0, {}, False
    for line in open(path):
        listing = listing or line.rstrip().endswith("file:function")
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*?)\s*$", line)
        if m:
            n = int(m.group(1).replace(",", ""))
            if "PROGRAM TOTALS" in m.group(2):
                total = n
            elif listing:
                # Short names: no registry or toolchain prefix, no object file.
                name = re.sub(r" \[[^\]]*\]$", "", m.group(2))
                name = re.sub(r"^.*/(registry/src/[^/]+|rustc/[0-9a-f]+|wt-[^/]+|work/[^/]+)/", "", name)
                funcs[name] = funcs.get(name, 0) + n
    return total, funcs
(t1, f1), (t2, f2) = read(sys.argv[1]), read(sys.argv[2])
calls, top = int(sys.argv[3]), int(sys.argv[4])
print(f"instructions per call: {(t2 - t1) / calls:,.0f}")
diff = sorted(((f2.get(k, 0) - f1.get(k, 0)) / calls, k) for k in set(f1) | set(f2))
for per_call, name in reversed(diff[-top:]):
    print(f"{per_call:10,.0f}  {name[:150]}")
EOF
