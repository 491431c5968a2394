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

first=$(golden_dirs | head -1)
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
