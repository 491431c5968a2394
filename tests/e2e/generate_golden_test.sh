#!/usr/bin/env bash
# Greedy generation vs golden greedy.output for every golden model folder, plus EOS
# stopping, --stop-ids, seeded sampling reproducibility and -n 0.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

# gen OUTFILE ARGS...: r1 generate ARGS --json > OUTFILE; on failure OUTFILE gets
# {"error": "..."} so the checker reports it.
gen() {
  local outf=$1
  shift
  local rc=0
  "$R1" generate "$@" --json >"$outf" 2>"$TMP/gen.err" || rc=$?
  if [ "$rc" -ne 0 ]; then
    "$PY" -c 'import json,sys; print(json.dumps({"error": sys.argv[1]}))' \
      "r1 generate $* exited $rc: $(tail -c 400 "$TMP/gen.err")" >"$outf"
  fi
}

n=0
for dir in $(golden_dirs); do
  name=$(basename "$dir")
  n=$((n + 1))
  model="$dir/model"
  W="$TMP/$name"
  mkdir -p "$W"
  # prompt, golden greedy tokens, EOS ids (config.json eos_token_id, int or list, plus
  # generation_config.json's), vocab size, and a --stop-ids target: the first golden
  # token (from the 3rd on) that does not occur earlier in the output.
  read -r prompt want eos stop_at stop_tok vocab < <("$PY" - "$dir" "$E2E_DIR" <<'EOPY'
import json, os, sys
sys.path.insert(0, sys.argv[2]); import st
d = sys.argv[1]
g = os.path.join(d, "golden.safetensors")
prompt = [int(x) for x in st.load(g, "greedy.prompt")[2]]
want = [int(x) for x in st.load(g, "greedy.output")[2]]
eos = set()
for f in ("config.json", "generation_config.json"):
    p = os.path.join(d, "model", f)
    if os.path.exists(p):
        v = json.load(open(p)).get("eos_token_id")
        if isinstance(v, int): eos.add(v)
        elif isinstance(v, list): eos.update(int(x) for x in v)
stop_at = next((i for i in range(2, len(want)) if want[i] not in want[:i]), -1)
csv = lambda l: ",".join(str(x) for x in l)
vocab = json.load(open(os.path.join(d, "model", "config.json")))["vocab_size"]
print(csv(prompt), csv(want), csv(sorted(eos)) or "-", stop_at, want[stop_at] if stop_at >= 0 else -1, vocab)
EOPY
) || true
  [ -n "${vocab:-}" ] || { fail "$name: could not read greedy.prompt/greedy.output/config"; continue; }
  [ "$eos" != "-" ] || eos=""
  echo "== $name: prompt [$prompt], golden greedy [$want], eos [$eos]"
  gen "$W/greedy_ignore_eos.json" -m "$model" --prompt-ids "$prompt" -n 16 --ignore-eos
  gen "$W/greedy.json" -m "$model" --prompt-ids "$prompt" -n 16
  if [ "$stop_at" -ge 0 ]; then
    gen "$W/stop.json" -m "$model" --prompt-ids "$prompt" -n 16 --stop-ids "$stop_tok"
  fi
  gen "$W/seed5a.json" -m "$model" --prompt-ids "$prompt" -n 16 --ignore-eos --temperature 0.8 --seed 5
  gen "$W/seed5b.json" -m "$model" --prompt-ids "$prompt" -n 16 --ignore-eos --temperature 0.8 --seed 5
  gen "$W/seed6.json" -m "$model" --prompt-ids "$prompt" -n 16 --ignore-eos --temperature 0.8 --seed 6
  gen "$W/n0.json" -m "$model" --prompt-ids "$prompt" -n 0

  rc=0
  "$PY" - "$W" "$name" "$prompt" "$want" "$eos" "$stop_at" "$stop_tok" \
    "$vocab" <<'EOPY' || rc=$?
import json, os, sys
W, name, prompt, want, eos, stop_at, stop_tok, vocab = sys.argv[1:9]
ints = lambda s: [int(x) for x in s.split(",")] if s else []
prompt, want, eos = ints(prompt), ints(want), set(ints(eos))
stop_at, stop_tok, vocab = int(stop_at), int(stop_tok), int(vocab)
fails = 0

def res(f):
    p = os.path.join(W, f)
    try:
        j = json.load(open(p))
    except Exception as e:
        return {"error": "%s: stdout is not one JSON object (%s): %r" % (f, e, open(p).read()[:300])}
    return j

def check(cond, msg, j=None):
    global fails
    if cond:
        print("ok: %s: %s" % (name, msg))
    else:
        fails += 1
        print("FAIL: %s: %s; got %s" % (name, msg, json.dumps(j)[:600] if j is not None else "-"), file=sys.stderr)

def tokens(j):
    t = j.get("tokens")
    return t if isinstance(t, list) else None

j = res("greedy_ignore_eos.json")
check(tokens(j) == want, "greedy -n 16 --ignore-eos: tokens == greedy.output %s" % want, j)
check(j.get("finish_reason") == "length", "greedy --ignore-eos: finish_reason 'length'", j)
check(j.get("prompt_tokens") == len(prompt), "prompt_tokens == %d" % len(prompt), j)

j = res("greedy.json")
t = tokens(j)
ok_prefix = t is not None and (t == want or (len(t) > 0 and t == want[:len(t)] and t[-1] in eos
                                               and not any(x in eos for x in t[:-1])))
check(ok_prefix, "greedy without --ignore-eos: greedy.output, or its prefix up to the first EOS %s" % sorted(eos), j)
if t is not None:
    check((j.get("finish_reason") == "stop") == (len(t) > 0 and t[-1] in eos),
          "finish_reason is 'stop' exactly when the output ends at EOS", j)

if stop_at >= 0:
    j = res("stop.json")
    check(tokens(j) == want[:stop_at + 1] and j.get("finish_reason") == "stop",
          "--stop-ids %d: stops right after it (%d tokens), finish_reason 'stop'" % (stop_tok, stop_at + 1), j)

a, b, c = res("seed5a.json"), res("seed5b.json"), res("seed6.json")
ta, tb, tc = tokens(a), tokens(b), tokens(c)
check(ta is not None and ta == tb, "--temperature 0.8 --seed 5 twice: identical tokens %s" % ta, b)
check(ta is not None and len(ta) == 16 and all(isinstance(x, int) and 0 <= x < vocab for x in ta),
      "sampled 16 in-vocabulary tokens", a)
check(tc is not None and len(tc) == 16, "--seed 6 gives 16 tokens", c)
if tc is not None:
    print("   note: %s: --seed 6 tokens %s (%s --seed 5)" % (name, tc, "differ from" if tc != ta else "same as"))

j = res("n0.json")
check(tokens(j) == [], "-n 0: no tokens", j)
sys.exit(1 if fails else 0)
EOPY
  [ "$rc" -eq 0 ] || fail "$name: generation checks failed (see above)"
done
[ "$n" -gt 0 ] || fail "no golden folders with golden.safetensors in $GOLDEN"
finish
