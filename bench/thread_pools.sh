#!/usr/bin/env bash
# Thread pools: one training epoch of MV-Adapter on the synthetic Shapes data (Tiny-32 CLIP,
# random weights, 720 videos, batch 32) with both pools (MVA_THREADING=omp: LibTorch's OpenMP
# intra-op pool + OpenBLAS's pthread pool) and with OpenBLAS owning the cores (the default),
# alternating, REPEAT times each. Prints wall seconds per run and the median ratio.
#   bench/thread_pools.sh [build/mvadapter] [REPEAT=3]
source "$(dirname "$0")/common.sh"
BIN="${1:-build/mvadapter}"
REPEAT="${2:-3}"
bench_shapes "$BIN"
run() {  # $1: MVA_THREADING value, $2: run name
  local t0
  t0=$(bench_now)
  MVA_THREADING="$1" "$BIN" train configs/synthetic/mv_adapter.yaml --quiet \
    --set model.clip= --set train.epochs=1 --set data.caption_sampling=one_per_video \
    --set "train.output_dir=$work/runs/$2" >/dev/null 2>"$work/$2.err" || { cat "$work/$2.err" >&2; exit 1; }
  bench_since "$t0"
}
omp=(); blas=()
for i in $(seq "$REPEAT"); do
  omp+=("$(run omp "omp$i")"); blas+=("$(run default "blas$i")")
  echo "run $i: both pools ${omp[-1]} s, OpenBLAS owns the cores ${blas[-1]} s"
done
mo=$(bench_median "${omp[@]}"); mb=$(bench_median "${blas[@]}")
echo "median: both pools $mo s, OpenBLAS owns the cores $mb s, ratio $(bench_ratio "$mo" "$mb")x"
