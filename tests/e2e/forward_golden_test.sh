#!/usr/bin/env bash
# Forward pass vs golden logits and hidden states, for every golden model folder
# (and, for DeepSeek models, also with the naive MLA form).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

n=0
for dir in $(golden_dirs); do
  name=$(basename "$dir")
  n=$((n + 1))
  [ -f "$dir/golden.json" ] || { fail "$name: golden.json missing"; continue; }
  arch=$(json_get "$dir/model/config.json" '(j.get("architectures") or [""])[0]')
  $ST extract "$dir/golden.safetensors" "$TMP/$name.in.safetensors" input_ids
  modes=(absorbed)
  case "$arch" in Deepseek*) modes=(absorbed naive) ;; esac
  for mla in "${modes[@]}"; do
    out="$TMP/$name.$mla.out.safetensors"
    args=(forward -m "$dir/model" --input "$TMP/$name.in.safetensors" -o "$out" --hidden)
    label="$name"
    case "$arch" in Deepseek*) args+=(--mla "$mla"); label="$name/mla=$mla" ;; esac
    echo "== $label ($arch): r1 ${args[*]}"
    rc=0
    "$R1" "${args[@]}" >"$TMP/fwd.log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
      fail "$label: r1 forward exited $rc: $(tail -c 500 "$TMP/fwd.log")"
      continue
    fi
    if $ST compare "$dir/golden.safetensors" "$out" "$dir/golden.json" "$label"; then
      ok "$label logits + hidden states within tolerance"
    else
      fail "$label: logits/hidden differ from golden beyond tolerance (see above)"
    fi
  done
done
[ "$n" -gt 0 ] || fail "no golden folders with golden.safetensors in $GOLDEN"
finish
