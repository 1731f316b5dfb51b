#!/usr/bin/env bash
# Demo jobs: two MV-Adapter trainings on the synthetic Shapes data (Tiny-32 CLIP with random
# weights, 720 videos, batch 32, EPOCHS epochs each) run one after the other with two threads
# each (OpenBLAS owns the cores), then side by side with one thread each, as scripts/demo.sh
# runs its methods. Alternates the two settings REPEAT times; prints wall seconds and the ratio.
#   bench/demo_jobs.sh [build/mvadapter] [REPEAT=2] [EPOCHS=2]
source "$(dirname "$0")/common.sh"
BIN="${1:-build/mvadapter}"
REPEAT="${2:-2}"
EPOCHS="${3:-2}"
bench_shapes "$BIN"
train() {  # $1: threads, $2: run name
  MVA_THREADS="$1" "$BIN" train configs/synthetic/mv_adapter.yaml --quiet --set model.clip= \
    --set "train.epochs=$EPOCHS" --set "train.output_dir=$work/runs/$2" >/dev/null \
    2>"$work/$2.err" || { cat "$work/$2.err" >&2; exit 1; }
}
seq_t=(); par_t=()
for i in $(seq "$REPEAT"); do
  t0=$(bench_now); train 2 "seq${i}a"; train 2 "seq${i}b"
  seq_t+=("$(bench_since "$t0")")
  t0=$(bench_now); train 1 "par${i}a" & pa=$!; train 1 "par${i}b" & pb=$!; wait "$pa"; wait "$pb"
  par_t+=("$(bench_since "$t0")")
  echo "round $i: one after the other (2 threads) ${seq_t[-1]} s, side by side (1 thread) ${par_t[-1]} s"
done
ms=$(bench_median "${seq_t[@]}"); mp=$(bench_median "${par_t[@]}")
echo "median: one after the other $ms s, side by side $mp s, ratio $(bench_ratio "$ms" "$mp")x"
