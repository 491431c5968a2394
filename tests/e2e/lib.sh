# Shared helpers for the e2e tests. Source it after `set -euo pipefail`:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# It sets R1 (the binary), GOLDEN (the golden dir), PY (python3), ST ($PY st.py), TMP (a temp dir
# removed on exit), and FAILS (count of failed checks; call `finish` at the end).

if [ $# -lt 2 ]; then
  echo "usage: bash $0 <path-to-r1-binary> <golden-dir>" >&2
  exit 2
fi
R1=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
GOLDEN=$(cd "$2" && pwd)
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Resolve the real interpreter once (a pyenv shim costs ~0.3 s per call).
PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) || PY=python3
[ -n "$PY" ] || PY=python3
# shellcheck disable=SC2034  # used by the sourcing scripts
ST="$PY $E2E_DIR/st.py"
[ -x "$R1" ] || { echo "FAIL: r1 binary not found or not executable: $R1" >&2; exit 2; }
[ -d "$GOLDEN" ] || { echo "FAIL: golden dir not found: $GOLDEN" >&2; exit 2; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/r1e2e.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
FAILS=0

fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }

finish() {
  if [ "$FAILS" -ne 0 ]; then
    echo "$(basename "$0"): $FAILS check(s) FAILED" >&2
    exit 1
  fi
  echo "$(basename "$0"): all checks passed"
}

# Golden model folders: every sub-folder with a golden.safetensors.
golden_dirs() {
  local d
  for d in "$GOLDEN"/*/; do
    d=${d%/}
    [ -f "$d/golden.safetensors" ] && echo "$d"
  done
  return 0
}

# check_json FILE PYEXPR MESSAGE: ok if the Python expression (on the parsed JSON `j`, with math
# imported) is true, else fail with the start of the file.
check_json() {
  if "$PY" -c 'import json,math,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" 2>"$TMP/cj.err"; then
    ok "$3"
  else
    fail "$3: check [$2] failed on $(head -c 1500 "$1" | tr '\n' ' ') $(head -c 300 "$TMP/cj.err")"
  fi
}

# run_ok LABEL OUTFILE CMD...: CMD must exit 0; stdout goes to OUTFILE (an empty JSON object
# when it fails, so later check_json calls report instead of crashing).
run_ok() {
  local label=$1 outf=$2
  shift 2
  local rc=0
  "$@" >"$outf" 2>"$TMP/run.err" || rc=$?
  if [ "$rc" -ne 0 ]; then
    fail "$label: '$*' exited $rc: $(tail -c 500 "$TMP/run.err")"
    echo '{}' >"$outf"
    return 1
  fi
  ok "$label"
}

# json_get FILE EXPR: evaluate a python expression on the parsed JSON `j` and print it.
json_get() {
  "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(json.dumps(v) if isinstance(v,(list,dict,bool)) or v is None else v)' "$1" "$2"
}

# expect_error DESC WANT CMD...: CMD must exit with status 1 (a handled error, not a crash
# or signal) and print WANT on stderr (an extended regex, case-insensitive; in most calls
# just a literal name). stdout/stderr stay in $TMP/ee.out / $TMP/ee.err for more checks.
expect_error() {
  local desc=$1 want=$2
  shift 2
  local rc=0
  "$@" >"$TMP/ee.out" 2>"$TMP/ee.err" || rc=$?
  local err
  err=$(head -c 800 "$TMP/ee.err" | tr '\n' ' ')
  if [ "$rc" -eq 0 ]; then
    fail "$desc: expected a non-zero exit, got 0 (stderr: $err)"
  elif [ "$rc" -ne 1 ]; then
    fail "$desc: expected exit status 1, got $rc (crash/signal?) (stderr: $err)"
  elif ! grep -qiE -- "$want" "$TMP/ee.err"; then
    fail "$desc: exit 1 but stderr does not mention '$want' (stderr: $err)"
  else
    ok "$desc -> exit 1, stderr: $err"
  fi
}

# stderr_has DESC WANT: the last expect_error's stderr also matches WANT (ERE, case-insensitive).
stderr_has() {
  if grep -qiE -- "$2" "$TMP/ee.err"; then ok "$1: stderr mentions '$2'"
  else fail "$1: stderr does not mention '$2' (stderr: $(head -c 800 "$TMP/ee.err" | tr '\n' ' '))"; fi
}

# Regex-escape a literal (for names with dots) for use as WANT.
re_lit() { printf '%s' "$1" | sed 's/[][\.*^$+?(){}|/]/\\&/g'; }
