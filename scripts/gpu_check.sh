#!/usr/bin/env bash
# Checks mvadapter on a machine with CUDA GPUs, against the LibTorch inside the local PyTorch:
#   1. build: a separate build dir configured with bootstrap's TORCH_DIR = that LibTorch
#   2. unit tests (ctest, CUDA visible), then the distributed tests (ctest -R '[Dd]istributed':
#      test names or a test program of that name; none found is a failure)
#   3. a tiny Shapes dataset (synth) and a Tiny-32 CLIP pre-trained for one epoch on the GPU
#   4. training on it: 2 processes over NCCL (train --nproc 2) when there are >= 2 GPUs, else one
#   5. one bf16 and one fp16 training run (train.precision)
# Every stage has a timeout and a log (GPU_CHECK_DIR/<stage>.log); a failed stage does not stop
# the ones that do not need it. The last line is one summary, e.g.
#   gpu_check: torch 2.3.1 cuda 12.1, 2 GPUs, build OK, unit tests 210/210, distributed OK,
#   nccl 2-rank OK, bf16 OK, fp16 OK
# and the exit status is 0 only when every stage passed (2: no CUDA GPU or no PyTorch).
#
# Environment: PYTHON (default python3), GPU_CHECK_DIR (work folder, default gpu_check),
# GPU_CHECK_BUILD (build dir, default build-cuda), MVA_BUILD_JOBS (default: cores, at most one
# per 2 GB of memory), GPU_CHECK_TIMEOUT_SCALE (multiplies every stage's timeout, default 1).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
WORK="${GPU_CHECK_DIR:-gpu_check}"
BUILD="${GPU_CHECK_BUILD:-build-cuda}"
SCALE="${GPU_CHECK_TIMEOUT_SCALE:-1}"

die() {  # no CUDA GPU, no PyTorch: nothing to check here; this is then the summary line
  echo "gpu_check: FAILED before any stage: $*"
  exit 2
}

# ---- preflight: fail early and clearly where there is nothing to check ------------------------
if ! command -v nvidia-smi >/dev/null 2>&1; then
  die "no CUDA GPU: nvidia-smi is not installed (no NVIDIA driver on this machine)"
fi
smi_gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
if [ "$smi_gpus" -lt 1 ]; then
  die "no CUDA GPU: nvidia-smi lists none ($(nvidia-smi -L 2>&1 | head -1))"
fi
if ! "$PYTHON" -c 'import torch' >/dev/null 2>&1; then
  die "no PyTorch: '$PYTHON -c \"import torch\"' fails; install a CUDA build (pip install torch)"
