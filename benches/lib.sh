# Shared by the benchmark scripts (load.sh, memory.sh, callgrind.sh, cluster.sh, upstream.sh);
# sourced, not run. Expects ROOT (the checkout) to be set.

# Installs, from Debian's packages, whatever of the commands named is missing; each
# argument is `command` or `command:package`.
need_commands() {
  local wanted=() spec command package
  for spec in "$@"; do
    command=${spec%%:*} package=${spec#*:}
    command -v "$command" >/dev/null || [[ -x /usr/sbin/$command ]] || wanted+=("$package")
  done
  if ((${#wanted[@]})); then
    echo "installing ${wanted[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${wanted[@]}" >&2
  fi
}

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# RAMGATE_BIN, unless given: the release binary, built here.
ramgate_bin() {
  if [[ -z ${RAMGATE_BIN:-} ]]; then
    (cd "$ROOT" && cargo build --release --quiet)
    local target_dir
    target_dir=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    RAMGATE_BIN=$target_dir/release/ramgate
  fi
}

# A temporary directory TMP (named after $1) and a list PIDS of processes started: on exit
# every process is stopped and the directory removed.
temporary_workspace() {
  TMP=$(mktemp -d -t "$1.XXXXXX")
  PIDS=()
  trap cleanup EXIT
}
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}

# Waits (at most $3 seconds, default 10) for `listening <name> <addr>` in log $2 and prints
# the address.
listening() {
  local name=$1 log=$2 seconds=${3:-10} addr
  for _ in $(seq 1 $((seconds * 20))); do
    addr=$(grep -o "listening $name [0-9.:]*" "$log" 2>/dev/null | head -1 | awk '{print $3}')
    if [[ -n $addr ]]; then echo "$addr"; return; fi
    sleep 0.05
  done
  echo "no 'listening $name' in $log:" >&2; cat "$log" >&2; exit 1
}

# Writes a ramgate.toml to $1 for the backend at $BACKEND and the policy directory $2, with
# ephemeral loopback listeners and the decision log off; $3, if given, is more TOML (tables).
ramgate_config() {
  cat >"$1" <<EOF
account_id = "1234567890123456"
region = "cn-hangzhou"
[listen]
addr = "127.0.0.1:0"
[admin]
addr = "127.0.0.1:0"
[upstream]
url = "http://$BACKEND"
[policy]
dir = "$2"
[log]
decisions = "off"
${3:-}
EOF
}

# Test certificates in directory $1: a CA (ca.pem), a server certificate for localhost and
# 127.0.0.1 (server.pem, server.key) and liumi's client certificate, its SPIFFE id in the URI
# SAN (client.pem, client.key); ECDSA P-256 throughout.
bench_certificates() {
  mkdir -p "$1"
  (
    cd "$1"
    new_key() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" -keyout "$2.key" "${@:3}" 2>/dev/null; }
    new_key bench-ca ca -x509 -days 2 -out ca.pem
    new_key localhost server -out server.csr
    new_key liumi client -out client.csr
    sign() { openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile <(printf '%s' "$2") -out "$1.pem" 2>/dev/null; }
    sign server $'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth'
    sign client $'subjectAltName=URI:spiffe://example.org/ns/dev/sa/liumi\nextendedKeyUsage=clientAuth'
  )
}
