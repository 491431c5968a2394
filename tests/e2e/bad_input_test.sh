#!/usr/bin/env bash
# Broken model folders, inputs and flags: every case must fail cleanly (exit status 1,
# not a crash or signal) with a message on stderr that names the offending thing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

SRC="$GOLDEN/qwen2-tiny/model"
SHARDED="$GOLDEN/deepseek-v3-tiny/model"
[ -d "$SRC" ] || { echo "FAIL: $SRC missing" >&2; exit 1; }
[ -d "$SHARDED" ] || { echo "FAIL: $SHARDED missing" >&2; exit 1; }

# copy_model SRC NAME: a writable copy of a model folder under $TMP; prints its path.
copy_model() {
  local dst="$TMP/$2"
  rm -rf "$dst"
  cp -r "$1" "$dst"
  chmod -R u+w "$dst"
  echo "$dst"
}

# A valid input for forward.
$ST write-ids "$TMP/ok.safetensors" input_ids I64 1x4 3,4,5,6
IN="$TMP/ok.safetensors"
OUT="$TMP/out.safetensors"
fwd() { "$R1" forward -m "$1" --input "$IN" -o "$OUT"; }

# Sanity: the untouched copy works, so failures below come from the damage.
good=$(copy_model "$SRC" good)
if fwd "$good" >/dev/null 2>"$TMP/good.err"; then ok "untouched copy of qwen2-tiny runs"
else fail "untouched copy of qwen2-tiny fails: $(cat "$TMP/good.err")"; fi

echo "== (a) truncated model.safetensors"
m=$(copy_model "$SRC" trunc)
size=$(stat -c %s "$m/model.safetensors")
truncate -s $((size / 2)) "$m/model.safetensors"
expect_error "forward, truncated model.safetensors" "model\.safetensors" fwd "$m"
expect_error "info, truncated model.safetensors" "model\.safetensors" "$R1" info -m "$m"
expect_error "generate, truncated model.safetensors" "model\.safetensors" "$R1" generate -m "$m" --prompt-ids 1,2 -n 2
m=$(copy_model "$SRC" trunc4)
truncate -s 4 "$m/model.safetensors"
expect_error "forward, 4-byte model.safetensors" "model\.safetensors" fwd "$m"
m=$(copy_model "$SRC" empty)
: >"$m/model.safetensors"
expect_error "forward, empty model.safetensors" "model\.safetensors" fwd "$m"

echo "== (b) corrupt safetensors header"
m=$(copy_model "$SRC" badheader)
"$PY" - "$m/model.safetensors" <<'EOPY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(8 + 40)
    f.write(b"}}}}{{{{")   # breaks the JSON inside the header, length unchanged
EOPY
expect_error "forward, header JSON corrupted" "model\.safetensors" fwd "$m"
stderr_has "corrupt header" "header|json"
m=$(copy_model "$SRC" badlen)
"$PY" - "$m/model.safetensors" <<'EOPY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.write(struct.pack("<Q", 1 << 40))   # header length far beyond the file
EOPY
expect_error "forward, header length 2^40" "model\.safetensors" fwd "$m"

echo "== (c) tensor shape mismatching config.json"
# A 2-D, non-square weight of layer 0, its shape transposed (same byte size).
read -r wname wshape <<<"$("$PY" - "$SRC/model.safetensors" "$E2E_DIR" <<'EOPY'
import sys
sys.path.insert(0, sys.argv[2]); import st
hdr, _ = st.read_header(sys.argv[1])
for k, v in hdr.items():
    if k.startswith("model.layers.0.") and len(v["shape"]) == 2 and v["shape"][0] != v["shape"][1]:
        print(k, "%dx%d" % (v["shape"][1], v["shape"][0])); break
EOPY
)"
m=$(copy_model "$SRC" shape)
$ST reshape "$SRC/model.safetensors" "$m/model.safetensors" "$wname" "$wshape"
expect_error "forward, $wname stored as ${wshape/x/ x }" "$(re_lit "$wname")" fwd "$m"
m=$(copy_model "$SRC" sizemismatch)
"$PY" - "$SRC/model.safetensors" "$m/model.safetensors" "$E2E_DIR" <<'EOPY'
import sys
sys.path.insert(0, sys.argv[3]); import st
raw, meta = st.read_raw(sys.argv[1])
def edit(h):
    h["model.layers.0.input_layernorm.weight"]["shape"] = [2 * raw["model.layers.0.input_layernorm.weight"][1][0]]
