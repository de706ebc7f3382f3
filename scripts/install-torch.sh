#!/usr/bin/env bash
# Installs Debian's PyTorch (python3-torch, 1.13 with oneDNN, CPU only) for `npm run bench:cpu`'s PyTorch
# column; the tests never need it. Idempotent; as root it runs apt-get, otherwise it says what to run.
set -euo pipefail
say() { echo "install-torch: $*"; }
# Debian's python3-torch goes under /usr/bin/python3, which a pyenv or venv python3 on PATH does not see.
for python in python3 /usr/bin/python3; do
  if "$python" -c 'import torch, numpy' 2>/dev/null; then
    say "$python imports torch $("$python" -c 'import torch; print(torch.__version__)'); nothing to do"
    exit 0
  fi
done
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  say "python3 has no torch; run as root: apt-get install python3-torch (or leave the column out: NINCC_BENCH_TORCH=0)" >&2
  exit 1
fi
say "installing python3-torch with apt-get (about 240 packages, once)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq python3-torch python3-numpy >/dev/null
say "/usr/bin/python3 imports torch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)')"
