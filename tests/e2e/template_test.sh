#!/usr/bin/env bash
# r1 template against the golden chat renderings (chat/cases.jsonl, rendered by Python Jinja2
# as Hugging Face sets it up): every template name present in "rendered", by built-in name and
# from the golden sources (chat/*.jinja, the tokenizer_config.json files); qwen3's tools and
# enable_thinking=false branches (expected text written out from the shipped template);
# chatml/llama3 render; an unknown name is an error listing the built-in names.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

CASES="$GOLDEN/chat/cases.jsonl"
[ -f "$CASES" ] || { fail "missing $CASES"; finish; }

# The conversations without "rendered" (messages, add_generation_prompt, and tools /
# enable_thinking where a case has them), and the template names the cases cover.
names=$("$PY" - "$CASES" "$TMP/in.jsonl" <<'EOPY'
import json, sys
cases = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
keep = ("messages", "add_generation_prompt", "tools", "enable_thinking")
with open(sys.argv[2], "w", encoding="utf-8") as f:
    for c in cases:
        f.write(json.dumps({k: c[k] for k in keep if k in c}, ensure_ascii=False) + "\n")
names = []
for c in cases:
    for n in c["rendered"]:
        if n not in names:
            names.append(n)
print(" ".join(names))
EOPY
) || { fail "could not read $CASES"; finish; }
[ -n "$names" ] || fail "no template names in $CASES"
echo "== templates in the golden cases: $names"

# render DESC NAME SOURCE: r1 template --chat-template SOURCE; compare with rendered[NAME].
render() {
  local desc=$1 name=$2 src=$3 rc=0
  "$R1" template --chat-template "$src" --jsonl "$TMP/in.jsonl" >"$TMP/out.jsonl" 2>"$TMP/err" || rc=$?
  if [ "$rc" -ne 0 ]; then
    fail "$desc: r1 template --chat-template $src exited $rc: $(tail -c 400 "$TMP/err")"
    return
  fi
  if "$PY" - "$CASES" "$TMP/out.jsonl" "$name" "$desc" <<'EOPY'; then ok "$desc: every case == rendered[$name]"; else fail "$desc: differs from rendered[$name] (see above)"; fi
import json, sys
cases_f, out_f, name, desc = sys.argv[1:5]
cases = [json.loads(l) for l in open(cases_f, encoding="utf-8") if l.strip()]
lines = open(out_f, encoding="utf-8").read().splitlines()
bad = n = good = 0
if len(lines) != len(cases):
    print("FAIL: %s: %d output lines for %d cases" % (desc, len(lines), len(cases)), file=sys.stderr)
    bad += 1
for i, (c, l) in enumerate(zip(cases, lines)):
    if name not in c["rendered"]:
        continue
    n += 1
    want = c["rendered"][name]
    try:
        got = json.loads(l).get("text")
    except Exception as e:
        got = "unparsable line %r (%s)" % (l[:100], e)
    if got == want:
        good += 1
    else:
        bad += 1
        if bad <= 4:
            k = next((j for j in range(min(len(want), len(got or ""))) if want[j] != got[j]),
                     min(len(want), len(got or "")))
            print("FAIL: %s: case %d: first difference at char %d\n  want %r\n  got  %r"
                  % (desc, i + 1, k, want[max(0, k - 60):k + 100], (got or "")[max(0, k - 60):k + 100]),
                  file=sys.stderr)
print("   %s: %d/%d cases match" % (desc, good, n))
sys.exit(1 if bad or n == 0 else 0)
EOPY
}

for name in $names; do
  render "$name (built-in)" "$name" "$name"
  case "$name" in
    deepseek-v3) render "$name (tokenizer/deepseek_v3/tokenizer_config.json)" "$name" \
                   "$GOLDEN/tokenizer/deepseek_v3/tokenizer_config.json" ;;
    qwen3) render "$name (tokenizer/qwen3/tokenizer_config.json)" "$name" \
             "$GOLDEN/tokenizer/qwen3/tokenizer_config.json" ;;
    *) if [ -f "$GOLDEN/chat/$name.jinja" ]; then
         render "$name (chat/$name.jinja)" "$name" "$GOLDEN/chat/$name.jinja"
       else
         echo "   note: no golden source file for $name"
       fi ;;
  esac