st.write_raw(sys.argv[2], raw, meta, edit)
EOPY
expect_error "forward, shape needing more bytes than data_offsets hold" "model\.layers\.0\.input_layernorm\.weight" fwd "$m"
m=$(copy_model "$SRC" baddtype)
"$PY" - "$SRC/model.safetensors" "$m/model.safetensors" "$E2E_DIR" <<'EOPY'
import sys
sys.path.insert(0, sys.argv[3]); import st
raw, meta = st.read_raw(sys.argv[1])
def edit(h):
    h["model.layers.0.input_layernorm.weight"]["dtype"] = "Q9_WAT"
st.write_raw(sys.argv[2], raw, meta, edit)
EOPY
expect_error "forward, unknown dtype Q9_WAT" "Q9_WAT" fwd "$m"

echo "== (d) missing tensor"
drop=model.layers.1.self_attn.q_proj.weight
m=$(copy_model "$SRC" missing)
$ST drop "$SRC/model.safetensors" "$m/model.safetensors" "$drop"
expect_error "forward, $drop deleted" "$(re_lit "$drop")" fwd "$m"

echo "== (e) unknown architecture"
m=$(copy_model "$SRC" arch)
"$PY" -c 'import json,sys; p=sys.argv[1]; c=json.load(open(p)); c["architectures"]=["FooBarForCausalLM"]; json.dump(c, open(p,"w"))' "$m/config.json"
expect_error "forward, architectures [FooBarForCausalLM]" "FooBarForCausalLM" fwd "$m"
expect_error "info, architectures [FooBarForCausalLM]" "FooBarForCausalLM" "$R1" info -m "$m"

echo "== (f) missing required config field"
m=$(copy_model "$SRC" nofield)
"$PY" -c 'import json,sys; p=sys.argv[1]; c=json.load(open(p)); del c["hidden_size"]; json.dump(c, open(p,"w"))' "$m/config.json"
expect_error "forward, config.json without hidden_size" "hidden_size" fwd "$m"

echo "== (g) config.json is not JSON"
m=$(copy_model "$SRC" notjson)
echo 'this is { not json' >"$m/config.json"
expect_error "forward, config.json not JSON" "config\.json" fwd "$m"
stderr_has "config.json not JSON" "json"

echo "== (h) no such directory / not a model folder"
expect_error "forward, no such directory" "$(re_lit "$TMP/no/such/dir")" "$R1" forward -m "$TMP/no/such/dir" --input "$IN" -o "$OUT"
expect_error "info, no such directory" "$(re_lit "$TMP/no/such/dir")" "$R1" info -m "$TMP/no/such/dir"
# info -m also takes preset names, but a path that exists as neither must still be reported
# as a missing folder, not only as an "unknown preset".
stderr_has "info -m <missing path>" "no such (file or )?directory|not a model folder|does not exist"
mkdir -p "$TMP/emptydir"
expect_error "forward, folder without config.json" "config\.json" "$R1" forward -m "$TMP/emptydir" --input "$IN" -o "$OUT"
m=$(copy_model "$SRC" noweights)
rm "$m/model.safetensors"
expect_error "forward, folder without safetensors" "safetensors" fwd "$m"

echo "== (i) sharded checkpoint"
m=$(copy_model "$SHARDED" shard)
shards=("$m"/model-*.safetensors)
[ -e "${shards[0]}" ] || { echo "FAIL: no model-*.safetensors shards in $SHARDED" >&2; exit 1; }
shard=$(basename "${shards[${#shards[@]}-1]}")
rm "$m/$shard"
expect_error "forward, shard $shard deleted" "$(re_lit "$shard")" fwd "$m"
m=$(copy_model "$SHARDED" shardtrunc)
shards=("$m"/model-*.safetensors)
shard=$(basename "${shards[0]}")
truncate -s $(($(stat -c %s "$m/$shard") / 2)) "$m/$shard"
expect_error "forward, shard $shard truncated" "$(re_lit "$shard")" fwd "$m"
m=$(copy_model "$SHARDED" badindex)
echo '{"weight_map": ' >"$m/model.safetensors.index.json"
expect_error "forward, index not JSON" "model\.safetensors\.index\.json" fwd "$m"

