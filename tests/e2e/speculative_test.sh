#!/usr/bin/env bash
# r1 generate --speculative (MTP draft, greedy) on an `r1 init --preset v3-nano` folder: the same
# tokens and finish_reason as plain r1 generate for several prompts, lengths, --stop-ids and the
# default EOS stop; the draft counts in --json are consistent; text prompts work too; and clear
# errors for sampling and for a model without MTP weights (a golden folder).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

M="$TMP/nano"
rc=0
"$R1" init --preset v3-nano --out "$M" --seed 3 >"$TMP/init.out" 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then
  fail "r1 init --preset v3-nano exited $rc: $(tail -c 400 "$TMP/init.out")"
  finish
fi
ok "r1 init --preset v3-nano"

# gen NAME ARGS...: r1 generate ARGS --json > $TMP/NAME.json ({"error": ...} on failure).
gen() {
  local name=$1
  shift
  local rc=0
  "$R1" generate "$@" --json >"$TMP/$name.json" 2>"$TMP/$name.err" || rc=$?
  if [ "$rc" -ne 0 ]; then
    "$PY" -c 'import json,sys; print(json.dumps({"error": sys.argv[1]}))' \
      "r1 generate $* exited $rc: $(tail -c 400 "$TMP/$name.err")" >"$TMP/$name.json"
  fi
}

# same NAME: plain and speculative runs agree, and the speculative counts add up.
same() {
  local name=$1 msg
  if msg=$("$PY" - "$TMP/$name.plain.json" "$TMP/$name.spec.json" 2>&1 <<'EOPY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
for j in (a, b):
    if "error" in j: sys.exit(j["error"])
if a["tokens"] != b["tokens"]:
    sys.exit(f"tokens differ: plain {a['tokens']} speculative {b['tokens']}")
if a["finish_reason"] != b["finish_reason"]:
    sys.exit(f"finish_reason {a['finish_reason']} vs {b['finish_reason']}")
for k in ("draft_tokens", "accepted_tokens", "acceptance_rate", "main_steps"):
    if k not in b: sys.exit(f"speculative --json lacks {k}: {b}")
    if k in a: sys.exit(f"plain --json has {k}")
d, acc, rate, steps = b["draft_tokens"], b["accepted_tokens"], b["acceptance_rate"], b["main_steps"]
n = len(b["tokens"])
if not (0 <= acc <= d <= steps <= d + 1): sys.exit(f"counts: accepted {acc}, drafts {d}, steps {steps}")
if n and not (steps + acc <= n <= 1 + steps + acc): sys.exit(f"{n} tokens from {steps} steps, {acc} accepted")
if abs(rate - (acc / d if d else 0)) > 1e-9: sys.exit(f"acceptance_rate {rate} != {acc}/{d}")
print(f"{n} tokens, {acc}/{d} drafts accepted, {steps} main steps")
EOPY
  ); then
    ok "$name: speculative == plain ($msg)"
  else
    fail "$name: $msg"
  fi
}

both() {
  local name=$1
  shift
  gen "$name.plain" "$@"
  gen "$name.spec" "$@" --speculative
  same "$name"
}

both p1 -m "$M" --prompt-ids 5,6,7 -n 40 --ignore-eos
both p2 -m "$M" --prompt-ids 10,20,31,4,4,4,60 -n 40 --ignore-eos
both p3 -m "$M" --prompt-ids 17 -n 40 --ignore-eos --mla naive
both short1 -m "$M" --prompt-ids 5,6,7 -n 1 --ignore-eos
both short2 -m "$M" --prompt-ids 5,6,7 -n 2 --ignore-eos
both eos -m "$M" --prompt-ids 5,6,7 -n 40
both penalty -m "$M" --prompt-ids 5,6,7 -n 40 --ignore-eos --repeat-penalty 1.5

# --stop-ids: the first token (from the fourth on) of p2's output that was not generated before.
stop=$("$PY" -c 'import json,sys; t=json.load(open(sys.argv[1])).get("tokens",[]); print(next((x for i,x in enumerate(t) if i>=3 and x not in t[:i]), -1))' "$TMP/p2.plain.json")
if [ "$stop" -ge 0 ]; then
  both stop -m "$M" --prompt-ids 10,20,31,4,4,4,60 -n 40 --stop-ids "$stop"
  reason=$(json_get "$TMP/stop.spec.json" 'j.get("finish_reason")')
  [ "$reason" = stop ] && ok "--stop-ids $stop ends the speculative run with 'stop'" \
    || fail "--stop-ids $stop: finish_reason $reason"
fi

# The streamed (non --json) ids equal the --json tokens.
rc=0
"$R1" generate -m "$M" --prompt-ids 5,6,7 -n 40 --ignore-eos --speculative >"$TMP/stream.out" \
  2>"$TMP/stream.err" || rc=$?
want=$(json_get "$TMP/p1.plain.json" '" ".join(str(x) for x in j["tokens"])')
got=$(tr -s ' \n' ' ' <"$TMP/stream.out" | sed 's/^ //; s/ $//')
[ "$rc" -eq 0 ] && [ "$got" = "$want" ] && ok "streamed speculative ids match" \
  || fail "streamed speculative ids (rc $rc): [$got] want [$want]"
grep -q "drafts accepted" "$TMP/stream.err" && ok "summary reports the drafts" \
  || fail "no draft summary on stderr: $(head -c 300 "$TMP/stream.err")"

# Text prompts take the same path (v3-nano with the real DeepSeek tokenizer).
TM="$TMP/nano_tok"
rc=0
"$R1" init --preset v3-nano --out "$TM" --tokenizer "$GOLDEN/tokenizer/deepseek_v3" --seed 1 \
  >"$TMP/init2.out" 2>&1 || rc=$?
if [ "$rc" -eq 0 ]; then
  both text -m "$TM" -p "What is 2+3?" -n 12 --ignore-eos
else
  fail "r1 init --tokenizer exited $rc: $(tail -c 300 "$TMP/init2.out")"
fi

expect_error "--speculative with --temperature 0.7" "greedy" \
  "$R1" generate -m "$M" --prompt-ids 5,6,7 -n 4 --speculative --temperature 0.7
V3TINY="$GOLDEN/deepseek-v3-tiny/model"
if [ -d "$V3TINY" ]; then
  expect_error "--speculative on a model without MTP weights" "MTP" \
    "$R1" generate -m "$V3TINY" --prompt-ids 1,2,3 -n 4 --speculative
fi
finish
