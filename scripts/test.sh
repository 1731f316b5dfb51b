#!/usr/bin/env bash
# Builds everything (installing dependencies if needed) and runs the whole test suite.
#   scripts/test.sh [ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
MVA_TEST_PACKAGES=1 bash scripts/bootstrap.sh build
cd build
# Each test process uses one intra-op thread; ctest runs two at a time.
MVA_THREADS=1 ctest --output-on-failure -j "${MVA_TEST_JOBS:-2}" "$@"
