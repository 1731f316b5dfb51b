#!/usr/bin/env bash
# The main job (DESIGN.md §7): on videos the program writes itself, show what MV-Adapter adds.
#   1. synth: the Shapes dataset (a shape changes colour part-way; captions say in which order)
#   2. pretrain: a Tiny-32 CLIP from scratch on single frames ("a red square")
#   3. train + evaluate on the frozen tiny CLIP: zero-shot, full fine-tuning (mean pooling),
#      plain bottleneck adapters, MV-Adapter without Temporal Adaptation, MV-Adapter
#   4. one table (demo/summary.md); each run has its report.html
# Re-running reuses the dataset and the pre-trained CLIP; FRESH=1 starts over.
#
# Environment: DEMO_DIR (default demo), METHODS (subset of the five, in order), FRESH=1,
# MVA_BIN (use this binary and skip the build), DEMO_SYNTH_ARGS (extra `synth` options),
# DEMO_SET (extra `--set k=v` overrides for every run, space-separated), DEMO_EPOCHS (epochs of
# pre-training and of every trained method; zero-shot stays at 0). The test suite runs a
# shrunken demo with the last four (tests/tools/demo_test.cpp).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${MVA_BIN:-}" ]; then
  # Only the program: the tests are scripts/test.sh's job (and would double the build time).
  bash scripts/bootstrap.sh build mvadapter
fi
BIN="${MVA_BIN:-build/mvadapter}"
export DEMO_DIR="${DEMO_DIR:-demo}"
read -r -a METHODS <<<"${METHODS:-zero_shot full_finetune bottleneck mv_adapter_no_ta mv_adapter}"
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
for m in "${METHODS[@]}"; do
  echo "== train + evaluate: $m"
  rm -rf "$DEMO_DIR/runs/$m"
  if [ "$m" = zero_shot ]; then
    "$BIN" train "configs/synthetic/$m.yaml" --quiet "${SETS[@]}"
  else
    "$BIN" train "configs/synthetic/$m.yaml" --quiet "${SETS[@]}" "${EPOCHS[@]}"
  fi
done

runs=()
for m in "${METHODS[@]}"; do runs+=("$DEMO_DIR/runs/$m"); done
echo
echo "== Shapes text-to-video and video-to-text retrieval (test set: one video per shape and ordered colour pair)"
"$BIN" compare "${runs[@]}" --out "$DEMO_DIR/summary.md"
echo
elapsed=$(($(date +%s) - start))
echo "total wall time: $((elapsed / 60)) min $((elapsed % 60)) s"
echo "table: $DEMO_DIR/summary.md; per-run reports: $DEMO_DIR/runs/<method>/report.html"
