#!/usr/bin/env bash
# Demo jobs: two MV-Adapter trainings on the synthetic Shapes data (Tiny-32 CLIP with random
# weights, 720 videos, batch 32, EPOCHS epochs each) run one after the other with two threads
# each (OpenBLAS owns the cores), then side by side with one thread each, as scripts/demo.sh
# runs its methods. Alternates the two settings REPEAT times; prints wall seconds and the ratio.
#   bench/demo_jobs.sh [build/mvadapter] [REPEAT=2] [EPOCHS=2]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-build/mvadapter}"
REPEAT="${2:-2}"
EPOCHS="${3:-2}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$BIN" synth --out "$work/shapes" --seed 0 >/dev/null
export DEMO_DIR="$work"
train() {  # $1: threads, $2: run name
  MVA_THREADS="$1" "$BIN" train configs/synthetic/mv_adapter.yaml --quiet --set model.clip= \
    --set "train.epochs=$EPOCHS" --set "train.output_dir=$work/runs/$2" >/dev/null \
    2>"$work/$2.err" || { cat "$work/$2.err" >&2; exit 1; }
}
now() { date +%s.%N; }
seq_t=(); par_t=()
for i in $(seq "$REPEAT"); do
  t0=$(now); train 2 "seq${i}a"; train 2 "seq${i}b"; t1=$(now)
  seq_t+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')")
  t0=$(now); train 1 "par${i}a" & pa=$!; train 1 "par${i}b" & pb=$!; wait "$pa"; wait "$pb"; t1=$(now)
  par_t+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')")
  echo "round $i: one after the other (2 threads) ${seq_t[-1]} s, side by side (1 thread) ${par_t[-1]} s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms=$(median "${seq_t[@]}"); mp=$(median "${par_t[@]}")
echo "median: one after the other $ms s, side by side $mp s, ratio $(awk -v a="$ms" -v b="$mp" 'BEGIN {printf "%.2f", a / b}')x"
