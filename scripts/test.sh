#!/usr/bin/env bash
# The test command (README): installs what the tests need, then runs every test
# (unit, integration, and each benchmark once in test mode).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --all-targets --no-fail-fast