echo "== (j) forward inputs"
M="$SRC"
vocab=$(json_get "$M/config.json" 'j["vocab_size"]')
$ST write-ids "$TMP/noids.safetensors" tokens I64 1x3 1,2,3
expect_error "forward, input without input_ids" "input_ids" "$R1" forward -m "$M" --input "$TMP/noids.safetensors" -o "$OUT"
$ST write-ids "$TMP/i32.safetensors" input_ids I32 1x3 1,2,3
expect_error "forward, input_ids I32" "I32|I64" "$R1" forward -m "$M" --input "$TMP/i32.safetensors" -o "$OUT"
stderr_has "forward I32 input" "input_ids"
$ST write-ids "$TMP/oov.safetensors" input_ids I64 1x3 "1,$vocab,3"
expect_error "forward, input id $vocab (= vocab size)" "$vocab" "$R1" forward -m "$M" --input "$TMP/oov.safetensors" -o "$OUT"
stderr_has "forward out-of-vocab id" "vocab"
$ST write-ids "$TMP/neg.safetensors" input_ids I64 1x3 1,-1,3
expect_error "forward, input id -1" "vocab" "$R1" forward -m "$M" --input "$TMP/neg.safetensors" -o "$OUT"
$ST write-ids "$TMP/1d.safetensors" input_ids I64 3 1,2,3
expect_error "forward, input_ids 1-D" "input_ids" "$R1" forward -m "$M" --input "$TMP/1d.safetensors" -o "$OUT"
$ST write-ids "$TMP/t0.safetensors" input_ids I64 1x0 ""
expect_error "forward, input_ids [1, 0]" "input_ids" "$R1" forward -m "$M" --input "$TMP/t0.safetensors" -o "$OUT"
expect_error "forward, no such input file" "$(re_lit "$TMP/nosuch.safetensors")" "$R1" forward -m "$M" --input "$TMP/nosuch.safetensors" -o "$OUT"
echo 'garbage' >"$TMP/garbage.safetensors"
expect_error "forward, input file not safetensors" "garbage\.safetensors" "$R1" forward -m "$M" --input "$TMP/garbage.safetensors" -o "$OUT"
expect_error "forward, output in a missing folder" "$(re_lit "$TMP/nodir")" "$R1" forward -m "$M" --input "$IN" -o "$TMP/nodir/out.safetensors"

echo "== (k) generate arguments"
expect_error "generate --prompt-ids 1,x" "prompt-ids" "$R1" generate -m "$M" --prompt-ids "1,x" -n 2
expect_error "generate --prompt-ids 1,$vocab" "$vocab" "$R1" generate -m "$M" --prompt-ids "1,$vocab" -n 2
expect_error "generate --prompt-ids 1,-5" "prompt-ids" "$R1" generate -m "$M" --prompt-ids "1,-5" -n 2
expect_error "generate --prompt-ids ''" "prompt-ids" "$R1" generate -m "$M" --prompt-ids "" -n 2
expect_error "generate --temperature -1" "temperature" "$R1" generate -m "$M" --prompt-ids 1,2 -n 2 --temperature -1
expect_error "generate --temperature nan" "temperature" "$R1" generate -m "$M" --prompt-ids 1,2 -n 2 --temperature nan
expect_error "generate --top-p 0" "top[-_]p" "$R1" generate -m "$M" --prompt-ids 1,2 -n 2 --top-p 0
expect_error "generate --top-p 1.5" "top[-_]p" "$R1" generate -m "$M" --prompt-ids 1,2 -n 2 --top-p 1.5
expect_error "generate --top-k -1" "top[-_]k" "$R1" generate -m "$M" --prompt-ids 1,2 -n 2 --top-k -1
expect_error "generate --min-p 2" "min[-_]p" "$R1" generate -m "$M" --prompt-ids 1,2 -n 2 --min-p 2
expect_error "generate --repeat-penalty 0" "repe" "$R1" generate -m "$M" --prompt-ids 1,2 -n 2 --repeat-penalty 0

echo "== command-line usage errors (CLI parser: any status 1..127, no crash, option named)"
usage_error() {
  local desc=$1 want=$2
  shift 2
  local rc=0
  "$@" >"$TMP/ue.out" 2>"$TMP/ue.err" || rc=$?
  local err
  err=$(head -c 400 "$TMP/ue.err" | tr '\n' ' ')
  if [ "$rc" -eq 0 ] || [ "$rc" -ge 128 ]; then fail "$desc: expected a usage error, got exit $rc (stderr: $err)"
  elif ! grep -qiE -- "$want" "$TMP/ue.err"; then fail "$desc: exit $rc but stderr does not mention '$want' (stderr: $err)"
  else ok "$desc -> exit $rc, stderr: $err"; fi
}
usage_error "forward without -m" "model" "$R1" forward --input "$IN" -o "$OUT"
usage_error "generate -n -1" "n-predict|-n" "$R1" generate -m "$M" --prompt-ids 1 -n -1
usage_error "forward --mla foo" "mla" "$R1" forward -m "$M" --input "$IN" -o "$OUT" --mla foo
usage_error "no sub-command" "subcommand|command" "$R1"

finish
