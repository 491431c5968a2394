#!/usr/bin/env bash
# r1 --help and every sub-command's --help: exit 0 and show an example.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

check_help() {
  local label=$1
  shift
  local rc=0
  "$R1" "$@" >"$TMP/help.out" 2>"$TMP/help.err" || rc=$?
  if [ "$rc" -ne 0 ]; then
    fail "$label: exit $rc (stderr: $(head -c 300 "$TMP/help.err"))"
  elif ! grep -q "Example" "$TMP/help.out"; then
    fail "$label: output has no 'Example': $(head -c 600 "$TMP/help.out")"
  else
    ok "$label: exit 0, mentions Example"
  fi
}

check_help "r1 --help" --help
check_help "r1 -h" -h
# Every sub-command that --help lists, plus the ones this test suite relies on.
cmds=$(sed -n '/^Subcommands:/,$p' "$TMP/help.out" | grep -E '^  [a-z][a-z0-9-]* ' | awk '{print $1}' | sort -u)
for c in info forward generate init bench; do
  echo "$cmds" | grep -qx "$c" || fail "r1 --help does not list the sub-command '$c'"
done
# shellcheck disable=SC2086  # one sub-command a word
for c in $(printf '%s\n' $cmds info forward generate init bench | sort -u); do
  check_help "r1 $c --help" "$c" --help
done
finish
