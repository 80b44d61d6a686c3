#!/usr/bin/env bash
# Soak: mixed load through ramgate for SECONDS (default 600) while the policy directory is
# rewritten and a group retagged every second and the backend is restarted, every answer
# checked against the reference evaluator (tests/reference/), and the proxy's resident
# memory sampled. Twice: one proxy (`soak`), then three replicas sharing one redis-server
# (`soak_replicas`, with one Redis restart mid-run), SECONDS each.
#
#   scripts/soak.sh [SECONDS]
#
# Knobs (environment): RAMGATE_SOAK_RESTART_SECS (default 15) between backend restarts,
# RAMGATE_SOAK_WORKERS (default 4) concurrent clients, RAMGATE_SOAK_SEED to replay a
# run's random choices. The drivers are the ignored tests `soak` and `soak_replicas` in
# tests/soak.rs; their summaries are printed and kept in target/soak-report.txt and
# target/soak-replicas-report.txt. Exits non-zero on any wrong
# decision, unexpected answer, or memory growth after warm-up.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-600}"
case "$seconds" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
RAMGATE_SOAK_SECS="$seconds" cargo test --test soak -- --ignored --test-threads 1
