#!/usr/bin/env bash
# The main job, on a fresh machine with no GPU, in a few minutes on 2 cores: install, show NIN as Torch7
# printed it, build it for the CPU, train the small Fashion-MNIST NIN on the subset shipped in
# test/data/fashion-mnist-mini, evaluate it and print its accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
nincc() { node bin/nincc "$@"; }

echo; echo "== nincc inspect models/nin.model"
nincc inspect models/nin.model
echo; echo "== nincc build models/nin.model (CPU, batch up to 2)"
nincc build models/nin.model -o build/nin --max-batch 2
echo; echo "== nincc train models/nin-fashion.model on 6,000 shipped Fashion-MNIST images"
rm -rf runs/demo
nincc train models/nin-fashion.model --data test/data/fashion-mnist-mini -o runs/demo --epochs 3
echo; echo "== nincc eval on the 1,000 shipped test images"
nincc eval build/nin_fashion --weights runs/demo/checkpoint.safetensors --data test/data/fashion-mnist-mini
