#!/usr/bin/env bash
# shellcheck disable=SC2015  # "cond && ok ... || fail ...": ok() never fails
# r1 init (random model folders from presets) and r1 info (on folders and presets).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

D="$TMP/nano"
echo "== r1 init --preset v3-nano --out $D --seed 3"
if run_ok "init v3-nano" "$TMP/init.out" "$R1" init --preset v3-nano --out "$D" --seed 3; then
  for f in config.json model.safetensors generation_config.json; do
    [ -s "$D/$f" ] && ok "init wrote $f" || fail "init did not write $f into $D"
  done
fi

echo "== r1 info -m $D --json"
run_ok "info -m nano --json" "$TMP/info.json" "$R1" info -m "$D" --json || true
check_json "$TMP/info.json" "isinstance(j.get('params_total'), int) and j['params_total'] > 0" "info: params_total > 0"
check_json "$TMP/info.json" "str(j.get('architecture', '')).startswith('DeepseekV3')" "info: architecture is DeepseekV3*"
check_json "$TMP/info.json" "j.get('kv_cache_bytes_per_token', 0) > 0" "info: kv_cache_bytes_per_token > 0"
check_json "$TMP/info.json" "0 < j.get('params_active', 0) <= j['params_total']" "info: 0 < params_active <= params_total"

echo "== info of the folder agrees with info of the preset"
run_ok "info --preset v3-nano --json" "$TMP/info_p.json" "$R1" info --preset v3-nano --json || true
if "$PY" - "$TMP/info.json" "$TMP/info_p.json" <<'EOPY'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
keys = ["architecture", "params_total", "params_active", "kv_cache_bytes_per_token", "layers", "vocab_size", "hidden_size"]
bad = [(k, a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)]
for k, x, y in bad:
    print("  folder %s=%r, preset %s=%r" % (k, x, k, y))
sys.exit(1 if bad else 0)
EOPY
then ok "info -m <init'd folder> and info --preset v3-nano agree on params/kv/shape"
else fail "info -m <init'd v3-nano folder> and info --preset v3-nano disagree (see above)"; fi

echo "== r1 generate on the init'd model"
if run_ok "generate on nano" "$TMP/gen.json" "$R1" generate -m "$D" --prompt-ids 1,2,3 -n 5 --json --ignore-eos; then
  check_json "$TMP/gen.json" "len(j['tokens']) == 5 and all(0 <= t < $(json_get "$D/config.json" 'j["vocab_size"]') for t in j['tokens'])" \
    "generate -n 5 --ignore-eos on the init'd model gives 5 in-vocabulary tokens"
fi

echo "== same seed, same bytes; other seed, other bytes"
run_ok "init v3-nano seed 3 again" "$TMP/init2.out" "$R1" init --preset v3-nano --out "$TMP/nano2" --seed 3 || true
if cmp -s "$D/model.safetensors" "$TMP/nano2/model.safetensors"; then ok "same seed -> identical model.safetensors"
else fail "init --seed 3 twice gave different model.safetensors"; fi
cmp -s "$D/config.json" "$TMP/nano2/config.json" && ok "same seed -> identical config.json" || fail "init --seed 3 twice gave different config.json"
run_ok "init v3-nano seed 4" "$TMP/init3.out" "$R1" init --preset v3-nano --out "$TMP/nano3" --seed 4 || true
if cmp -s "$D/model.safetensors" "$TMP/nano3/model.safetensors"; then fail "init --seed 3 and --seed 4 gave identical weights"
else ok "different seed -> different model.safetensors"; fi

echo "== init refuses to overwrite a model folder unless --force"
expect_error "init into a folder with a model" "already" "$R1" init --preset v3-nano --out "$D" --seed 7
cmp -s "$D/model.safetensors" "$TMP/nano2/model.safetensors" && ok "refused init left the weights untouched" \
  || fail "refused init modified $D/model.safetensors"
mkdir -p "$TMP/cfgonly"
echo '{"architectures": ["LlamaForCausalLM"]}' >"$TMP/cfgonly/config.json"
expect_error "init into a folder with only a config.json" "config.json" "$R1" init --preset v3-nano --out "$TMP/cfgonly"
if run_ok "init --force over an existing model" "$TMP/init4.out" "$R1" init --preset v3-nano --out "$D" --seed 7 --force; then
  if cmp -s "$D/model.safetensors" "$TMP/nano2/model.safetensors"; then fail "init --force --seed 7 did not replace the weights"
  else ok "init --force replaced the weights"; fi
fi

echo "== info on presets (no weights read)"
run_ok "info --preset deepseek-v3 --json" "$TMP/v3.json" "$R1" info --preset deepseek-v3 --json || true
check_json "$TMP/v3.json" "j.get('params_total') == 671026419200" "deepseek-v3: params_total == 671026419200"
check_json "$TMP/v3.json" "j.get('kv_cache_bytes_per_token_bf16') == 70272" "deepseek-v3: kv_cache_bytes_per_token_bf16 == 70272"
check_json "$TMP/v3.json" "j.get('architecture') == 'DeepseekV3ForCausalLM' and j.get('layers') == 61" "deepseek-v3: DeepseekV3ForCausalLM, 61 layers"
run_ok "info --preset deepseek-v2-lite --json" "$TMP/v2l.json" "$R1" info --preset deepseek-v2-lite --json || true
check_json "$TMP/v2l.json" "j.get('architecture') == 'DeepseekV2ForCausalLM' and j.get('params_total', 0) > 0 and j.get('kv_cache_bytes_per_token', 0) > 0" \
  "deepseek-v2-lite: DeepseekV2ForCausalLM with params and KV bytes"
run_ok "info --preset deepseek-v2-lite (text)" "$TMP/v2l.txt" "$R1" info --preset deepseek-v2-lite || true
[ -s "$TMP/v2l.txt" ] && ok "info text output is not empty" || fail "info --preset deepseek-v2-lite printed nothing"

echo "== unknown preset"
expect_error "info --preset no-such-model" "no-such-model" "$R1" info --preset no-such-model
for valid in deepseek-v3 v3-nano deepseek-v2-lite; do
  grep -qF "$valid" "$TMP/ee.err" && ok "unknown-preset error lists '$valid'" || fail "unknown-preset error does not list the valid preset '$valid': $(cat "$TMP/ee.err")"
done
expect_error "init --preset no-such-model" "no-such-model" "$R1" init --preset no-such-model --out "$TMP/bad"
grep -qF "v3-nano" "$TMP/ee.err" && ok "init unknown-preset error lists valid names" || fail "init unknown-preset error does not list valid presets: $(cat "$TMP/ee.err")"
[ ! -e "$TMP/bad/model.safetensors" ] && ok "init with an unknown preset wrote no weights" || fail "init with an unknown preset wrote $TMP/bad/model.safetensors"

# r1 init --preset r1-distill-qwen-1.5b writes ~3.5 GB: too big for a quick test, skipped.
finish
