#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite: unit, golden and end-to-end tests on the
# Release build, then the unit and golden tests again under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
(cd build && ctest --output-on-failure -j2)

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DR1_SANITIZE=ON -DR1_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"$(nproc)" --target r1_unit_tests r1_golden_tests
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
./build-asan/r1_unit_tests --gtest_brief=1
./build-asan/r1_golden_tests --gtest_brief=1
# The AVX2 / AVX-VNNI kernels read whole vectors past short runs inside a tile: checked here too.
R1_ISA=avxvnni ./build-asan/r1_unit_tests --gtest_brief=1 \
  --gtest_filter='*Int8*:*Gemm*:*MatMul*:*Quant*:*Attend*:*Matrix*'
echo "all tests passed"
