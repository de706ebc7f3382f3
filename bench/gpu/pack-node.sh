#!/usr/bin/env bash
# Packs this machine's node binary for a GPU machine that has none: bench/gpu/node.xz (~24 MB,
# git-ignored), which bench/gpu/run.sh unpacks when `node` is missing. Node's release binary needs
# only glibc and libstdc++, so it runs on any x86-64 Linux of the same or newer glibc.
set -euo pipefail
cd "$(dirname "$0")"
node=$(command -v node)
xz -T0 -c "$node" > node.xz
echo "packed $node ($(node --version)) into bench/gpu/node.xz ($(du -h node.xz | cut -f1))"
