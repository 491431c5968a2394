#!/usr/bin/env bash
# r1 plot: training curves from JSON-lines logs as SVG. Checks the SVG is well-formed XML with
# the expected panels, lines, axes and legends, and the errors a user meets first.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

if "$R1" plot --help | grep -q "Example:"; then ok "plot --help has an example"
else fail "plot --help has no example"; fi

# A log as the trainer writes it: a header line, train lines every step, eval lines every 50.
awk 'BEGIN {
  print "{\"event\": \"start\", \"model\": \"v3-nano\"}"
  for (s = 1; s <= 400; s++) {
    noise = ((s * 7919) % 101 - 50) / 500
    printf "{\"step\": %d, \"loss\": %.4f, \"lr\": %.6g, ", s, 3 + 8 * exp(-s / 60) + noise,
      (s < 40 ? 1e-3 * s / 40 : 1e-3)
    printf "\"grad_norm\": %.4f, \"tokens_per_s\": %.1f, \"mtp_loss\": %.4f, ",
      0.5 + 3 * exp(-s / 40), 5000 + 100 * noise, 3.3 + 8 * exp(-s / 60) + noise
    printf "\"balance_max_vio\": %.4f, \"phase\": \"train\"}\n", 0.5 * exp(-s / 100)
    if (s % 50 == 0) printf "{\"step\": %d, \"eval_loss\": %.4f}\n", s, 3.1 + 8 * exp(-s / 60)
  }
}' >"$TMP/a.jsonl"
awk 'BEGIN { for (s = 1; s <= 300; s++) {
  printf "{\"step\": %d, \"loss\": %.4f, \"lr\": 0.002}\n", s, 2.8 + 8 * exp(-s / 40)
  if (s % 50 == 0) printf "{\"step\": %d, \"eval_loss\": %.4f}\n", s, 2.9 + 8 * exp(-s / 40) } }' \
  >"$TMP/b.jsonl"

# well_formed FILE: parses as XML with an <svg> root; prints "paths panels circles texts".
well_formed() {
  "$PY" - "$1" <<'EOF'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ns = "{http://www.w3.org/2000/svg}"
assert root.tag == ns + "svg", root.tag
assert float(root.get("width")) > 0 and float(root.get("height")) > 0
panels = [g for g in root.iter(ns + "g") if (g.get("id") or "").startswith("panel-")]
texts = ["".join(t.itertext()) for t in root.iter(ns + "text")]
print(len(list(root.iter(ns + "path"))), len(panels), len(list(root.iter(ns + "circle"))),
      "|".join(texts))
EOF
}

if "$R1" plot "$TMP/a.jsonl" -o "$TMP/a.svg" >"$TMP/p.out" 2>"$TMP/p.err"; then
  ok "plot one log: $(cat "$TMP/p.out")"
else
  fail "plot failed: $(tr '\n' ' ' <"$TMP/p.err")"
