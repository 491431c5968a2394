#!/usr/bin/env bash
# r1 tokenize against the golden tokenizer cases: every line of tokenizer/cases.jsonl through
# --jsonl for both shipped tokenizers (deepseek_v3, qwen3), a single text as the positional
# argument (folder and tokenizer.json forms), --decode round trips, and the error paths
# (missing path, malformed / incomplete tokenizer.json, bad --decode input).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

TOK="$GOLDEN/tokenizer"
CASES="$TOK/cases.jsonl"
[ -f "$CASES" ] || { fail "missing $CASES"; finish; }

# 1. --jsonl: every case, in order, for both tokenizers.
for t in deepseek_v3 qwen3; do
  rc=0
  "$R1" tokenize --tokenizer "$TOK/$t" --jsonl "$CASES" >"$TMP/$t.out" 2>"$TMP/$t.err" || rc=$?
  if [ "$rc" -ne 0 ]; then
    fail "$t: r1 tokenize --jsonl exited $rc: $(tail -c 400 "$TMP/$t.err")"
    continue
  fi
  if "$PY" - "$CASES" "$TMP/$t.out" "$t" <<'EOPY'; then ok "$t: --jsonl ids == reference for every case"; else fail "$t: --jsonl ids differ from the reference (see above)"; fi
import json, sys
cases_f, out_f, t = sys.argv[1:4]
ref = [json.loads(l) for l in open(cases_f, encoding="utf-8") if l.strip()]
lines = open(out_f, encoding="utf-8").read().splitlines()
bad = 0
if len(lines) != len(ref):
    print("FAIL: %s: %d output lines for %d cases" % (t, len(lines), len(ref)), file=sys.stderr)
    bad += 1
good = 0
for i, (r, l) in enumerate(zip(ref, lines)):
    try:
        got = json.loads(l).get("ids")
    except Exception as e:
        got = "unparsable line %r (%s)" % (l[:100], e)
    if got == r[t]:
        good += 1
    else:
        bad += 1
        if bad <= 8:
            print("FAIL: %s: case %d %r: want %s, got %s" % (t, i + 1, r["text"][:60], r[t], got),
                  file=sys.stderr)
print("   %s: %d/%d cases match" % (t, good, len(ref)))
sys.exit(1 if bad else 0)
EOPY
done

# 2 + 3. Positional text and --decode round trips. Pick a few varied cases per tokenizer
# (ASCII, CJK, emoji/ZWJ, whitespace runs, special tokens written in the text); for qwen3 only
# texts that its NFC normalizer leaves unchanged, so decode(encode(text)) == text.
"$PY" - "$CASES" "$TMP" <<'EOPY' || fail "could not select round-trip cases"
import json, sys, unicodedata
cases = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
tmp = sys.argv[2]
tests = {
    "ascii": lambda s: s.isascii() and len(s) > 8 and "<" not in s,
    "cjk": lambda s: any("\u4e00" <= c <= "\u9fff" for c in s),
    "emoji": lambda s: "\u200d" in s and any(ord(c) > 0x1F000 for c in s),
    "newlines": lambda s: "\n\n" in s or "\r\n" in s,
}
# A special token written in the text: <｜User｜> (DeepSeek), <think> (151667 in qwen3).
special = {"deepseek_v3": "<\uff5cUser\uff5c>", "qwen3": "<think>"}
for t in ("deepseek_v3", "qwen3"):
    picked = []
    tests["special"] = lambda s, m=special[t]: m in s
    for label, pred in tests.items():
        for i, c in enumerate(cases):
            s = c["text"]
            if c[t] and pred(s) and (t != "qwen3" or unicodedata.normalize("NFC", s) == s):
                picked.append({"label": label, "case": i + 1, "text": s, "ids": c[t]})
                break
    json.dump(picked, open("%s/rt_%s.json" % (tmp, t), "w"))
EOPY

for t in deepseek_v3 qwen3; do
  # The tokenizer as a folder for one, as the tokenizer.json path for the other.
  if [ "$t" = deepseek_v3 ]; then tok="$TOK/$t"; else tok="$TOK/$t/tokenizer.json"; fi
  rc=0
  "$PY" - "$R1" "$tok" "$t" "$TMP/rt_$t.json" <<'EOPY' || rc=$?
