#!/usr/bin/env bash
# Installs the Debian packages mvadapter needs (only the missing ones), then configures and builds.
# Idempotent: a second run installs nothing and rebuilds only what changed.
#   scripts/bootstrap.sh [BUILD_DIR] [TARGET...]   (default: build, every target)
# Environment:
#   TORCH_DIR=PATH   build against another LibTorch (e.g. a CUDA one) instead of Debian's CPU
#                    libtorch-dev: its share/cmake/Torch folder, its root (the folder holding
#                    share/cmake/Torch), or pip's torch.utils.cmake_prefix_path (.../share/cmake).
#                    libtorch-dev is then not installed. See the README, "GPUs".
#   MVA_CMAKE_ARGS   extra arguments for the first configure (e.g. -DMVA_WITH_VIDEO=OFF)
#   MVA_PROJECT_DIR  the CMake project to configure (default: this tree); CI builds the model-only
#                    configuration through tests/cmake/parent_project (add_subdirectory)
#   MVA_BUILD_JOBS   parallel compile jobs (default 2)
#   MVA_TEST_PACKAGES=1  also install what only the tests need (headless Chromium for ctest -L web)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
shift || true
TARGETS=()
for t in "$@"; do TARGETS+=(--target "$t"); done

# The folder holding TorchConfig.cmake, from any of the forms TORCH_DIR may take.
torch_config_dir() {
  local d
  for d in "$1" "$1/share/cmake/Torch" "$1/Torch"; do
    if [ -f "$d/TorchConfig.cmake" ]; then
      (cd "$d" && pwd)
      return 0
    fi
  done
  echo "bootstrap: TORCH_DIR=$1 holds no TorchConfig.cmake (looked in $1, $1/share/cmake/Torch," \
    "$1/Torch); expected a LibTorch's share/cmake/Torch or its root" >&2
  return 1
}

TORCH_CMAKE_ARGS=()
if [ -n "${TORCH_DIR:-}" ]; then
  torch_cfg=$(torch_config_dir "$TORCH_DIR")
  # Torch_DIR for find_package(Torch), and Caffe2_DIR: TorchConfig looks for the Caffe2 config
  # (its library targets) next to itself only after CMake's default places, where Debian's
  # libtorch-dev may be. The prefix (pip's torch/) for anything else it brings.
  TORCH_CMAKE_ARGS=(-DTorch_DIR="$torch_cfg" -DCMAKE_PREFIX_PATH="$(cd "$torch_cfg/../../.." && pwd)")
  if [ -f "$torch_cfg/../Caffe2/Caffe2Config.cmake" ]; then
    TORCH_CMAKE_ARGS+=(-DCaffe2_DIR="$(cd "$torch_cfg/../Caffe2" && pwd)")
  fi
  echo "bootstrap: LibTorch from TORCH_DIR: $torch_cfg"
fi

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libopencv-dev           # video decoding (FFmpeg backend), resize, JPEG/PNG
  ffmpeg                  # the codecs OpenCV's FFmpeg backend uses
  nlohmann-json3-dev      # JSON: safetensors headers, annotations, results
  libspdlog-dev libfmt-dev  # logging and formatting
  libcli11-dev            # command line
  libyaml-cpp-dev         # YAML configs
  libgtest-dev            # tests
  zlib1g-dev              # the gzip'ed BPE vocabulary
  libre2-dev              # Unicode-class regex for the CLIP tokenizer
  libicu-dev              # Unicode lower-casing for the CLIP tokenizer (as str.lower)
  libssl-dev              # sha256 of downloaded CLIP weights
  libopenblas0-pthread    # a threaded BLAS for LibTorch's CPU matmuls
  libblas-dev             # cblas.h: the fused attention's GEMMs call that same BLAS directly
  libgoogle-perftools-dev # tcmalloc for the programs: lower peak memory at the same speed
  libgloo-dev             # Gloo headers: the distributed code uses c10d's ProcessGroupGloo
  libcpp-httplib-dev      # mvadapter serve: the HTTP server
  libfaiss-dev            # IVF indexes (encode --index-type ivf)
  python3                 # the comparison table printed by scripts/reproduce/*.sh
  clang libclang-rt-14-dev llvm  # scripts/fuzz.sh: clang, libFuzzer and the sanitizer runtimes,
                                 # llvm-symbolizer for readable sanitizer stacks
)
if [ "${MVA_TEST_PACKAGES:-0}" = 1 ]; then
  # Only for the tests (scripts/test.sh): serve's page in headless Chromium (ctest -L web).
  PACKAGES+=(chromium chromium-driver python3-selenium)
fi
if [ -z "${TORCH_DIR:-}" ]; then
  PACKAGES+=(libtorch-dev)  # LibTorch 1.13 (CPU) - tensors, autograd, modules
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

EXTRA_ARGS=()
if [ -n "${MVA_CMAKE_ARGS:-}" ]; then
  read -r -a EXTRA_ARGS <<<"$MVA_CMAKE_ARGS"
fi
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  # Unity batches: a clean build in about half the time (bench/RESULTS.md, "build").
  cmake -S "${MVA_PROJECT_DIR:-.}" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMVA_UNITY_BUILD=ON \
    ${TORCH_CMAKE_ARGS[@]+"${TORCH_CMAKE_ARGS[@]}"} ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"}
elif [ -n "${TORCH_DIR:-}" ]; then
  # An existing build dir keeps the LibTorch it was configured with unless told otherwise.
  cmake "$BUILD_DIR" "${TORCH_CMAKE_ARGS[@]}"
fi
# Two jobs: each torch translation unit needs ~1.5 GB of memory while compiling.
cmake --build "$BUILD_DIR" -j "${MVA_BUILD_JOBS:-2}" ${TARGETS[@]+"${TARGETS[@]}"}
