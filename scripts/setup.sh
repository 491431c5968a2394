#!/usr/bin/env bash
# Installs every Debian 12 package the build, the tests and the benchmarks need.
# Non-interactive and idempotent: packages already present are left alone.
set -euo pipefail

packages=(
  build-essential cmake g++ git python3 pkg-config
  nlohmann-json3-dev      # JSON (config.json, safetensors headers, CLI output)
  libcli11-dev            # command-line flags
  libgtest-dev libgmock-dev  # unit and golden tests
  libbenchmark-dev        # bench/
  libhwy-dev              # SIMD dispatch (kernels)
  libpcre2-dev libutf8proc-dev  # tokenizer pre-tokenizers and normalization
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
