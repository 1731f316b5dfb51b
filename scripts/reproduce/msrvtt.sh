#!/usr/bin/env bash
# Reproduces MV-Adapter on MSR-VTT with the paper's recipe: trains
# configs/msrvtt/mv_adapter_vit_b16.yaml (or CONFIG=...) on CLIP ViT-B/16, then prints our
# T2V/V2T R@1/5/10, MdR and MnR beside the paper's Table 1.
#
#   DATA_ROOT=/data CLIP_WEIGHTS=/weights/ViT-B-16.pt scripts/reproduce/msrvtt.sh [train args]
#
# Needs, under $DATA_ROOT/msrvtt: annotations/ holding
#   MSRVTT_data.json MSRVTT_train.9k.csv MSRVTT_JSFUSION_test.csv
# and videos/ (where they come from and the layout: docs/datasets.md). Extra arguments go to
# `mvadapter train`; CONFIG, RUN_DIR, SEED, DEVICE, BUILD_DIR and COMPARE_ONLY are described in
# scripts/reproduce/common.sh. Running it again continues a stopped run.
set -euo pipefail
DATASET=msrvtt
DATASET_LABEL="MSR-VTT (9k train, 1k-A test)"
ANNOTATION_FILES=(MSRVTT_data.json MSRVTT_train.9k.csv MSRVTT_JSFUSION_test.csv)

# The paper's numbers (MV-Adapter, arXiv 2301.07868v2 = CVPR 2024, the table named in each row):
# mean over 3 seeds, CLIP ViT-B/16, R@1 R@5 R@10 text->video then video->text. The paper reports
# no MdR/MnR. Keys are config stems without _vit_bNN.
declare -A PAPER=(
  [mv_adapter]="Table 1|46.2 73.2 82.7 47.2 74.8 83.9|2.39"
  [full_finetune]="Table 1|45.0 73.0 82.2 45.3 73.4 83.7|100"
  [bottleneck_seq]="Table 1|45.7 72.4 81.0 45.2 72.8 81.7|2.78"
  [bottleneck_par]="Table 1|45.5 72.3 81.5 45.7 72.9 82.7|2.78"
  # Table 6(b) "V + T" without CMT reports R@1 (and R@Sum) only
  [no_cmt]="Table 6b|45.9 - - 46.6 - -|-"
)

source "$(dirname "$0")/common.sh"
repro_main "$@"
