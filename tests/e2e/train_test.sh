#!/usr/bin/env bash
# r1 train end to end: the golden PyTorch losses through the command line, 10 steps straight equal
# 5 + resume + 5 bit for bit, text pretraining and SFT with a trained tokenizer whose checkpoint
# r1 generate loads, r1 plot on the log, and the bad inputs users hit first (each refused before
# any work, with nothing written).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

if "$R1" train --help | grep -q "Example:"; then ok "train --help has an example"
else fail "train --help has no example"; fi

# ---- Golden: the 5 AdamW losses of every folder with train.* ------------------------------------
for d in "$GOLDEN"/*/; do
  d=${d%/}
  [ -f "$d/train.safetensors" ] || continue
  name=$(basename "$d")
  A="$d/train.json"
  args=(--init "$d/model" --data "$d/train.safetensors" --no-shuffle --batch 4
        --steps "$(json_get "$A" 'len(j["losses"])')" --schedule constant --clip 0
        --lr "$(json_get "$A" 'j["adamw"]["lr"]')" --beta1 "$(json_get "$A" 'j["adamw"]["beta1"]')"
        --beta2 "$(json_get "$A" 'j["adamw"]["beta2"]')" --eps "$(json_get "$A" 'j["adamw"]["eps"]')"
        --weight-decay "$(json_get "$A" 'j["adamw"]["weight_decay"]')"
        --bias-update-speed "$(json_get "$A" 'j["balance_bias_update"]["gamma"]')"
        --out "$TMP/g-$name" --log "$TMP/g-$name.jsonl" -q)
  if "$R1" train "${args[@]}"; then
    if "$PY" - "$A" "$TMP/g-$name.jsonl" <<'PY'
import json, sys
ref = json.load(open(sys.argv[1]))["losses"]
got = [json.loads(l)["loss"] for l in open(sys.argv[2]) if "loss" in json.loads(l)]
assert len(got) == len(ref), (got, ref)
for i, (g, r) in enumerate(zip(got, ref)):
    tol = (1e-5 if i == 0 else 1e-3) * r
    assert abs(g - r) <= tol, f"step {i+1}: {g} vs {r}"
print("  losses", " ".join(f"{g:.6f}" for g in got))
PY
    then ok "$name: r1 train losses match PyTorch's 5 AdamW steps"
    else fail "$name: losses differ from train.json"; fi
  else
    fail "$name: r1 train failed"
  fi
done

# ---- A tokenizer and a tiny V3 model for text data ----------------------------------------------
CORPUS="$TMP/corpus.txt"
"$PY" - "$CORPUS" <<'PY'
import random, sys
random.seed(3)
subjects = "the cat|a dog|the old man|my sister|the teacher|a small bird".split("|")
verbs = "sees|likes|finds|reads|wants|makes".split("|")
objects = "the ball|a book|the red house|some bread|the river|a letter".split("|")
with open(sys.argv[1], "w") as f:
    for _ in range(6000):
        f.write(f"{random.choice(subjects)} {random.choice(verbs)} {random.choice(objects)}.\n")
PY
mkdir -p "$TMP/tok"
"$R1" tokenizer train --input "$CORPUS" --vocab-size 300 --out "$TMP/tok/tokenizer.json" --quiet
"$R1" init --preset v3-nano --tokenizer "$TMP/tok" --out "$TMP/init" --seed 1 >/dev/null 2>&1
MTP_LAYERS=$(json_get "$TMP/init/config.json" 'j.get("num_nextn_predict_layers", 0)')

TRAIN=(--init "$TMP/init" --data "$CORPUS" --seq-len 32 --batch 8 --lr 3e-3 --warmup 5 --seed 7)
if "$R1" train "${TRAIN[@]}" --steps 60 --eval-every 20 --out "$TMP/text" --log "$TMP/text.jsonl" \
     2>"$TMP/text.err"; then
  if "$PY" - "$TMP/text.jsonl" "$MTP_LAYERS" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
steps = [l for l in lines if "loss" in l]
evals = [l for l in lines if "eval_loss" in l]
assert len(steps) == 60, len(steps)
for key in ("step", "loss", "lr", "grad_norm", "tokens_per_s", "max_vio"):
    assert key in steps[0], key
if int(sys.argv[2]) > 0:
    assert "mtp_loss" in steps[0], "MTP loss not logged"
assert [e["step"] for e in evals] == [20, 40, 60], evals
first, last = steps[0]["loss"], sum(s["loss"] for s in steps[-5:]) / 5
assert last < first - 1.0, (first, last)
assert evals[-1]["eval_loss"] < evals[0]["eval_loss"], evals
print(f"  loss {first:.3f} -> {last:.3f}, eval {evals[0]['eval_loss']:.3f} -> {evals[-1]['eval_loss']:.3f}")
PY
  then ok "text pretraining: loss and held-out loss fall, log has the fields"
  else fail "text pretraining log"; fi
  if grep -q "step 60/60" "$TMP/text.err"; then ok "progress lines"; else fail "no progress line"; fi
  if "$R1" generate -m "$TMP/text" -p "the cat" --raw -n 8 --temperature 0 >"$TMP/gen.txt" 2>/dev/null \
     && [ -s "$TMP/gen.txt" ]; then ok "r1 generate loads the checkpoint: $(head -c 80 "$TMP/gen.txt")"
  else fail "r1 generate on the trained checkpoint"; fi
  if "$R1" plot "$TMP/text.jsonl" -o "$TMP/text.svg" 2>/dev/null && grep -q "<svg" "$TMP/text.svg"; then
    ok "r1 plot draws the log"
  else fail "r1 plot on the training log"; fi
else
  fail "text pretraining run failed: $(tail -c 600 "$TMP/text.err")"
fi

# ---- Resume: 10 steps straight == 5, stop, resume, 5 (cosine schedule, shuffled data) -----------
R=(--data "$CORPUS" --seq-len 16 --batch 4 --lr 2e-3 --warmup 2 --schedule cosine --seed 5 -q)
"$R1" train --init "$TMP/init" "${R[@]}" --steps 10 --out "$TMP/straight" --log "$TMP/straight.jsonl"
"$R1" train --init "$TMP/init" "${R[@]}" --steps 10 --stop-after 5 --out "$TMP/half" --log "$TMP/half.jsonl"
"$R1" train --resume "$TMP/half" --steps 10 --out "$TMP/half" --log "$TMP/half.jsonl" -q
if cmp -s "$TMP/straight/model.safetensors" "$TMP/half/model.safetensors" \
   && cmp -s "$TMP/straight/optimizer.safetensors" "$TMP/half/optimizer.safetensors"; then
  ok "resume: weights and optimizer state after 5+5 steps are bit-identical to 10 straight"
else
  fail "resume: 5+5 differs from 10 straight"
fi
if "$PY" - "$TMP/straight.jsonl" "$TMP/half.jsonl" <<'PY'
import json, sys
a = [json.loads(l)["loss"] for l in open(sys.argv[1])]
b = [json.loads(l)["loss"] for l in open(sys.argv[2])]
assert a == b and len(a) == 10, (a, b)
PY
then ok "resume: the 10 logged losses are identical"; else fail "resume: logged losses differ"; fi

# ---- SFT: loss only on assistant tokens, from a chat JSONL ---------------------------------------
"$PY" - "$TMP/sft.jsonl" <<'PY'
import json, random, sys
random.seed(1)
with open(sys.argv[1], "w") as f:
    for _ in range(64):
        a, b = random.randint(1, 9), random.randint(1, 9)
        f.write(json.dumps({"messages": [{"role": "user", "content": f"{a} plus {b}"},
                                         {"role": "assistant", "content": f"{a + b}"}]}) + "\n")
PY
if "$R1" train --init "$TMP/init" --sft --data "$TMP/sft.jsonl" --chat-template deepseek-v3 \
     --seq-len 24 --batch 8 --steps 8 --out "$TMP/sft" --log "$TMP/sft.jsonl.log" -q; then
  ok "SFT run on chat JSONL"
else fail "SFT run"; fi

# ---- Bad input: a clear error before any work, nothing written -----------------------------------
printf '' >"$TMP/empty.txt"
printf 'ab\xff\xfecd' >"$TMP/latin1.txt"
printf 'the cat' >"$TMP/short.txt"
printf '{"messages": [{"role": "user", "content": "hi"}]}\n' >"$TMP/noasst.jsonl"
B=(--init "$TMP/init" --seq-len 32 --batch 2 --steps 2)
expect_error "missing data file" "nope.txt" "$R1" train "${B[@]}" --data "$TMP/nope.txt" --out "$TMP/e1"
expect_error "empty data file" "empty" "$R1" train "${B[@]}" --data "$TMP/empty.txt" --out "$TMP/e2"
expect_error "data not UTF-8" "UTF-8" "$R1" train "${B[@]}" --data "$TMP/latin1.txt" --out "$TMP/e3"
expect_error "data shorter than one sequence" "token" "$R1" train "${B[@]}" --data "$TMP/short.txt" --out "$TMP/e4"
expect_error "SFT line without an assistant turn" "assistant" \
  "$R1" train "${B[@]}" --sft --data "$TMP/noasst.jsonl" --chat-template deepseek-v3 --out "$TMP/e5"
mkdir -p "$TMP/partial" && cp "$TMP/text/config.json" "$TMP/text/model.safetensors" "$TMP/partial/"
expect_error "incomplete checkpoint" "not a complete checkpoint" \
  "$R1" train --resume "$TMP/partial" --steps 80 --out "$TMP/e6"
expect_error "--init with --resume" "contradict" \
  "$R1" train "${B[@]}" --resume "$TMP/text" --data "$CORPUS" --out "$TMP/e7"
expect_error "resume with a different --lr" "contradicts" \
  "$R1" train --resume "$TMP/text" --steps 80 --lr 0.5 --out "$TMP/text"
expect_error "--out holding another run's checkpoint" "already holds a checkpoint" \
  "$R1" train "${B[@]}" --data "$CORPUS" --out "$TMP/text"
expect_error "--mtp-weight on a model without MTP" "multi-token" \
  "$R1" train --init "$GOLDEN/deepseek-v3-train/model" --data "$GOLDEN/deepseek-v3-train/train.safetensors" \
  --steps 1 --batch 2 --mtp-weight 0.3 --out "$TMP/e8"
expect_error "sequence longer than the model allows" "max_position_embeddings" \
  "$R1" train --init "$TMP/init" --data "$CORPUS" --seq-len 100000 --batch 1 --steps 1 --out "$TMP/e9"
for i in 1 2 3 4 5 6 7 8 9; do
  [ -e "$TMP/e$i" ] && fail "a refused run created $TMP/e$i"
done
if cmp -s "$TMP/text/model.safetensors" "$TMP/partial/model.safetensors"; then
  ok "refused runs left the existing checkpoint untouched"
else fail "the existing checkpoint changed"; fi

finish
