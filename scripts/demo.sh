#!/usr/bin/env bash
# The main job. Until the synthetic Shapes demo lands (DESIGN.md §7) it runs what exists end to end:
# the frozen-CLIP + MV-Adapter forward/backward against the official golden tensors, and the
# tokenizer on a few captions.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh build
BIN=build/mvadapter
"$BIN" version
if "$BIN" --help | grep -q verify-reference; then
  "$BIN" verify-reference tests/fixtures/mv_adapter_tiny
fi
printf 'a man is playing a guitar\na square changes from red to blue\n' | "$BIN" tokenize --max-words 16
