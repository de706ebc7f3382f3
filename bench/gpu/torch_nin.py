#!/usr/bin/env python3
"""GPU benchmark, the PyTorch half: the NIN of models/nin.model in PyTorch on the same card as nincc
(bench/gpu/run.sh): eager + cuDNN in fp32 and in bf16 autocast, channels_last, and torch.compile
(bf16 autocast); training step (forward, NLL, backward, SGD momentum 0.9, weight decay 5e-4) and
inference, images/s at the given batch sizes.
  python3 bench/gpu/torch_nin.py [--batches 128,1] [--runs 20] [--warmup 5] [--no-compile] [--json FILE]
A dry run of the script itself where there is no GPU: --device cpu --batches 2,1 --runs 1 --warmup 1 --no-compile.
"""
import argparse
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def block(nip, nop, k, s, p):
    # conv-bn-relu, then two 1x1 conv-bn-relu (ninbn.lua); BN eps 1e-3 as in the spec.
    layers = []
    for i, (cin, kk, ss, pp) in enumerate([(nip, k, s, p), (nop, 1, 1, 0), (nop, 1, 1, 0)]):
        layers += [nn.Conv2d(cin, nop, kk, ss, pp), nn.BatchNorm2d(nop, eps=1e-3), nn.ReLU(inplace=True)]
    return layers


def nin(classes=1000):
    mp = lambda: nn.MaxPool2d(3, 2, 1)  # noqa: E731
    return nn.Sequential(
        *block(3, 96, 11, 4, 5), mp(),
        *block(96, 256, 5, 1, 2), mp(),
        *block(256, 384, 3, 1, 1), mp(),
        *block(384, 1024, 3, 1, 1),
        nn.AvgPool2d(7, 1), nn.Flatten(), nn.Linear(1024, classes), nn.LogSoftmax(dim=1),
    )


def timed(fn, runs, warmup, sync):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--batches', default='128,1')
    ap.add_argument('--runs', type=int, default=20)
    ap.add_argument('--warmup', type=int, default=5)
    ap.add_argument('--no-compile', action='store_true')
    ap.add_argument('--json')
    ap.add_argument('--device', default='cuda', choices=['cuda', 'cpu'])
    args = ap.parse_args()
    if args.device == 'cuda' and not torch.cuda.is_available():
        print('torch_nin.py: torch.cuda is not available; nothing to compare', file=sys.stderr)
        return 2
    torch.backends.cudnn.benchmark = True
    # "fp32" means fp32 (no TF32), as nincc's fp32 kernels.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if args.device == 'cuda' else (lambda: None)
    batches = [int(b) for b in args.batches.split(',')]
    configs = [('torch eager fp32', torch.float32, False), ('torch eager bf16', torch.bfloat16, False)]
    if not args.no_compile:
        configs.append(('torch.compile bf16', torch.bfloat16, True))
    rows = []
    for name, dtype, compiled in configs:
        torch.manual_seed(1)
        model = nin().to(dev).to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
        try:
            train_fwd = torch.compile(model) if compiled else model
        except Exception as e:  # no torch.compile (PyTorch < 2) or it cannot wrap the model: keep the other rows
            note = f'torch.compile unavailable: {str(e).splitlines()[0][:120]}'
            for n in batches:
                for mode in ('train', 'infer'):
                    rows.append({'engine': name, 'mode': mode, 'batch': n, 'note': note})
                    print(f"{name:<20} {mode:<5} batch {n:>3}  n/a: {note}", flush=True)
            continue
        for n in batches:
            x = torch.randn(n, 3, 224, 224, device=dev).to(memory_format=torch.channels_last)
            y = torch.randint(0, 1000, (n,), device=dev)
            autocast = lambda: torch.autocast(args.device, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16)  # noqa: E731

            def train():
                model.train()
                opt.zero_grad(set_to_none=True)
                with autocast():
                    loss = F.nll_loss(train_fwd(x), y)
                loss.backward()
                opt.step()

            def infer():
                model.eval()
                with torch.inference_mode(), autocast():
                    train_fwd(x)

            for mode, fn in (('train', train), ('infer', infer)):
                try:
                    s = timed(fn, args.runs, args.warmup + (3 if compiled else 0), sync)
                    row = {'engine': name, 'mode': mode, 'batch': n, 'msPerRun': s * 1e3, 'imagesPerSecond': n / s}
                    print(f"{name:<20} {mode:<5} batch {n:>3}  {n / s:>9.1f} images/s  ({s * 1e3:.2f} ms/run, median of {args.runs})", flush=True)
                except Exception as e:  # a compile failure must not lose the other figures
                    row = {'engine': name, 'mode': mode, 'batch': n, 'note': str(e).splitlines()[0][:160]}
                    print(f"{name:<20} {mode:<5} batch {n:>3}  n/a: {row['note']}", flush=True)
                rows.append(row)
    info = {'torch': torch.__version__, 'cudnn': torch.backends.cudnn.version(), 'gpu': torch.cuda.get_device_name(0) if args.device == 'cuda' else 'cpu (dry run)', 'rows': rows}
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(info, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
