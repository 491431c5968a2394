#!/usr/bin/env bash
# shellcheck disable=SC2015  # "cond && ok ... || fail ...": ok() never fails
# r1 bench's MTP speculative decode measurement: on an `r1 init --preset v3-nano` folder (MTP
# weights) --json has the speculative_* fields with sane values and the speculative tokens equal
# the plain decode's; the text output has a 'speculative' line; --no-speculative (text) and a
# model without MTP weights (a golden folder, --json) skip it and say why. Random weights accept almost no
# drafts, so the rate and speed-up are only range-checked. Tiny sizes: a few seconds.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

D="$TMP/nano"
run_ok "init v3-nano" "$TMP/init.out" "$R1" init --preset v3-nano --out "$D" --seed 5 || true
TINY=(--prompt 16 --gen 24 --reps 1 --batch 1 --batch-prompt 4 --batch-gen 2 --threads 2)
SPEC_KEYS="speculative_decode_tokens_per_s speculative_acceptance_rate speculative_tokens_per_step
  speculative_speedup speculative_matches_plain speculative_draft_tokens speculative_accepted_tokens
  speculative_main_steps"

echo "== r1 bench --json on v3-nano (MTP weights)"
if run_ok "bench --json" "$TMP/bench.json" "$R1" bench -m "$D" --json "${TINY[@]}"; then
  num='lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)'
  for k in $SPEC_KEYS; do
    check_json "$TMP/bench.json" "'$k' in j" "bench: has $k"
  done
  check_json "$TMP/bench.json" "'speculative_skipped' not in j" "bench: no speculative_skipped"
  check_json "$TMP/bench.json" "($num)(j['speculative_decode_tokens_per_s']) and j['speculative_decode_tokens_per_s'] > 0" \
    "bench: speculative_decode_tokens_per_s > 0"
  check_json "$TMP/bench.json" "($num)(j['speculative_acceptance_rate']) and 0 <= j['speculative_acceptance_rate'] <= 1" \
    "bench: 0 <= speculative_acceptance_rate <= 1"
  check_json "$TMP/bench.json" "($num)(j['speculative_tokens_per_step']) and 1 <= j['speculative_tokens_per_step'] <= 2" \
    "bench: 1 <= speculative_tokens_per_step <= 2"
  check_json "$TMP/bench.json" "($num)(j['speculative_speedup']) and j['speculative_speedup'] > 0" \
    "bench: speculative_speedup > 0"
  check_json "$TMP/bench.json" \
    "abs(j['speculative_speedup'] - j['speculative_decode_tokens_per_s'] / j['decode_tokens_per_s']) <= 1e-9 * j['speculative_speedup']" \
    "bench: speculative_speedup = speculative / plain decode tokens/s"
  check_json "$TMP/bench.json" "j['speculative_matches_plain'] is True" \
    "bench: speculative greedy tokens equal the plain decode's"
  # 24 decoded tokens: each main step yields 1 token, or 2 with an accepted draft.
  check_json "$TMP/bench.json" \
    "0 <= j['speculative_accepted_tokens'] <= j['speculative_draft_tokens'] <= j['speculative_main_steps'] and j['speculative_main_steps'] + j['speculative_accepted_tokens'] == 24" \
    "bench: draft counts add up to the 24 decoded tokens"
  check_json "$TMP/bench.json" \
    "abs(j['speculative_tokens_per_step'] - 24 / j['speculative_main_steps']) < 1e-9" \
    "bench: speculative_tokens_per_step = 24 decoded tokens / main steps"
fi

echo "== r1 bench text output"
if run_ok "bench (text)" "$TMP/bench.txt" "$R1" bench -m "$D" "${TINY[@]}"; then
  grep -qE '^speculative +24 tokens: [0-9.]+ tok/s = x[0-9.]+ plain decode; [0-9]+/[0-9]+ drafts accepted .*same tokens as plain decode$' \
    "$TMP/bench.txt" && ok "bench text has a 'speculative' line with the same tokens" \
    || fail "bench text has no matching 'speculative' line: $(cat "$TMP/bench.txt")"
fi

echo "== --no-speculative (text)"
if run_ok "bench --no-speculative" "$TMP/nospec.txt" "$R1" bench -m "$D" "${TINY[@]}" --no-speculative; then
  grep -qE '^speculative +skipped: --no-speculative$' "$TMP/nospec.txt" \
    && ok "--no-speculative: text says it was skipped" \
    || fail "--no-speculative: no 'speculative  skipped: --no-speculative' line: $(cat "$TMP/nospec.txt")"
  [ "$(grep -c '^speculative ' "$TMP/nospec.txt")" = 1 ] && ok "--no-speculative: no speculative figures" \
    || fail "--no-speculative: more than one speculative line: $(cat "$TMP/nospec.txt")"
  grep -qE '^decode +24 tokens after [0-9]+: [0-9.]+ tok/s' "$TMP/nospec.txt" && ok "--no-speculative: plain decode still measured" \
    || fail "--no-speculative: no decode line: $(cat "$TMP/nospec.txt")"
fi

V3TINY="$GOLDEN/deepseek-v3-tiny/model"
if [ -d "$V3TINY" ]; then
  echo "== model without MTP weights"
  if run_ok "bench --json (no MTP)" "$TMP/nomtp.json" "$R1" bench -m "$V3TINY" --json "${TINY[@]}"; then
    check_json "$TMP/nomtp.json" "not any(k.startswith('speculative_') and k != 'speculative_skipped' for k in j)" \
      "no MTP: no speculative_* figures"
    check_json "$TMP/nomtp.json" "'MTP' in j.get('speculative_skipped', '')" \
      "no MTP: speculative_skipped gives the reason"
  fi
fi

finish
