#!/usr/bin/env bash
# r1 generate with a text prompt on a small random model carrying the real DeepSeek tokenizer
# (r1 init --preset v3-nano --tokenizer ...): the model's own chat template, --chat-template
# deepseek-r1 (the prompt ends in <think>\n, so everything generated is reasoning), --raw;
# "text" is the decoding of "tokens" (checked with r1 tokenize --decode), prompt_tokens is the
# token count of the rendered prompt, -p equals --prompt-ids of that rendering, greedy repeats,
# and the plain (non --json) stream prints the same text.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

TOKDIR="$GOLDEN/tokenizer/deepseek_v3"
M="$TMP/nano"
PROMPT="What is 2+3?"
N=8

rc=0
"$R1" init --preset v3-nano --out "$M" --tokenizer "$TOKDIR" --seed 1 >"$TMP/init.out" 2>&1 || rc=$?
if [ "$rc" -ne 0 ] || [ ! -f "$M/tokenizer.json" ]; then
  fail "r1 init --preset v3-nano --tokenizer $TOKDIR exited $rc (or wrote no tokenizer.json): $(tail -c 400 "$TMP/init.out")"
  finish
fi
ok "r1 init --preset v3-nano with the DeepSeek tokenizer"

# gen NAME ARGS...: r1 generate -m $M ARGS --json > $TMP/NAME.json ({"error": ...} on failure).
gen() {
  local name=$1
  shift
  local rc=0
  "$R1" generate -m "$M" "$@" --json >"$TMP/$name.json" 2>"$TMP/$name.err" || rc=$?
  if [ "$rc" -ne 0 ]; then
    "$PY" -c 'import json,sys; print(json.dumps({"error": sys.argv[1]}))' \
      "r1 generate $* exited $rc: $(tail -c 400 "$TMP/$name.err")" >"$TMP/$name.json"
  fi
}
gen v3 -p "$PROMPT" -n $N --ignore-eos
gen v3b -p "$PROMPT" -n $N --ignore-eos
gen r1 -p "$PROMPT" -n $N --ignore-eos --chat-template deepseek-r1
gen raw -p "$PROMPT" -n $N --ignore-eos --raw
rc=0
"$R1" generate -m "$M" -p "$PROMPT" -n $N --ignore-eos >"$TMP/stream.out" 2>"$TMP/stream.err" || rc=$?
[ "$rc" -eq 0 ] || fail "r1 generate -p (no --json) exited $rc: $(tail -c 400 "$TMP/stream.err")"

# The rendered prompts (the model's tokenizer_config.json template, and deepseek-r1) and
# their ids; the raw prompt's ids.
printf '{"messages": [{"role": "user", "content": "%s"}], "add_generation_prompt": true}\n' \
  "$PROMPT" >"$TMP/conv.jsonl"
for t in v3 r1; do
  src="$M/tokenizer_config.json"
  [ "$t" = r1 ] && src=deepseek-r1
  rc=0
  "$R1" template --chat-template "$src" --jsonl "$TMP/conv.jsonl" >"$TMP/$t.tpl" 2>"$TMP/err" || rc=$?
  [ "$rc" -eq 0 ] || fail "r1 template --chat-template $src exited $rc: $(tail -c 400 "$TMP/err")"
  "$PY" -c 'import json,sys; sys.stdout.write(json.loads(open(sys.argv[1]).readline())["text"])' \
    "$TMP/$t.tpl" >"$TMP/$t.prompt" 2>/dev/null || true
done
tok_ids() { "$R1" tokenize --tokenizer "$M" "$1" 2>"$TMP/err" | tr ' ' ',' || true; }
# read_exact FILE: the file's text with its trailing newlines kept (the r1 prompt ends in \n).
read_exact() { local s; s=$(cat "$1"; printf x); printf '%s' "${s%x}"; }
v3_ids=$(tok_ids "$(read_exact "$TMP/v3.prompt")")
r1_ids=$(tok_ids "$(read_exact "$TMP/r1.prompt")")
raw_ids=$(tok_ids "$PROMPT")
echo "== rendered prompt ids: model template [$v3_ids], deepseek-r1 [$r1_ids], raw [$raw_ids]"
if [ -n "$v3_ids" ]; then
  gen ids --prompt-ids "$v3_ids" -n $N --ignore-eos
else
  fail "could not tokenize the rendered prompt: $(head -c 300 "$TMP/err")"
fi

# Decode each run's tokens with r1 tokenize --decode. "text" is decoded the way Hugging Face's
# skip_special_tokens=True does it (and vLLM by default): tokens flagged "special" in
# tokenizer.json (BOS/EOS, the <｜place▁holder▁no▁N｜> range) are left out, so drop them first;
# --decode itself keeps them.
special=$("$PY" -c 'import json,sys; print(",".join(str(t["id"]) for t in json.load(open(sys.argv[1], encoding="utf-8")).get("added_tokens", []) if t.get("special")))' "$M/tokenizer.json") \
  || fail "could not read the added tokens of $M/tokenizer.json"