done

# qwen3's tools and enable_thinking=false branches (no golden case uses them). The expected
# text is the shipped template's literal text; the tool's keys are sorted and plain ASCII so
# that Hugging Face's tojson (json.dumps, insertion order, ", " / ": ") is unambiguous.
"$PY" - "$TMP" <<'EOPY'
import json, sys
tmp = sys.argv[1]
tool = {"function": {"description": "Get the weather", "name": "get_weather",
                     "parameters": {"properties": {"city": {"type": "string"}},
                                    "required": ["city"], "type": "object"}},
        "type": "function"}
convs = [
    {"messages": [{"role": "system", "content": "Sys."}, {"role": "user", "content": "Hi"}],
     "add_generation_prompt": True, "tools": [tool]},
    {"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": True,
     "enable_thinking": False},
    {"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": True,
     "enable_thinking": True},
]
want = [
    "<|im_start|>system\nSys.\n\n# Tools\n\nYou may call one or more functions to assist with the "
    "user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n"
    "<tools>\n" + json.dumps(tool) + "\n</tools>\n\nFor each function call, return a json object "
    "with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n"
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
]
with open(tmp + "/extra.jsonl", "w") as f:
    for c in convs:
        f.write(json.dumps(c) + "\n")
json.dump(want, open(tmp + "/extra_want.json", "w"))
EOPY
for src in qwen3 "$GOLDEN/tokenizer/qwen3/tokenizer_config.json"; do
  rc=0
  "$R1" template --chat-template "$src" --jsonl "$TMP/extra.jsonl" >"$TMP/extra.out" 2>"$TMP/err" || rc=$?
  if [ "$rc" -ne 0 ]; then
    fail "qwen3 tools/enable_thinking ($src): exited $rc: $(tail -c 400 "$TMP/err")"
    continue
  fi
  "$PY" - "$TMP/extra.out" "$TMP/extra_want.json" "$src" <<'EOPY' || fail "qwen3 tools/enable_thinking ($src) (see above)"
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
want = json.load(open(sys.argv[2]))
labels = ["tools + system message", "enable_thinking=false", "enable_thinking=true"]
bad = 0
for i, w in enumerate(want):
    got = json.loads(lines[i]).get("text") if i < len(lines) else None
    if got == w:
        print("ok: qwen3 (%s): %s renders as the template says" % (sys.argv[3], labels[i]))
    else:
        bad += 1
        print("FAIL: qwen3 (%s): %s\n  want %r\n  got  %r" % (sys.argv[3], labels[i], w, got),
              file=sys.stderr)
sys.exit(1 if bad else 0)
EOPY
done

# chatml and llama3 have no golden renderings: they render, and look like their format.
for spec in "chatml|<|im_start|>user" "llama3|<|start_header_id|>user<|end_header_id|>"; do
  name=${spec%%|*}
  marker=${spec#*|}
  rc=0
  "$R1" template --chat-template "$name" --jsonl "$TMP/in.jsonl" >"$TMP/$name.out" 2>"$TMP/err" || rc=$?
  lines=$(wc -l <"$TMP/$name.out")
  if [ "$rc" -ne 0 ]; then
    fail "$name: exited $rc: $(tail -c 400 "$TMP/err")"
  elif [ "$lines" -ne "$(wc -l <"$TMP/in.jsonl")" ] || ! grep -qF -- "$marker" "$TMP/$name.out"; then
    fail "$name: expected one {\"text\"} line a case with '$marker' (got $lines lines: $(head -c 300 "$TMP/$name.out"))"
  else
    ok "$name: renders every case ($lines lines with '$marker')"
  fi
done

# Errors.
expect_error "unknown template name" "deepseek-v3" \
  "$R1" template --chat-template no-such-template --jsonl "$TMP/in.jsonl"
for n in deepseek-r1 deepseek-r1-distill qwen3 chatml llama3 no-such-template; do
  stderr_has "unknown template name lists the built-ins" "$(re_lit "$n")"
done
expect_error "missing --jsonl file" "$(re_lit "$TMP/none.jsonl")" \
  "$R1" template --chat-template deepseek-v3 --jsonl "$TMP/none.jsonl"
finish
