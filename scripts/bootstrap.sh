#!/usr/bin/env bash
# Installs the Debian packages mvadapter needs (only the missing ones), then configures and builds.
# Idempotent: a second run installs nothing and rebuilds only what changed.
#   scripts/bootstrap.sh [BUILD_DIR] [TARGET...]   (default: build, every target)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
shift || true
TARGETS=()
for t in "$@"; do TARGETS+=(--target "$t"); done

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libtorch-dev            # LibTorch 1.13 (CPU) - tensors, autograd, modules, c10d
  libgloo-dev             # headers of the Gloo collectives behind c10d ProcessGroupGloo
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
)

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

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  # Unity batches: a clean build in about half the time (bench/RESULTS.md, "build").
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMVA_UNITY_BUILD=ON
fi
# Two jobs: each torch translation unit needs ~1.5 GB of memory while compiling.
cmake --build "$BUILD_DIR" -j "${MVA_BUILD_JOBS:-2}" "${TARGETS[@]}"
