#!/usr/bin/env bash
# Installs everything nincc needs on a fresh Debian 12 machine (as root, like CI): the toolchain and
# data packages, the npm dependencies, the compiled TypeScript and the native addon. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v g++ >/dev/null || need_apt+=(g++)
command -v cmake >/dev/null || need_apt+=(cmake)
command -v make >/dev/null || need_apt+=(make)
if ((${#need_apt[@]})); then
  echo "setup: installing ${need_apt[*]}"
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
bash scripts/install-deps.sh

# npm ci runs this package's own scripts: `prepare` compiles the TypeScript, `install` builds the addon.
if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
else
  echo "setup: node_modules is current; rebuilding the TypeScript and the addon"
  npm run build
fi