fi
# One line: version, CUDA version, GPUs LibTorch sees, cmake prefix, C++11 ABI.
info=$("$PYTHON" -c '
import torch
print(torch.__version__, torch.version.cuda or "none",
      torch.cuda.device_count() if torch.cuda.is_available() else 0,
      torch.utils.cmake_prefix_path, int(torch.compiled_with_cxx11_abi()))')
read -r TORCH_VERSION TORCH_CUDA GPUS TORCH_PREFIX TORCH_CXX11 <<<"$info"
if [ "$TORCH_CUDA" = none ]; then
  die "PyTorch $TORCH_VERSION is a CPU build (torch.version.cuda is None); install a CUDA one"
fi
if [ "$GPUS" -lt 1 ]; then
  die "no CUDA GPU visible to PyTorch $TORCH_VERSION (cuda $TORCH_CUDA) although nvidia-smi lists $smi_gpus; check CUDA_VISIBLE_DEVICES and the driver"
fi
if [ "$TORCH_CXX11" != 1 ]; then
  echo "gpu_check: warning: this PyTorch's LibTorch uses the pre-C++11 ABI; configure will stop (README, \"GPUs\")" >&2
fi
echo "gpu_check: torch $TORCH_VERSION, cuda $TORCH_CUDA, $GPUS GPU(s); LibTorch: $TORCH_PREFIX"

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
cores=$(nproc)
mem_gb=$(awk '/MemTotal/ {print int($2 / 1048576)}' /proc/meminfo)
jobs_by_mem=$((mem_gb / 2 > 0 ? mem_gb / 2 : 1))
JOBS="${MVA_BUILD_JOBS:-$((cores < jobs_by_mem ? cores : jobs_by_mem))}"

# ---- stages -----------------------------------------------------------------------------------
declare -A STATUS=()
# stage NAME TIMEOUT_S CMD...: runs CMD with a timeout, its output in WORK/NAME.log; records OK,
# FAILED (exit N) or TIMEOUT; never exits the script.
stage() {
  local name="$1" secs="$2" rc=0 t0
  shift 2
  secs=$(awk -v s="$secs" -v k="$SCALE" 'BEGIN {print int(s * k)}')
  t0=$(date +%s)
  echo "== $name (timeout ${secs} s, log $WORK/$name.log)"
  timeout --kill-after=30 "$secs" "$@" >"$WORK/$name.log" 2>&1 || rc=$?
  if [ "$rc" = 0 ]; then
    STATUS[$name]=OK
  elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    STATUS[$name]="TIMEOUT after ${secs} s"
  else
    STATUS[$name]="FAILED (exit $rc)"
  fi
  echo "   $name: ${STATUS[$name]} in $(($(date +%s) - t0)) s"
  if [ "$rc" != 0 ]; then tail -5 "$WORK/$name.log" | sed 's/^/   | /' || true; fi
  return 0
}
ok() { [ "${STATUS[$1]:-}" = OK ]; }
skip() { STATUS[$1]="skipped ($2)"; echo "== $1: ${STATUS[$1]}"; }

stage build 5400 env TORCH_DIR="$TORCH_PREFIX" MVA_BUILD_JOBS="$JOBS" \
  bash scripts/bootstrap.sh "$BUILD"
BIN="$BUILD/mvadapter"

# ctest's summary line: "NN% tests passed, F tests failed out of T".
UNIT="?"
if ok build; then
  stage unit_tests 3600 bash -c "cd '$BUILD' && ctest -E '[Dd]istributed' -j $((cores < 8 ? cores : 8)) --output-on-failure"
  summary=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$WORK/unit_tests.log" | tail -1 || true)
  if [ -n "$summary" ]; then
    failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$summary")
    total=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$summary")
    UNIT="$((total - failed))/$total"
  fi
  # "No tests were found" is a pass for ctest; here it is a failure: the check must run them.
  stage distributed 1800 bash -c "cd '$BUILD' && out=\$(ctest -R '[Dd]istributed' --output-on-failure 2>&1); rc=\$?; echo \"\$out\"; grep -q 'No tests were found' <<<\"\$out\" && exit 3; exit \$rc"
else
  skip unit_tests "no build"
  skip distributed "no build"
fi

# The demo's configs read DEMO_DIR: a small Shapes set and a CLIP pre-trained for one epoch.
export DEMO_DIR="$WORK/demo"
SETS=(--set train.epochs=1 --set train.batch_size=16 --set eval.batch_size=24 --set data.workers=2)
if ok build; then
  stage data 1200 bash -c "rm -rf '$DEMO_DIR' && '$BIN' synth --out '$DEMO_DIR/shapes' --seed 0 --train-per-class 4 --shapes 2 --colors 3 && '$BIN' pretrain configs/synthetic/pretrain.yaml --quiet --device cuda ${SETS[*]}"
else
  skip data "no build"
fi

train_run() {  # NAME [extra args...]: one epoch of MV-Adapter on the GPU(s)
  local name="$1"
  shift
  stage "$name" 1800 "$BIN" train configs/synthetic/mv_adapter.yaml --quiet --device cuda \
    "${SETS[@]}" --set "train.output_dir=$WORK/runs/$name" "$@"
}
if [ "$GPUS" -ge 2 ]; then TRAIN_NAME=nccl_2rank; else TRAIN_NAME=train_1gpu; fi
if ok data; then
  if [ "$GPUS" -ge 2 ]; then
    train_run nccl_2rank --nproc 2
  else
    train_run train_1gpu
  fi
  train_run bf16 --set train.precision=bf16
  train_run fp16 --set train.precision=fp16
else
  skip "$TRAIN_NAME" "no data"
  skip bf16 "no data"
  skip fp16 "no data"
fi

# ---- one summary line -------------------------------------------------------------------------
word() { if ok "$1"; then echo OK; else echo "${STATUS[$1]:-not run}"; fi; }
if ok unit_tests; then unit_word="$UNIT"; else unit_word="$UNIT ${STATUS[unit_tests]:-}"; fi
if [ "$GPUS" -ge 2 ]; then train_label="nccl 2-rank"; else train_label="1-GPU training (1 GPU: no NCCL run)"; fi
all_ok=1
for s in build unit_tests distributed data "$TRAIN_NAME" bf16 fp16; do ok "$s" || all_ok=0; done
echo "gpu_check: torch $TORCH_VERSION cuda $TORCH_CUDA, $GPUS GPUs, build $(word build)," \
  "unit tests $unit_word, distributed $(word distributed), data+pretrain $(word data)," \
  "$train_label $(word "$TRAIN_NAME"), bf16 $(word bf16), fp16 $(word fp16)"
[ "$all_ok" = 1 ]
