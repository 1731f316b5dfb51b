#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz; clang, ASan + UBSan) in build-fuzz and runs each for
# SECONDS on a copy of its seed corpus. Exits non-zero when a target finds anything (crash,
# sanitizer report, out-of-memory, timeout); the input that did it is left in
# build-fuzz/fuzz-runs/<target>/findings/ and the log beside it.
#   scripts/fuzz.sh [SECONDS] [TARGET...]   (default: 30 s each, every target of tests/fuzz/corpus)
# Environment:
#   MVA_FUZZ_BUILD_DIR  build folder (default build-fuzz); it also serves the sanitizer unit tests
#   MVA_FUZZ_JOBS       targets run at once (default 1)
# The packages (clang, libFuzzer's runtime) come from scripts/bootstrap.sh, which this calls.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-30}
shift || true
# libFuzzer reads -max_total_time=0 as "no limit".
[[ "$SECONDS_EACH" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: SECONDS must be a positive integer, got '$SECONDS_EACH'" >&2; exit 2; }
BUILD_DIR=${MVA_FUZZ_BUILD_DIR:-build-fuzz}
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  # Every target has a seed folder (checked by ctest -L fuzz), so the folders are the list.
  for d in tests/fuzz/corpus/*/; do TARGETS+=("$(basename "$d")"); done
fi
BUILD_TARGETS=()
for t in "${TARGETS[@]}"; do
  [ -d "tests/fuzz/corpus/$t" ] || { echo "fuzz: unknown target '$t' (no tests/fuzz/corpus/$t)" >&2; exit 2; }
  BUILD_TARGETS+=("fuzz_$t")
done

if [ -f "$BUILD_DIR/CMakeCache.txt" ] && ! grep -q '^MVA_FUZZ:BOOL=ON' "$BUILD_DIR/CMakeCache.txt"; then
  echo "fuzz: $BUILD_DIR was configured without -DMVA_FUZZ=ON; remove it or set MVA_FUZZ_BUILD_DIR" >&2
  exit 2
fi
CC=clang CXX=clang++ MVA_CMAKE_ARGS="-DMVA_FUZZ=ON -DMVA_BUILD_BENCH=OFF ${MVA_CMAKE_ARGS:-}" \
  bash scripts/bootstrap.sh "$BUILD_DIR" "${BUILD_TARGETS[@]}"

# One target: its own copy of the seeds (libFuzzer adds what it finds to the corpus folder), its
# log, and the summary line (executions, coverage) from libFuzzer's last status line.
run_target() {
  local t=$1 work="$BUILD_DIR/fuzz-runs/$1"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/findings"
  cp tests/fuzz/corpus/"$t"/* "$work/corpus/"
  local rc=0
  "$BUILD_DIR/tests/fuzz/fuzz_$t" -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$work/findings/" "$work/corpus" >"$work/log" 2>&1 || rc=$?
  local last
  last=$(grep -E '^#[0-9]+' "$work/log" | tail -1 || true)
  if [ $rc -ne 0 ] || [ -n "$(ls -A "$work/findings")" ]; then
    echo "fuzz: $t: FINDING (exit $rc) after ${last:-no executions}; input in $work/findings/, log $work/log:"
    grep -E 'ERROR:|SUMMARY:|runtime error|MVA_FUZZ_STRICT|==[0-9]+==' "$work/log" | head -20
    return 1
  fi
  echo "fuzz: $t: ok, $SECONDS_EACH s, $(ls "$work/corpus" | wc -l) inputs in corpus; $last"
}

# shellcheck source=../tests/sanitizers/env.sh
source tests/sanitizers/env.sh
status=0
pids=()
for t in "${TARGETS[@]}"; do
  run_target "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "${MVA_FUZZ_JOBS:-1}" ]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for p in ${pids[@]+"${pids[@]}"}; do wait "$p" || status=1; done
exit $status
