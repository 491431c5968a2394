#!/usr/bin/env bash
# MTP speculative decoding beside plain greedy decoding on the same prompts, in the same run:
# acceptance rate, main-model steps and decode tokens/s (plain and speculative runs alternate,
# so a busy machine slows both alike). Every pair must produce the same tokens.
# usage: bash bench/speculative_vs_plain.sh R1 MODEL_DIR [PROMPTS_FILE] [N_PROMPTS] [N_TOKENS] [THREADS]
#   PROMPTS_FILE: one text a line, the first 12 words of each of the first N_PROMPTS non-empty
#   lines are used (needs a tokenizer in MODEL_DIR); without it, random ids < vocab_size.
set -euo pipefail
R1=$1
MODEL=$2
PROMPTS=${3:-}
NP=${4:-8}
N=${5:-128}
THREADS=${6:-1}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/r1spec.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

if [ -n "$PROMPTS" ]; then
  python3 - "$PROMPTS" "$NP" >"$TMP/texts.jsonl" <<'PY'
import json, sys
lines = [l.split() for l in open(sys.argv[1], encoding="utf-8") if len(l.split()) >= 12]
for words in lines[: int(sys.argv[2])]:
    print(json.dumps({"text": " ".join(words[:12])}))
PY
  "$R1" tokenize --tokenizer "$MODEL" --jsonl "$TMP/texts.jsonl" |
    python3 -c 'import json,sys; [print(",".join(map(str, json.loads(l)["ids"]))) for l in sys.stdin]' \
    >"$TMP/ids.txt"
else
  python3 - "$MODEL/config.json" "$NP" >"$TMP/ids.txt" <<'PY'
import json, random, sys
v = json.load(open(sys.argv[1]))["vocab_size"]
r = random.Random(1)
for _ in range(int(sys.argv[2])):
    print(",".join(str(r.randrange(2, v)) for _ in range(12)))
PY
fi

while read -r ids; do
  for mode in plain spec; do
    extra=()
    [ "$mode" = spec ] && extra=(--speculative)
    "$R1" generate -m "$MODEL" --prompt-ids "$ids" -n "$N" --ignore-eos --threads "$THREADS" \
      --json "${extra[@]}" >>"$TMP/$mode.jsonl"
  done
done <"$TMP/ids.txt"

python3 - "$TMP/plain.jsonl" "$TMP/spec.jsonl" <<'PY'
import json, statistics, sys
plain = [json.loads(l) for l in open(sys.argv[1])]
spec = [json.loads(l) for l in open(sys.argv[2])]
same = sum(a["tokens"] == b["tokens"] for a, b in zip(plain, spec))
drafts = sum(b["draft_tokens"] for b in spec)
accepted = sum(b["accepted_tokens"] for b in spec)
steps = sum(b["main_steps"] for b in spec)
gen = sum(len(b["tokens"]) - 1 for b in spec)  # the first token comes from the prefill
tp = statistics.median(a["decode_tokens_per_s"] for a in plain)
ts = statistics.median(b["decode_tokens_per_s"] for b in spec)
print(f"prompts {len(spec)}, identical outputs {same}/{len(spec)}")
print(f"acceptance {accepted}/{drafts} = {accepted / max(1, drafts):.3f}; "
      f"{gen / max(1, steps):.2f} tokens per main-model step")
print(f"decode tokens/s (median over prompts): plain {tp:.1f}, speculative {ts:.1f}, "
      f"speed-up x{ts / tp:.2f}")
PY