import json, subprocess, sys
r1, tok, t, pf = sys.argv[1:5]
picked = json.load(open(pf))
fails = 0
def check(cond, msg):
    global fails
    if cond:
        print("ok: %s: %s" % (t, msg))
    else:
        fails += 1
        print("FAIL: %s: %s" % (t, msg), file=sys.stderr)
if len(picked) < 4:
    check(False, "found only %d round-trip cases in cases.jsonl" % len(picked))
# Each run loads the tokenizer (~0.5 s of CPU), so: the positional form for two cases
# (plain ASCII and special tokens), and one --decode of all picked cases' ids concatenated
# (byte-level decoding concatenates), all started at once.
runs = []
for p in picked:
    if p["label"] in ("ascii", "special"):
        runs.append((p, subprocess.Popen([r1, "tokenize", "--tokenizer", tok, p["text"]],
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
all_ids = [x for p in picked for x in p["ids"]]
all_text = "".join(p["text"] for p in picked)
dec = subprocess.Popen([r1, "tokenize", "--tokenizer", tok, "--decode",
                        ",".join(str(x) for x in all_ids)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
def wait(proc):
    try:
        return proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()
for p, enc in runs:
    eo, ee = wait(enc)
    want_ids = " ".join(str(x) for x in p["ids"])
    got_ids = eo.decode("utf-8", "replace").strip()
    check(enc.returncode == 0 and got_ids == want_ids,
          "positional text, case %d (%s) %r -> [%s]%s" % (
              p["case"], p["label"], p["text"][:40], want_ids,
              "" if got_ids == want_ids else "; got rc=%d [%s] %s" % (
                  enc.returncode, got_ids[:300], ee.decode("utf-8", "replace")[:300])))
do, de = wait(dec)
want_text = (all_text + "\n").encode("utf-8")
labels = ", ".join("%d (%s)" % (p["case"], p["label"]) for p in picked)
check(dec.returncode == 0 and do == want_text,
      "--decode of the ids of cases %s gives their texts back exactly%s" % (
          labels, "" if do == want_text else "; want %r, got rc=%d %r %s" % (
              want_text[:300], dec.returncode, do[:300], de.decode("utf-8", "replace")[:300])))
sys.exit(1 if fails else 0)
EOPY
  [ "$rc" -eq 0 ] || fail "$t: positional/--decode checks failed (see above)"
done

# --decode tolerates spaces around the commas.
out=$("$R1" tokenize --tokenizer "$TOK/deepseek_v3" --decode "19923, 14 ,2058" 2>&1) || true
if [ "$out" = "Hello, world" ]; then ok "--decode '19923, 14 ,2058' -> 'Hello, world'"
else fail "--decode '19923, 14 ,2058': want 'Hello, world', got '$out'"; fi

# 4. Errors: exit 1 with a message naming the file.
expect_error "missing tokenizer folder" "$(re_lit "$TMP/no-such-tokenizer")" \
  "$R1" tokenize --tokenizer "$TMP/no-such-tokenizer" "hello"
mkdir -p "$TMP/empty"
expect_error "folder without tokenizer.json" "tokenizer\.json" \
  "$R1" tokenize --tokenizer "$TMP/empty" "hello"
mkdir -p "$TMP/bad"
printf '{"model": {"type": "BPE", "vocab": {' >"$TMP/bad/tokenizer.json"
expect_error "malformed tokenizer.json (folder form)" "$(re_lit "$TMP/bad/tokenizer.json")" \
  "$R1" tokenize --tokenizer "$TMP/bad" "hello"
expect_error "malformed tokenizer.json (file form)" "$(re_lit "$TMP/bad/tokenizer.json")" \
  "$R1" tokenize --tokenizer "$TMP/bad/tokenizer.json" "hello"
mkdir -p "$TMP/nomodel"
echo '{}' >"$TMP/nomodel/tokenizer.json"
expect_error "tokenizer.json without a model" "$(re_lit "$TMP/nomodel/tokenizer.json")" \
  "$R1" tokenize --tokenizer "$TMP/nomodel" "hello"
expect_error "missing --jsonl file" "$(re_lit "$TMP/none.jsonl")" \
  "$R1" tokenize --tokenizer "$TOK/deepseek_v3" --jsonl "$TMP/none.jsonl"
expect_error "--decode with a non-number" "abc" \
  "$R1" tokenize --tokenizer "$TOK/deepseek_v3" --decode "1,abc,3"
finish
