#!/usr/bin/env bash
# Clean-build time of one target with and without unity batches (MVA_UNITY_BUILD), one after
# the other in fresh build folders, with the same job count. Prints wall seconds per build and
# the ratio. The translation units that include torch dominate: each one loads the ~300 MB
# precompiled header, which costs ~20 s on a 2-core machine whatever the file's own size.
#   bench/build_time.sh [TARGET=mvadapter] [JOBS=2]
source "$(dirname "$0")/common.sh"
TARGET="${1:-mvadapter}"
JOBS="${2:-2}"
build() {  # $1: ON/OFF
  local dir="$work/unity-$1" t0
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMVA_UNITY_BUILD="$1" >/dev/null
  t0=$(bench_now)
  cmake --build "$dir" -j "$JOBS" --target "$TARGET" >"$work/build-$1.log" 2>&1 ||
    { tail -30 "$work/build-$1.log" >&2; exit 1; }
  echo "$(bench_since "$t0") $(grep -c 'Building CXX' "$work/build-$1.log")"
}
read -r on on_tu <<<"$(build ON)"
echo "unity ON:  $on s ($on_tu compile steps)"
read -r off off_tu <<<"$(build OFF)"
echo "unity OFF: $off s ($off_tu compile steps)"
echo "ratio OFF/ON: $(bench_ratio "$off" "$on")x"
