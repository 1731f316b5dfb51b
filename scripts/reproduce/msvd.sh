#!/usr/bin/env bash
# Reproduces MV-Adapter on MSVD with the paper's recipe: trains
# configs/msvd/mv_adapter_vit_b16.yaml (or CONFIG=...) on CLIP ViT-B/16, then prints our
# T2V/V2T R@1/5/10, MdR and MnR beside the paper's Table 2.
#
#   DATA_ROOT=/data CLIP_WEIGHTS=/weights/ViT-B-16.pt scripts/reproduce/msvd.sh [train args]
#
# Needs, under $DATA_ROOT/msvd: annotations/ holding
#   raw-captions.pkl train_list.txt test_list.txt
# and videos/ (where they come from and the layout: docs/datasets.md). Extra arguments go to
# `mvadapter train`; CONFIG, RUN_DIR, SEED, DEVICE, BUILD_DIR and COMPARE_ONLY are described in
# scripts/reproduce/common.sh. Running it again continues a stopped run.
set -euo pipefail
DATASET=msvd
DATASET_LABEL="MSVD (1,200 train, 670 test videos, all captions)"
ANNOTATION_FILES=(raw-captions.pkl train_list.txt test_list.txt)

# The paper's numbers (MV-Adapter, arXiv 2301.07868v2 = CVPR 2024, the table named in each row):
# mean over 3 seeds, CLIP ViT-B/16, R@1 R@5 R@10 text->video then video->text. The paper reports
# no MdR/MnR. Keys are config stems without _vit_bNN.
declare -A PAPER=(
  [mv_adapter]="Table 2|49.4 78.3 87.0 71.8 93.0 96.4|2.39"
  [full_finetune]="Table 2|49.7 79.2 87.3 71.2 92.5 95.5|100"
  [bottleneck_seq]="Table 2|45.1 76.2 85.3 62.6 88.8 93.4|2.78"
  [bottleneck_par]="Table 2|48.3 77.7 86.8 68.9 90.9 94.8|2.78"
  [no_ta]="Table 10|49.3 78.2 87.0 70.8 93.2 96.1|-"
  [no_cmt]="Table 10|49.0 78.3 86.9 71.0 92.3 96.2|-"
)

source "$(dirname "$0")/common.sh"
repro_main "$@"
