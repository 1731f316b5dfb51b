#!/usr/bin/env bash
# Thread pools: one training epoch of MV-Adapter on the synthetic Shapes data (Tiny-32 CLIP,
# random weights, 720 videos, batch 32) with both pools (MVA_THREADING=omp: LibTorch's OpenMP
# intra-op pool + OpenBLAS's pthread pool) and with OpenBLAS owning the cores (the default),
# alternating, REPEAT times each. Prints wall seconds per run and the median ratio.
#   bench/thread_pools.sh [build/mvadapter] [REPEAT=3]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-build/mvadapter}"
REPEAT="${2:-3}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$BIN" synth --out "$work/shapes" --seed 0 >/dev/null
export DEMO_DIR="$work"
run() {  # $1: MVA_THREADING value, $2: run name
  local t0 t1
  t0=$(date +%s.%N)
  MVA_THREADING="$1" "$BIN" train configs/synthetic/mv_adapter.yaml --quiet \
    --set model.clip= --set train.epochs=1 --set data.caption_sampling=one_per_video \
    --set "train.output_dir=$work/runs/$2" >/dev/null 2>"$work/$2.err" || { cat "$work/$2.err" >&2; exit 1; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}'
}
omp=(); blas=()
for i in $(seq "$REPEAT"); do
  omp+=("$(run omp "omp$i")"); blas+=("$(run default "blas$i")")
  echo "run $i: both pools ${omp[-1]} s, OpenBLAS owns the cores ${blas[-1]} s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mo=$(median "${omp[@]}"); mb=$(median "${blas[@]}")
echo "median: both pools $mo s, OpenBLAS owns the cores $mb s, ratio $(awk -v a="$mo" -v b="$mb" 'BEGIN {printf "%.2f", a / b}')x"