fi
if info=$(well_formed "$TMP/a.svg" 2>"$TMP/wf.err"); then
  read -r paths panels circles texts <<<"$info"
  ok "a.svg is well-formed XML with an <svg> root"
  # 7 series: loss + mtp_loss + eval_loss share a panel; lr, grad_norm, tokens_per_s,
  # balance_max_vio one each.
  [ "$paths" = 7 ] && ok "7 lines (<path>)" || fail "$paths <path> elements, want 7"
  [ "$panels" = 5 ] && ok "5 panels" || fail "$panels panels, want 5"
  [ "$circles" -ge 8 ] && ok "$circles markers (eval points)" || fail "only $circles markers"
  # Texts: the title, panel titles, the x axis label, tick labels, the loss panel's legend.
  for want in "title:a.jsonl" "panel:loss, mtp_loss, eval_loss" "panel:lr" "panel:tokens_per_s" \
      "axis:step" "tick:200" "tick:400" "tick:0.0004" "legend:eval_loss"; do
    label=${want#*:}
    grep -qF "|$label|" <<<"|$texts|" && ok "${want%%:*} '$label' present" \
      || fail "no ${want%%:*} '$label'"
  done
else
  fail "a.svg is not well-formed: $(cat "$TMP/wf.err")"
fi
[ -z "$(cat "$TMP/p.err")" ] && ok "no warnings for a clean log" \
  || fail "unexpected stderr: $(cat "$TMP/p.err")"

# --series picks; loss and eval_loss share one panel with a legend.
"$R1" plot "$TMP/a.jsonl" -o "$TMP/s.svg" --series loss,eval_loss --title "nano run" \
  >/dev/null 2>&1 || fail "--series run failed"
if info=$(well_formed "$TMP/s.svg" 2>/dev/null); then
  read -r paths panels circles texts <<<"$info"
  [ "$paths" = 2 ] && [ "$panels" = 1 ] && ok "--series loss,eval_loss: 2 lines in 1 panel" \
    || fail "--series: $paths paths in $panels panels"
  grep -qF "|nano run|" <<<"|$texts|" && ok "--title used" || fail "--title missing"
else
  fail "s.svg is not well-formed"
fi

# --log-y and --smooth.
"$R1" plot "$TMP/a.jsonl" -o "$TMP/l.svg" --log-y --smooth 0.9 >/dev/null 2>&1 \
  || fail "--log-y --smooth failed"
grep -q "(log scale)" "$TMP/l.svg" && ok "--log-y: panels say log scale" \
  || fail "--log-y: no log scale"
grep -q "(smoothed)" "$TMP/l.svg" && ok "--smooth: smoothed lines drawn" || fail "--smooth: none"
well_formed "$TMP/l.svg" >/dev/null 2>&1 && ok "l.svg well-formed" || fail "l.svg not well-formed"

# Two logs overlay, legend by file name.
"$R1" plot "$TMP/a.jsonl" "$TMP/b.jsonl" -o "$TMP/ab.svg" >"$TMP/ab.out" 2>&1 \
  || fail "two logs failed: $(cat "$TMP/ab.out")"
if info=$(well_formed "$TMP/ab.svg" 2>/dev/null); then
  read -r paths panels circles texts <<<"$info"
  [ "$paths" = 10 ] && ok "two logs: 7 + 3 lines" || fail "two logs: $paths paths, want 10"
  grep -qF "|a.jsonl|" <<<"|$texts|" && grep -qF "|b.jsonl|" <<<"|$texts|" \
    && ok "legend names both files" || fail "legend lacks a file name"
else
  fail "ab.svg is not well-formed"
fi

# A run killed mid-write: the unfinished last line is a warning, the rest is drawn.
cp "$TMP/a.jsonl" "$TMP/cut.jsonl"
printf '{"step": 401, "loss": 3.0' >>"$TMP/cut.jsonl"
lines=$(wc -l <"$TMP/cut.jsonl")
if "$R1" plot "$TMP/cut.jsonl" -o "$TMP/cut.svg" >/dev/null 2>"$TMP/cut.err"; then
  grep -q "cut.jsonl:$((lines + 1)).*unfinished" "$TMP/cut.err" \
    && ok "truncated last line: warning $(cat "$TMP/cut.err")" \
    || fail "truncated last line: no warning naming the line ($(cat "$TMP/cut.err"))"
else
  fail "truncated last line should not fail: $(cat "$TMP/cut.err")"
fi

# Errors.
expect_error "missing file" "$(re_lit "$TMP/nope.jsonl")" \
  "$R1" plot "$TMP/nope.jsonl" -o "$TMP/x.svg"
printf '{"step": 1, "loss": 2}\nloss=3\n{"step": 3, "loss": 1}\n' >"$TMP/bad.jsonl"
expect_error "line not JSON" "bad\.jsonl:2" "$R1" plot "$TMP/bad.jsonl" -o "$TMP/x.svg"
printf '{"step": 1, "note": "hello"}\n{"step": 2, "ok": true}\n' >"$TMP/words.jsonl"
expect_error "no numeric series" "no numeric series" "$R1" plot "$TMP/words.jsonl" -o "$TMP/x.svg"
: >"$TMP/empty.jsonl"
expect_error "empty log" "no numeric series" "$R1" plot "$TMP/empty.jsonl" -o "$TMP/x.svg"
expect_error "unknown series" "no series 'bogus'" \
  "$R1" plot "$TMP/a.jsonl" -o "$TMP/x.svg" --series loss,bogus
stderr_has "unknown series lists the others" "eval_loss"
expect_error "no -o" "out" "$R1" plot "$TMP/a.jsonl"
expect_error "bad --smooth" "smooth" "$R1" plot "$TMP/a.jsonl" -o "$TMP/x.svg" --smooth 1.5
expect_error "unwritable output" "$(re_lit "$TMP/no/dir")" \
  "$R1" plot "$TMP/a.jsonl" -o "$TMP/no/dir/x.svg"
[ ! -e "$TMP/x.svg" ] && ok "failed runs wrote nothing" || fail "a failed run wrote $TMP/x.svg"

# Render to PNG when a converter is installed (a person's check; not required).
if command -v rsvg-convert >/dev/null 2>&1; then
  rsvg-convert -o "$TMP/a.png" "$TMP/a.svg" 2>"$TMP/rsvg.err" && [ -s "$TMP/a.png" ] \
    && ok "rsvg-convert renders it" || fail "rsvg-convert failed: $(cat "$TMP/rsvg.err")"
fi

finish
