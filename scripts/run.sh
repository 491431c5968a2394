#!/usr/bin/env bash
# The main job for a newcomer: set up, build, and generate from a golden DeepSeek-V3 checkpoint
# (FP8 weights, MLA, MoE with noaux_tc routing; random weights, so the ids are meaningless but
# must equal the official reference's greedy output).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
model=../shared/golden/deepseek-v3-tiny/model
./build/r1 info -m "$model"
echo "+ r1 generate -m $model --prompt-ids 284,186,1870,448,778,782,1824,2000 -n 16 --ignore-eos"
./build/r1 generate -m "$model" --prompt-ids 284,186,1870,448,778,782,1824,2000 -n 16 --ignore-eos
echo "reference greedy output: 922 1915 223 138 1312 44 657 1228 626 1654 621 100 1969 380 1819 1822"
