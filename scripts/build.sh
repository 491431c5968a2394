#!/usr/bin/env bash
# Configures and builds the Release tree into build/ (binary: build/r1).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DR1_BUILD_BENCH=ON >/dev/null
cmake --build build -j"$(nproc)"
