#!/usr/bin/env bash
# scripts/bootstrap.sh with TORCH_DIR: a folder that is no LibTorch is one error naming the places
# looked in, before anything is installed; a LibTorch given as pip's cmake_prefix_path form
# (.../cmake, holding Torch/) configures against exactly that TorchConfig.cmake.
#   tests/scripts/bootstrap_torch_dir_test.sh TORCH_CONFIG_DIR
set -euo pipefail
src="$(cd "$(dirname "$0")/../.." && pwd)"
torch_cfg="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

if TORCH_DIR="$tmp/nowhere" bash "$src/scripts/bootstrap.sh" "$tmp/b0" >"$tmp/out0" 2>&1; then
  fail "bootstrap accepted TORCH_DIR=$tmp/nowhere"
fi
grep -q "TORCH_DIR=$tmp/nowhere holds no TorchConfig.cmake" "$tmp/out0" || { cat "$tmp/out0"; fail "no clear error"; }
[ ! -e "$tmp/b0" ] || fail "bootstrap configured a build dir with a bad TORCH_DIR"

# 'help' lists the targets: configures, builds nothing.
TORCH_DIR="$(dirname "$torch_cfg")" bash "$src/scripts/bootstrap.sh" "$tmp/b1" help >"$tmp/out1" 2>&1 \
  || { cat "$tmp/out1"; fail "bootstrap with TORCH_DIR=$(dirname "$torch_cfg") failed"; }
grep -q "^Torch_DIR:.*=$torch_cfg\$" "$tmp/b1/CMakeCache.txt" || fail "Torch_DIR is not $torch_cfg"
grep -q -- "-- Torch .*: CUDA .*, NCCL " "$tmp/out1" || { cat "$tmp/out1"; fail "configure did not print Torch/CUDA/NCCL"; }
echo "ok"
