#!/usr/bin/env bash
# shellcheck disable=SC2015  # "cond && ok ... || fail ...": ok() never fails
# r1 quantize through the binary: every golden folder in every format loads in `generate` and
# `info`; lossless re-encodings (BF16 -> BF16, 128x128 FP8 -> FP8) keep the golden greedy tokens;
# bad targets and occupied outputs are refused with a useful message.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

for dir in $(golden_dirs); do
  name=$(basename "$dir")
  prompt=$($ST ids-csv "$dir/golden.safetensors" greedy.prompt)
  want=$($ST ids-csv "$dir/golden.safetensors" greedy.output)
  n=$(echo "$want" | tr ',' '\n' | wc -l)
  src_dtype=$(json_get "$dir/model/config.json" '"fp8" if (j.get("quantization_config") or {}).get("quant_method") == "fp8" else "bf16"')
  for to in q8 q4 fp8 bf16; do
    out="$TMP/$name-$to"
    if ! "$R1" quantize -m "$dir/model" --to "$to" -o "$out" >"$TMP/q.out" 2>"$TMP/q.err"; then
      fail "$name -> $to: r1 quantize failed: $(tail -c 400 "$TMP/q.err")"
      continue
    fi
    grep -q "encoded" "$TMP/q.out" && ok "$name -> $to: quantized ($(head -1 "$TMP/q.out" | sed 's/.*(\(.*\)): //'))" ||
      fail "$name -> $to: no summary: $(cat "$TMP/q.out")"
    if ! "$R1" generate -m "$out" --prompt-ids "$prompt" -n "$n" --ignore-eos --json >"$TMP/g.json" 2>"$TMP/g.err"; then
      fail "$name -> $to: generate failed: $(tail -c 400 "$TMP/g.err")"
      continue
    fi
    got=$(json_get "$TMP/g.json" '",".join(str(t) for t in j["tokens"])')
    count=$(echo "$got" | tr ',' '\n' | wc -l)
    [ "$count" -eq "$n" ] && ok "$name -> $to: generated $n tokens" || fail "$name -> $to: got $count tokens"
    if [ "$to" = "$src_dtype" ]; then
      [ "$got" = "$want" ] && ok "$name -> $to: lossless, golden greedy tokens" ||
        fail "$name -> $to: re-encoding in the source format changed greedy tokens: $got vs $want"
    fi
    "$R1" info -m "$out" >"$TMP/i.out" 2>&1 && ok "$name -> $to: r1 info loads it" || fail "$name -> $to: r1 info: $(tail -c 300 "$TMP/i.out")"
    case "$to" in
      q8) grep -q "quantization   q8_0" "$TMP/i.out" && grep -q "dtype Q8_0" "$TMP/i.out" && ok "info names Q8_0" || fail "info: $(cat "$TMP/i.out")" ;;
      q4) grep -q "quantization   q4_0" "$TMP/i.out" && grep -q "dtype Q4_0" "$TMP/i.out" && ok "info names Q4_0" || fail "info: $(cat "$TMP/i.out")" ;;
    esac
  done
done

# r1 perplexity on a model with a real tokenizer, before and after quantization.
text="$E2E_DIR/../../README.md"
mkdir -p "$TMP/tok"
if "$R1" tokenizer train --input "$text" --vocab-size 400 --out "$TMP/tok/tokenizer.json" >/dev/null 2>&1 &&
  "$R1" init --preset v3-nano --tokenizer "$TMP/tok" --out "$TMP/nano" --seed 2 >/dev/null 2>&1 &&
  "$R1" quantize -m "$TMP/nano" --to q8 -o "$TMP/nano-q8" >/dev/null 2>&1; then
  ok "tokenizer, v3-nano and its q8 copy"
  for m in nano nano-q8; do
    if "$R1" perplexity -m "$TMP/$m" -f "$text" --context 64 --chunks 6 --json >"$TMP/$m.ppl.json" 2>"$TMP/ppl.err"; then
      check="j['windows'] == 6 and j['tokens_scored'] == 6 * 63 and 1 < j['perplexity'] < 10000 and abs(j['perplexity'] - __import__('math').exp(j['mean_nll'])) < 1e-6 * j['perplexity']"
      [ "$(json_get "$TMP/$m.ppl.json" "$check")" = "true" ] && ok "$m: perplexity $(json_get "$TMP/$m.ppl.json" 'round(j["perplexity"], 3)')" ||
        fail "$m: perplexity JSON: $(cat "$TMP/$m.ppl.json")"
    else
      fail "$m: r1 perplexity failed: $(tail -c 400 "$TMP/ppl.err")"
    fi
  done
  # A random model is near-uniform: Q8 moves its perplexity by well under a percent.
  close=$(json_get "$TMP/nano-q8.ppl.json" "abs(j['perplexity'] / $(json_get "$TMP/nano.ppl.json" 'j["perplexity"]') - 1) < 0.01")
  [ "$close" = "true" ] && ok "q8 perplexity within 1% of bf16" || fail "q8 perplexity far from bf16"
else
  fail "could not build the perplexity test model"
fi

first=$(golden_dirs | head -1)
# --q4-head: no Q8 matrix left (the default q4 keeps its head in q8), and the folder loads.
"$R1" info -m "$TMP/$(basename "$first")-q4" >"$TMP/i.out" 2>&1
grep -q "dtype Q8_0" "$TMP/i.out" && ok "default q4 keeps the head in Q8_0" || fail "q4 head: $(cat "$TMP/i.out")"
if "$R1" quantize -m "$first/model" --to q4 --q4-head -o "$TMP/q4head" >/dev/null 2>"$TMP/e.out" &&
  "$R1" info -m "$TMP/q4head" >"$TMP/i.out" 2>&1; then
  ! grep -q "dtype Q8_0" "$TMP/i.out" && grep -q "dtype Q4_0" "$TMP/i.out" && ok "--q4-head: head in Q4_0 too" ||
    fail "--q4-head: $(cat "$TMP/i.out")"
else
  fail "--q4-head: $(cat "$TMP/e.out")"
fi
rc=0
"$R1" quantize -m "$first/model" --to q8 --q4-head -o "$TMP/bad" >"$TMP/e.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && grep -q "q4" "$TMP/e.out" && ok "--q4-head without --to q4 refused" || fail "--q4-head with q8: rc $rc: $(cat "$TMP/e.out")"
rc=0
"$R1" quantize -m "$first/model" --to q3 -o "$TMP/bad" >"$TMP/e.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && grep -q "q8" "$TMP/e.out" && ok "--to q3 refused, naming the choices" || fail "--to q3: rc $rc: $(cat "$TMP/e.out")"
rc=0
"$R1" quantize -m "$first/model" --to q8 -o "$TMP/$(basename "$first")-q8" >"$TMP/e.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && grep -q -- "--force" "$TMP/e.out" && ok "occupied output refused, naming --force" || fail "occupied output: rc $rc: $(cat "$TMP/e.out")"
"$R1" quantize -m "$first/model" --to q8 -o "$TMP/$(basename "$first")-q8" --force >/dev/null 2>&1 && ok "--force replaces it" || fail "--force failed"
rc=0
"$R1" quantize -m "$first/model" --to q8 -o "$first/model" >"$TMP/e.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && grep -q "input folder" "$TMP/e.out" && ok "writing into the input refused" || fail "output = input: rc $rc: $(cat "$TMP/e.out")"
finish
