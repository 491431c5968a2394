#!/usr/bin/env bash
# shellcheck disable=SC2015  # "cond && ok ... || fail ...": ok() never fails
# r1 bench --json (every field the speed issue asks for, on a tiny model with tiny sizes, so it
# takes seconds) and r1 info's memory plan with --measure. Speeds are not judged here: only
# that each figure was measured (a finite number > 0).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

D="$TMP/nano"
run_ok "init v3-nano" "$TMP/init.out" "$R1" init --preset v3-nano --out "$D" --seed 5 || true
TINY=(--prompt 16 --gen 4 --reps 1 --batch-prompt 4 --batch-gen 2 --threads 2)

echo "== r1 bench --json on v3-nano"
if run_ok "bench --json" "$TMP/bench.json" "$R1" bench -m "$D" --json "${TINY[@]}"; then
  pos='lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0'
  for k in prefill_tokens_per_s decode_tokens_per_s bandwidth_gb_s peak_gflops decode_roofline_ratio \
           prefill_flops_ratio decode_weight_bytes_per_token decode_roofline_tokens_per_s prefill_gflops; do
    check_json "$TMP/bench.json" "($pos)(j.get('$k'))" "bench: $k is a number > 0"
  done
  check_json "$TMP/bench.json" \
    "len(j['bandwidth_probes_gb_s']) == 2 and all(($pos)(v) for v in j['bandwidth_probes_gb_s']) and j['bandwidth_gb_s'] == max(j['bandwidth_probes_gb_s'])" \
    "bench: bandwidth_gb_s is the higher of its two probes"
  check_json "$TMP/bench.json" "j.get('prefill_peak') in ('int8_dot', 'bf16_dot', 'amx_bf16', 'fp32_fma')" \
    "bench: prefill_peak names the instruction"
  check_json "$TMP/bench.json" "sorted(j['batch_decode_tokens_per_s']) == ['1', '32', '8']" \
    "bench: batch_decode_tokens_per_s has the keys '1', '8', '32'"
  check_json "$TMP/bench.json" "all(($pos)(v) for v in j['batch_decode_tokens_per_s'].values())" \
    "bench: every batch_decode_tokens_per_s is a number > 0"
  # Zero means "this CPU lacks the instruction", a valid answer.
  for k in peak_bf16_gflops peak_int8_gops peak_amx_bf16_gflops; do
    check_json "$TMP/bench.json" "isinstance(j.get('$k'), (int, float)) and j['$k'] >= 0" "bench: $k is a number >= 0"
  done
  check_json "$TMP/bench.json" "j.get('weight_format') == 'bf16'" "bench: weight_format of an init'd model is bf16"
  check_json "$TMP/bench.json" "0 <= j.get('weights_huge_page_fraction', -1) <= 1" \
    "bench: weights_huge_page_fraction is a share"
  check_json "$TMP/bench.json" "j.get('weights_memory') == 'file_mapping'" \
    "bench: the weights stay mapped from the files by default"
  check_json "$TMP/bench.json" "isinstance(j.get('cpu'), str) and j['cpu'] and isinstance(j.get('isa'), str) and j['isa']" \
    "bench: cpu and isa are named"
  check_json "$TMP/bench.json" "j.get('threads') == 2 and j.get('prompt_tokens') == 16 and j.get('generated_tokens') == 4" \
    "bench: threads, prompt_tokens and generated_tokens echo the flags"
fi

echo "== r1 bench --decode-after"
if run_ok "bench --decode-after 3" "$TMP/bench_after.json" "$R1" bench -m "$D" --json "${TINY[@]}" \
    --batch 1 --decode-after 3; then
  check_json "$TMP/bench_after.json" "j.get('decode_after_tokens') == 3 and j.get('prompt_tokens') == 16" \
    "bench: decode_after_tokens echoes --decode-after, the prefill keeps --prompt"
  check_json "$TMP/bench_after.json" "j.get('speculative_matches_plain') is True" \
    "bench: the speculative decode continues the same 3-token prompt as the plain one"
fi
check_json "$TMP/bench.json" "j.get('decode_after_tokens') == 16" "bench: decode continues the prefill's prompt by default"

echo "== r1 bench text output and --batch"
if run_ok "bench (text) --batch 2,3" "$TMP/bench.txt" "$R1" bench -m "$D" "${TINY[@]}" --batch 2,3; then
  for label in "read bandwidth" "FP32 FMA peak" "BF16 dot peak" "INT8 dot peak" "prefill" "decode"; do
    grep -q "^$label " "$TMP/bench.txt" && ok "bench text has a '$label' line" \
      || fail "bench text has no '$label' line: $(cat "$TMP/bench.txt")"
  done
  [ "$(grep -c '^batch decode ' "$TMP/bench.txt")" = 2 ] && ok "bench text has one 'batch decode' line per --batch size" \
    || fail "bench --batch 2,3 did not print two 'batch decode' lines: $(cat "$TMP/bench.txt")"
fi
expect_error "bench --batch 0" "--batch" "$R1" bench -m "$D" "${TINY[@]}" --batch 0
expect_error "bench --batch x" "--batch" "$R1" bench -m "$D" "${TINY[@]}" --batch 1,x

echo "== r1 info memory plan"
run_ok "info -m nano --json" "$TMP/info.json" "$R1" info -m "$D" --json || true
for k in resident_file_bytes resident_anon_bytes kv_cache_bytes_context kv_cache_bytes_full_context \
         scratch_bytes_decode scratch_bytes_prefill file_bytes; do
  check_json "$TMP/info.json" "isinstance(j.get('$k'), int) and j['$k'] > 0" "info: $k > 0"
done
check_json "$TMP/info.json" "j['scratch_bytes_prefill'] > j['scratch_bytes_decode']" "info: a prefill step needs more scratch than a decode step"
check_json "$TMP/info.json" "'measured' not in j" "info without --measure measures nothing"
run_ok "info --preset r1-distill-qwen-1.5b --json" "$TMP/q15.json" "$R1" info --preset r1-distill-qwen-1.5b --json || true
check_json "$TMP/q15.json" "j.get('kv_cache_bytes_full_context') == 57344 * 131072" \
  "r1-distill-qwen-1.5b: KV cache of the full 131072-token context is 57344 bytes/token"

echo "== r1 info --measure"
if run_ok "info -m nano --measure" "$TMP/measure.txt" "$R1" info -m "$D" --measure; then
  for label in VmRSS RssFile RssAnon HugePages; do
    grep -qE "^$label +[0-9.]+ [KMG]?i?B" "$TMP/measure.txt" && ok "info --measure prints a $label line" \
      || fail "info --measure printed no '$label <size>' line: $(cat "$TMP/measure.txt")"
  done
fi
if run_ok "info -m nano --measure --json" "$TMP/measure.json" "$R1" info -m "$D" --measure --json; then
  # The weights are mapped and were all read, so their pages are resident as file-backed memory.
  check_json "$TMP/measure.json" "j['measured']['vm_rss_bytes'] > 0 and j['measured']['rss_file_bytes'] >= j['weight_bytes']" \
    "info --measure: VmRSS > 0 and RssFile >= the weights' bytes"
  # Every weight page was read, so the weight files' mappings are resident whole (on Linux).
  check_json "$TMP/measure.json" "j['measured']['weights_mapped_bytes'] >= j['weight_bytes'] and 0 <= j['measured']['weights_huge_page_bytes'] <= j['measured']['weights_mapped_bytes']" \
    "info --measure: the weight mappings are resident, huge-page bytes within them"
fi
expect_error "info --preset --measure" "--measure" "$R1" info --preset v3-nano --measure

finish
