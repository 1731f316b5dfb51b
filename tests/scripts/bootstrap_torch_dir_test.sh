#!/usr/bin/env bash
# scripts/bootstrap.sh with TORCH_DIR: a folder that is no LibTorch is one error naming the places
# looked in, before anything is installed; a LibTorch given as pip's cmake_prefix_path form
# (.../cmake, holding Torch/) configures against exactly that TorchConfig.cmake; and a LibTorch
# outside the system folders (a copy of Debian's, as a pip or zip one would be) is the one the
# program links, and the installed program keeps its folder as RPATH.
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
# The relocated copy: the CMake configs copied (they locate the libraries relative to
# themselves), the libraries and headers linked. Debian's layout only (lib/<arch>/cmake/Torch).
case "$torch_cfg" in
  */lib/*/cmake/Torch) ;;
  *) echo "ok (the relocated-LibTorch case needs Debian's layout, not $torch_cfg)"; exit 0 ;;
esac
libdir="$(cd "$torch_cfg/../.." && pwd)"
arch="$(basename "$libdir")"
copy="$tmp/libtorch"
mkdir -p "$copy/lib/$arch/cmake"
cp -r "$torch_cfg" "$torch_cfg/../Caffe2" "$copy/lib/$arch/cmake/"
for f in "$libdir"/libc10.so* "$libdir"/libtorch.so* "$libdir"/libtorch_cpu.so*; do
  ln -s "$f" "$copy/lib/$arch/"
done
ln -s "$(cd "$libdir/../../include" && pwd)" "$copy/include"
TORCH_DIR="$copy/lib/$arch/cmake/Torch" MVA_CMAKE_ARGS="-DMVA_BUILD_TESTS=OFF -DMVA_BUILD_BENCH=OFF" \
  bash "$src/scripts/bootstrap.sh" "$tmp/b2" help >"$tmp/out2" 2>&1 || { cat "$tmp/out2"; fail "relocated LibTorch"; }
grep -q "$copy/lib/$arch/libtorch_cpu.so" "$tmp/b2/build.ninja" || fail "the program does not link the LibTorch of TORCH_DIR"
grep -A3 "RPATH_CHANGE" "$tmp/b2/cmake_install.cmake" | grep -q "NEW_RPATH \"$copy/lib/$arch\"" \
  || { grep -A3 RPATH "$tmp/b2/cmake_install.cmake"; fail "the installed program would lose the RPATH $copy/lib/$arch"; }
echo "ok"
