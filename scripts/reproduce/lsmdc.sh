#!/usr/bin/env bash
# Reproduces MV-Adapter on LSMDC with the paper's recipe: trains
# configs/lsmdc/mv_adapter_vit_b16.yaml (or CONFIG=...) on CLIP ViT-B/16, then prints our
# T2V/V2T R@1/5/10, MdR and MnR beside the paper's Table 3.
#
#   DATA_ROOT=/data CLIP_WEIGHTS=/weights/ViT-B-16.pt scripts/reproduce/lsmdc.sh [train args]
#
# Needs, under $DATA_ROOT/lsmdc: annotations/ holding
#   LSMDC16_annos_training.csv LSMDC16_challenge_1000_publictect.csv
# and videos/ (where they come from and the layout: docs/datasets.md). Extra arguments go to
# `mvadapter train`; CONFIG, RUN_DIR, SEED, DEVICE, BUILD_DIR and COMPARE_ONLY are described in
# scripts/reproduce/common.sh. Running it again continues a stopped run.
set -euo pipefail
DATASET=lsmdc
DATASET_LABEL="LSMDC (train, 1,000-clip test)"
ANNOTATION_FILES=(LSMDC16_annos_training.csv LSMDC16_challenge_1000_publictect.csv)

# The paper's numbers (MV-Adapter, arXiv 2301.07868v2 = CVPR 2024, the table named in each row):
# mean over 3 seeds, CLIP ViT-B/16, R@1 R@5 R@10 text->video then video->text. The paper reports
# no MdR/MnR. Keys are config stems without _vit_bNN.
declare -A PAPER=(
  [mv_adapter]="Table 3|23.2 43.9 53.2 24.0 42.8 52.1|2.42"
  [full_finetune]="Table 3|20.2 41.5 51.2 21.8 40.5 50.9|100"
  [bottleneck_seq]="Table 3|20.7 40.2 50.2 20.9 38.8 49.1|2.78"
  [bottleneck_par]="Table 3|19.8 39.0 48.8 21.0 38.0 46.6|2.78"
  [no_ta]="Table 10|23.1 42.7 52.4 23.6 42.2 52.4|-"
  [no_cmt]="Table 10|23.4 43.2 53.3 23.0 41.6 51.8|-"
)

source "$(dirname "$0")/common.sh"
repro_main "$@"
