#!/usr/bin/env bash
# Data-parallel scaling on this machine: the demo's MV-Adapter recipe (configs/synthetic,
# pre-trained Tiny-32 CLIP) trained by one process with one thread, then by `--nproc 2` ranks with
# one thread each (Gloo over loopback), one after the other in this run. Prints the wall time of
# each, their ratio and both runs' R@K (docs/distributed.md, "Measured scaling").
#   bench/dist_scaling.sh            (MVA_BIN: the binary, default build/mvadapter)
#   DEMO_EPOCHS=4 bench/dist_scaling.sh   (fewer epochs for a quick look)
source "$(dirname "$0")/common.sh"
BIN="${MVA_BIN:-build/mvadapter}"
SETS=()
[ -n "${DEMO_EPOCHS:-}" ] && SETS=(--set "train.epochs=$DEMO_EPOCHS")
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores;" \
  "flags: $(grep -m1 -o -w -E 'avx2|avx512f|avx512_bf16|amx_tile' /proc/cpuinfo | sort -u | xargs)"
bench_shapes "$BIN"
t=$(bench_now)
"$BIN" pretrain configs/synthetic/pretrain.yaml --quiet >"$work/pretrain.log" 2>&1
echo "pretrain: $(bench_since "$t") s"

run() {  # $1: label, then the launcher arguments
  local label="$1" t
  shift
  t=$(bench_now)
  MVA_THREADS=1 "$BIN" train "$@" configs/synthetic/mv_adapter.yaml --quiet "${SETS[@]}" \
    --set "train.output_dir=$work/$label" >"$work/$label.log" 2>&1 ||
    { echo "$label failed:"; tail -20 "$work/$label.log"; exit 1; }
  bench_since "$t" >"$work/$label.time"
}
run one
run two --nproc 2
one=$(cat "$work/one.time")
two=$(cat "$work/two.time")
echo "wall time: 1 process x 1 thread ${one} s; 2 processes x 1 thread ${two} s; speed-up $(bench_ratio "$one" "$two")x"
"$BIN" compare "$work/one" "$work/two"
