#!/usr/bin/env bash
# The main job (DESIGN.md §7): on videos the program writes itself, show what MV-Adapter adds.
#   1. synth: the Shapes dataset (a shape changes colour part-way; captions say in which order)
#   2. pretrain: a Tiny-32 CLIP from scratch on single frames ("a red square")
#   3. train + evaluate on the frozen tiny CLIP: zero-shot, full fine-tuning (mean pooling),
#      plain bottleneck adapters, Convpass, ST-Adapter, MV-Adapter without Temporal Adaptation,
#      MV-Adapter
#   4. one table (demo/summary.md); each run has its report.html
# Re-running reuses the dataset and the pre-trained CLIP; FRESH=1 starts over.
#
# Environment: DEMO_DIR (default demo), METHODS (subset of the seven, in order, or any other
# configs/synthetic/<method>.yaml, e.g. METHODS='cm_adapter seqtransf'), FRESH=1,
# MVA_BIN (use this binary and skip the build), DEMO_SYNTH_ARGS (extra `synth` options),
# DEMO_SET (extra `--set k=v` overrides for every run, space-separated), DEMO_EPOCHS (epochs of
# pre-training and of every trained method; zero-shot stays at 0), DEMO_JOBS (methods trained
# at once; default: one per core, at most 4, each with its share of the cores). The test suite
# runs a shrunken demo with the last four (tests/tools/demo_test.cpp).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${MVA_BIN:-}" ]; then
  # Only the program: the tests are scripts/test.sh's job (and would double the build time).
  bash scripts/bootstrap.sh build mvadapter
fi
BIN="${MVA_BIN:-build/mvadapter}"
export DEMO_DIR="${DEMO_DIR:-demo}"
ALL_METHODS="zero_shot full_finetune bottleneck convpass st_adapter mv_adapter_no_ta mv_adapter"
EXTRA_METHODS="cm_adapter seqtransf"  # not run by default: the demo stays within 20 minutes
read -r -a METHODS <<<"${METHODS:-$ALL_METHODS}"
for m in "${METHODS[@]}"; do
  if [ "$m" = pretrain ] || [ "$m" = base ] || [ ! -f "configs/synthetic/$m.yaml" ]; then
    echo "error: METHODS: unknown method '$m' (expected some of: $ALL_METHODS $EXTRA_METHODS)" >&2
    exit 2
  fi
done
SETS=()
for kv in ${DEMO_SET:-}; do SETS+=(--set "$kv"); done
EPOCHS=()
[ -n "${DEMO_EPOCHS:-}" ] && EPOCHS=(--set "train.epochs=$DEMO_EPOCHS")
start=$(date +%s)
[ "${FRESH:-0}" = 1 ] && rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR/runs"

if [ ! -f "$DEMO_DIR/shapes/annotations/MSRVTT_data.json" ]; then
  echo "== synth: Shapes videos -> $DEMO_DIR/shapes"
  # shellcheck disable=SC2086  # DEMO_SYNTH_ARGS is a list of options
  "$BIN" synth --out "$DEMO_DIR/shapes" --seed 0 ${DEMO_SYNTH_ARGS:-}
fi
if [ ! -f "$DEMO_DIR/runs/pretrain/clip.safetensors" ]; then
  echo "== pretrain: Tiny-32 CLIP on single frames"
  rm -rf "$DEMO_DIR/runs/pretrain"
  "$BIN" pretrain configs/synthetic/pretrain.yaml --quiet "${SETS[@]}" "${EPOCHS[@]}"
fi

# The methods are independent runs. The tiny model's GEMMs are too small to keep two OpenBLAS
# threads busy, so two one-thread runs side by side finish 1.5-1.8x sooner than one after the
# other with two threads each (bench/RESULTS.md, "Demo jobs").
cores=$(nproc)
JOBS="${DEMO_JOBS:-$((cores < 4 ? cores : 4))}"
[ "$JOBS" -ge 1 ] 2>/dev/null || { echo "error: DEMO_JOBS='$JOBS': expected a positive integer" >&2; exit 2; }
THREADS=$((cores / JOBS > 0 ? cores / JOBS : 1))
run_method() {  # $1: method; its output goes to runs/<method>.log, its exit status to .rc
  local m="$1" t0 extra=()
  t0=$(date +%s)
  [ "$m" = zero_shot ] || extra=("${EPOCHS[@]}")
  rm -rf "$DEMO_DIR/runs/$m"
  local rc=0
  MVA_THREADS="$THREADS" "$BIN" train "configs/synthetic/$m.yaml" --quiet "${SETS[@]}" \
    "${extra[@]}" >"$DEMO_DIR/runs/$m.log" 2>&1 || rc=$?
  echo "$rc" >"$DEMO_DIR/runs/$m.rc"
  if [ "$rc" = 0 ]; then
    echo "   $m: done in $(($(date +%s) - t0)) s ($(grep -o 'T2V R@1 [0-9.]*' "$DEMO_DIR/runs/$m.log" | tail -1))"
  else
    echo "   $m: FAILED (exit $rc), see $DEMO_DIR/runs/$m.log"
  fi
}
echo "== train + evaluate: ${METHODS[*]} ($JOBS at a time, $THREADS thread(s) each; logs: $DEMO_DIR/runs/<method>.log)"
for m in "${METHODS[@]}"; do
  rm -f "$DEMO_DIR/runs/$m.rc"
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  run_method "$m" &
done
wait
failed=()
for m in "${METHODS[@]}"; do
  [ "$(cat "$DEMO_DIR/runs/$m.rc" 2>/dev/null)" = 0 ] || failed+=("$m")
done
if [ ${#failed[@]} -gt 0 ]; then
  for m in "${failed[@]}"; do
    echo "-- $m failed; the end of $DEMO_DIR/runs/$m.log:" >&2
    tail -5 "$DEMO_DIR/runs/$m.log" >&2 || true
  done
  echo "error: ${failed[*]} failed (the other runs are kept in $DEMO_DIR/runs)" >&2
  exit 1
fi

runs=()
for m in "${METHODS[@]}"; do runs+=("$DEMO_DIR/runs/$m"); done
echo
echo "== Shapes text-to-video and video-to-text retrieval (test set: one video per shape and ordered colour pair)"
"$BIN" compare "${runs[@]}" --out "$DEMO_DIR/summary.md"
echo
elapsed=$(($(date +%s) - start))
echo "total wall time: $((elapsed / 60)) min $((elapsed % 60)) s"
echo "table: $DEMO_DIR/summary.md; per-run reports: $DEMO_DIR/runs/<method>/report.html"
# How to browse the runs (serve: search page, frames, run comparison); starts nothing.
m=mv_adapter
[ -f "$DEMO_DIR/runs/$m/checkpoints/best.safetensors" ] || m="${METHODS[${#METHODS[@]}-1]}"
w="--zero-shot"
[ "$m" = zero_shot ] || w="--adapter $DEMO_DIR/runs/$m/checkpoints/best.safetensors"
c="configs/synthetic/$m.yaml"
echo "browse: export DEMO_DIR=$DEMO_DIR; $BIN encode $c $w --videos --out $DEMO_DIR/videos.safetensors && $BIN encode $c $w --captions --out $DEMO_DIR/captions.safetensors && $BIN serve $c $w --index $DEMO_DIR/videos.safetensors --captions $DEMO_DIR/captions.safetensors --runs ${runs[*]}   # then open http://127.0.0.1:8080"
