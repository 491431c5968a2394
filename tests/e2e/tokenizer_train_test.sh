#!/usr/bin/env bash
# r1 tokenizer train: learn a BPE from the Debian licence texts, then use it with r1 tokenize
# (encode and decode back); plus the errors users will hit first.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

if "$R1" tokenizer train --help | grep -q "Example:"; then ok "tokenizer train --help has an example"
else fail "tokenizer train --help has no example"; fi

# Training text: the licence texts where the system has them, else a generated stand-in.
LICENSES=/usr/share/common-licenses
INPUTS=()
if [ -d "$LICENSES" ]; then
  for f in "$LICENSES"/*; do [ -f "$f" ] && INPUTS+=("$f"); done
fi
if [ ${#INPUTS[@]} -eq 0 ]; then
  echo "note: $LICENSES missing; training on generated text"
  "$PY" -c '
import random
random.seed(1)
w = "the of and to a in is that model token language learns from text with for this".split()
for _ in range(20000):
    print(" ".join(random.choice(w) for _ in range(10)) + ".")' >"$TMP/corpus.txt"
  INPUTS=("$TMP/corpus.txt")
fi

OUT="$TMP/tok/tokenizer.json"
mkdir -p "$TMP/tok"
start=$(date +%s.%N)
if "$R1" tokenizer train --input "${INPUTS[@]}" --vocab-size 2000 --out "$OUT" \
    >"$TMP/train.out" 2>"$TMP/train.err"; then
  end=$(date +%s.%N)
  ok "trained on ${#INPUTS[@]} file(s) in $("$PY" -c "print(f'{$end - $start:.2f}')")s"
  sed 's/^/  /' "$TMP/train.out"
else
  fail "tokenizer train failed: $(tr '\n' ' ' <"$TMP/train.err")"
fi
grep -q "bytes/token" "$TMP/train.out" && ok "summary reports bytes/token" \
  || fail "summary has no bytes/token"
[ -f "$TMP/tok/tokenizer_config.json" ] && ok "tokenizer_config.json written beside it" \
  || fail "no tokenizer_config.json"
n=$(json_get "$OUT" 'len(j["model"]["vocab"]) + len(j["added_tokens"])' 2>/dev/null || echo 0)
[ "$n" = 2000 ] && ok "vocab + added tokens = 2000" || fail "vocab + added tokens = $n, want 2000"

TEXT="Permission is granted to copy, distribute and modify this software — ünïcödé 123."
ids=$("$R1" tokenize --tokenizer "$OUT" "$TEXT" 2>"$TMP/tk.err") || fail "tokenize failed: $(cat "$TMP/tk.err")"
count=$(wc -w <<<"$ids")
bytes=$(printf '%s' "$TEXT" | wc -c)
ok "encoded $bytes bytes into $count tokens: $ids"
[ "$count" -gt 0 ] && [ "$count" -lt "$bytes" ] || fail "expected fewer tokens than bytes"
decoded=$("$R1" tokenize --tokenizer "$OUT" --decode "$(tr ' ' ',' <<<"$ids")" 2>&1) \
  || fail "decode failed: $decoded"
[ "$decoded" = "$TEXT" ] && ok "decode(encode(text)) == text" \
  || fail "round trip: got '$decoded'"

# Same input, same file.
"$R1" tokenizer train --input "${INPUTS[@]}" --vocab-size 2000 --out "$TMP/tok2.json" \
  --quiet >/dev/null 2>&1 || fail "second training failed"
cmp -s "$OUT" "$TMP/tok2.json" && ok "training is deterministic" || fail "two trainings differ"

expect_error "missing input" "does not exist" \
  "$R1" tokenizer train --input "$TMP/nope.txt" --vocab-size 2000 --out "$TMP/x.json"
expect_error "vocab size too small" "too small" \
  "$R1" tokenizer train --input "${INPUTS[0]}" --vocab-size 100 --out "$TMP/x.json"
printf 'good text\n\xff\xfe bad\n' >"$TMP/bad.txt"
expect_error "non-UTF-8 input" "bad\.txt: invalid UTF-8 at byte offset 10" \
  "$R1" tokenizer train --input "$TMP/bad.txt" --vocab-size 2000 --out "$TMP/x.json"
expect_error "unwritable out" "does not exist" \
  "$R1" tokenizer train --input "${INPUTS[0]}" --vocab-size 2000 --out "$TMP/no/dir/x.json"
[ ! -e "$TMP/x.json" ] && ok "failed runs wrote nothing" || fail "a failed run wrote $TMP/x.json"

finish