for t in v3 r1 raw; do
  csv=$("$PY" -c 'import json,sys
sp = {int(x) for x in sys.argv[2].split(",") if x}
j = json.load(open(sys.argv[1], encoding="utf-8"))
print(",".join(str(x) for x in j.get("tokens", []) if x not in sp))' "$TMP/$t.json" "$special" 2>/dev/null) || csv=""
  if [ -n "$csv" ]; then
    "$R1" tokenize --tokenizer "$M" --decode "$csv" >"$TMP/$t.decoded" 2>"$TMP/err" \
      || fail "$t: r1 tokenize --decode $csv failed: $(head -c 300 "$TMP/err")"
  else
    : >"$TMP/$t.decoded"
  fi
done

rc=0
"$PY" - "$TMP" "$N" "$v3_ids" "$r1_ids" "$raw_ids" "$TOKDIR/tokenizer_config.json" <<'EOPY' || rc=$?
import json, os, sys
T, N, v3_ids, r1_ids, raw_ids, tcfg = sys.argv[1:7]
N = int(N)
ids = lambda s: [int(x) for x in s.split(",") if x]
v3_ids, r1_ids, raw_ids = ids(v3_ids), ids(r1_ids), ids(raw_ids)
add_bos = json.load(open(tcfg)).get("add_bos_token", False)
fails = 0

def check(cond, msg, j=None):
    global fails
    if cond:
        print("ok: " + msg)
    else:
        fails += 1
        print("FAIL: %s; got %s" % (msg, json.dumps(j, ensure_ascii=False)[:600] if j is not None else "-"),
              file=sys.stderr)

def res(name):
    try:
        return json.load(open(os.path.join(T, name + ".json"), encoding="utf-8"))
    except Exception as e:
        return {"error": "%s.json is not one JSON object: %s" % (name, e)}

def decoded(name):
    b = open(os.path.join(T, name + ".decoded"), "rb").read()
    return b[:-1].decode("utf-8", "replace") if b.endswith(b"\n") else b.decode("utf-8", "replace")

for name, label in (("v3", "model template"), ("r1", "--chat-template deepseek-r1"), ("raw", "--raw")):
    j = res(name)
    t = j.get("tokens")
    check(isinstance(t, list) and len(t) == N and all(isinstance(x, int) for x in t),
          "%s: -n %d --ignore-eos gives %d tokens" % (label, N, N), j)
    check(j.get("finish_reason") == "length", "%s: finish_reason 'length'" % label, j)
    check(isinstance(j.get("text"), str) and j.get("text") == decoded(name),
          "%s: text == r1 tokenize --decode of the tokens, special ones left out (%r)" % (label, decoded(name)), j)
    want_pt = {"v3": len(v3_ids), "r1": len(r1_ids), "raw": len(raw_ids) + (1 if add_bos else 0)}[name]
    check(want_pt > 0 and j.get("prompt_tokens") == want_pt,
          "%s: prompt_tokens == %d (the rendered prompt's token count%s)"
          % (label, want_pt, ", plus BOS" if name == "raw" and add_bos else ""), j)
    for k in ("reasoning", "content"):
        check(isinstance(j.get(k), str), "%s: has a '%s' string" % (label, k), j)

# Reasoning and content are reported without their leading whitespace (and the reasoning
# without its trailing whitespace), as the engine's reasoning parser (and vLLM's) does.
WS = " \t\n\r\f\v"
j = res("v3")
text = j.get("text") or ""
check(j.get("reasoning") == "" and j.get("content") == text.lstrip(WS) and text.strip(WS) != "",
      "model template (no <think> opened): reasoning empty, content == text (less leading whitespace)", j)
j = res("r1")
text = j.get("text") or ""
check(r1_ids and v3_ids and r1_ids[:len(v3_ids)] == v3_ids and len(r1_ids) > len(v3_ids),
      "deepseek-r1 prompt = the V3 prompt + '<think>\\n' tokens (%s vs %s)" % (r1_ids, v3_ids))
check(j.get("content") == "" and j.get("reasoning") == text.strip(WS) and text.strip(WS) != "",
      "deepseek-r1 (prompt ends in <think>\\n): the whole text is reasoning, content empty", j)
a, b = res("v3"), res("v3b")
check(a.get("tokens") is not None and a.get("tokens") == b.get("tokens") and a.get("text") == b.get("text"),
      "greedy twice: identical tokens and text", b)
c = res("ids")
check(c.get("tokens") is not None and c.get("tokens") == a.get("tokens"),
      "--prompt-ids of the rendered prompt gives the same tokens as -p", c)
check(res("raw").get("tokens") != a.get("tokens"), "--raw prompt differs from the templated one (different tokens)",
      res("raw"))
s = open(os.path.join(T, "stream.out"), encoding="utf-8", errors="replace").read()
check(s != "" and s.rstrip("\n") == (a.get("content") or "").rstrip("\n"),
      "plain output (not --json, not a terminal) prints the content: %r" % s[:200], a)
sys.exit(1 if fails else 0)
EOPY
[ "$rc" -eq 0 ] || fail "generate text checks failed (see above)"
finish
