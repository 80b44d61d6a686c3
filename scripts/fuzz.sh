#!/usr/bin/env bash
# Runs every cargo-fuzz (libFuzzer) target of ramgate for a bounded time each.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 seconds, all targets)
#
# Targets live in fuzz/fuzz_targets; their seeds in fuzz/seeds/<target> (committed) and the
# corpus they grow in fuzz/corpus/<target> (not committed; kept between runs on one
# machine). A crash, a leak, an input slower than 10 s or over 2 GiB stops that target;
# libFuzzer leaves the input in fuzz/artifacts/<target>/ and this script exits 1 after the
# other targets have run. Turn a finding into a regression test in
# tests/fuzz_regressions.rs (see docs/SECURITY.md).
#
# cargo fuzz needs nightly compiler flags (-Zsanitizer, coverage instrumentation): on the
# stable toolchain RUSTC_BOOTSTRAP=1 allows them, for these fuzz builds only. FUZZ_SANITIZER
# (address by default, or none) chooses the sanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
case "$seconds" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2 ;;
esac
all_targets=(policy_parser principals_loader request_parse signature)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
sanitizer="${FUZZ_SANITIZER:-address}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

dict_of() {
  case "$1" in
    policy_parser) echo fuzz/dicts/policy.dict ;;
    principals_loader) echo fuzz/dicts/principals.dict ;;
    *) echo fuzz/dicts/request.dict ;;
  esac
}

echo "== cargo fuzz build (sanitizer: $sanitizer)"
build_log=$(mktemp)
if ! RUSTC_BOOTSTRAP=1 cargo fuzz build --sanitizer "$sanitizer" >"$build_log" 2>&1; then
  tail -n 60 "$build_log" >&2
  rm -f "$build_log"
  echo "cargo fuzz build failed" >&2
  exit 1
fi
tail -n 2 "$build_log"
rm -f "$build_log"

failed=()
summary=()
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus" "fuzz/artifacts/$target"
  log="fuzz/artifacts/$target/last-run.log"
  echo "== fuzzing $target for ${seconds}s"
  set +e
  # The growing corpus first (libFuzzer writes there), then the seeds and saved findings.
  inputs=("$corpus" "fuzz/seeds/$target")
  [ -d "fuzz/regressions/$target" ] && inputs+=("fuzz/regressions/$target")
  RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer "$sanitizer" "$target" "${inputs[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
    -dict="$(dict_of "$target")" -print_final_stats=1 >"$log" 2>&1
  status=$?
  set -e
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -n 1 || true)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1 | grep -Eo '[0-9]+' || true)
  size=$(find "$corpus" -type f | wc -l)
  line="$target: ${seconds}s, ${runs:-?} runs, coverage ${cov:-?} edges, corpus $size inputs"
  if [ "$status" -ne 0 ]; then
    failed+=("$target")
    line="$line — FAILED (exit $status), see $log and fuzz/artifacts/$target/"
    tail -n 40 "$log" >&2
  fi
  echo "$line"
  summary+=("$line")
done

echo "== fuzz summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz findings in: ${failed[*]}" >&2
  exit 1
fi
