#!/usr/bin/env bash
# The test command (README): installs what the tests need, then runs every test
# (unit, integration, and each benchmark once in test mode).
set -euo pipefail
cd "$(dirname "$0")/.."

# Alibaba Cloud's Python SDKs for the interop test (tests/sdk_interop.rs) and the signature
# vector recorder, in a git-ignored venv. Reinstalled only when tests/sdk/requirements.txt
# changes (its copy in the venv is the stamp).
requirements=tests/sdk/requirements.txt
if ! cmp -s "$requirements" .venv/requirements.txt 2>/dev/null \
  || ! .venv/bin/python -c 'import alibabacloud_eci20180808, aliyunsdkcore' 2>/dev/null; then
  echo "== python SDKs for the interop test (.venv)"
  if ! python3 -m venv .venv; then
    # Debian's python3 ships venv separately.
    apt-get update -qq && apt-get install -y -qq python3-venv
    python3 -m venv .venv
  fi
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" .venv/requirements.txt
fi

# redis-server for the [cluster] tests (tests/cluster.rs, the soak's replicas). Without it
# those tests skip, except with CI=true, where they fail.
if ! command -v redis-server >/dev/null 2>&1; then
  echo "== redis-server for the cluster tests"
  apt-get update -qq && apt-get install -y -qq redis-server
fi

cargo test --all-targets --no-fail-fast
