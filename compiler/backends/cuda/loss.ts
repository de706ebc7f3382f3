// CUDA kernels of the loss family: softmax/logsoftmax backward and the nll loss.
import { BLOCK, params, type Consts, type CudaKernel } from './parts.js';
import type { KernelStep } from '../../lower/program-ir.js';

export function softmaxBackward(k: KernelStep, c: Consts<'logsoftmax_bwd' | 'softmax_bwd'>, log: boolean): CudaKernel {
  // One warp per image. log: dx = g − exp(y)·Σg. softmax: dx = y·(g − Σ g·y).
  const body = [
    'const int img = int(blockIdx.z), lane = int(threadIdx.x);',
    'if (img >= n) return;',
    `const long long row = (long long)img * ${c.classes};`,
    'float s = 0.0f;',
    `for (int j = lane; j < ${c.classes}; j += 32) s += ${log ? 'nincc::ld(&g[row + j])' : 'nincc::ld(&g[row + j]) * nincc::ld(&y[row + j])'};`,
    's = nincc::warp_sum(s);',
    `for (int j = lane; j < ${c.classes}; j += 32) nincc::st(&dx[row + j], ${log ? 'nincc::ld(&g[row + j]) - expf(nincc::ld(&y[row + j])) * s' : 'nincc::ld(&y[row + j]) * (nincc::ld(&g[row + j]) - s)'});`,
  ];
  return { params: params(k, ['y', 'g', { name: 'dx', out: true }]), body, launch: { grid: [1, 1, 1], batchAxis: 2, block: [32, 1, 1], shared: 0 } };
}

export function nllLoss(k: KernelStep, c: Consts<'nll_loss'>): CudaKernel {
  // loss = −(1/N)·Σ logp[n][label n] (float64, image order; NaN for a label out of range, as the cpu
  // device); dlogp = −1/N at each label, 0 elsewhere.
  const body = [
    'const int t = int(threadIdx.x);',
    'if (t == 0) {',
    '  double sum = 0.0;',
    '  bool bad = false;',
    `  for (int img = 0; img < n; ++img) { const int label = nincc::ld(&labels[img]); if (label < 0 || label >= ${c.classes}) bad = true; else sum += double(nincc::ld(&logp[(long long)img * ${c.classes} + label])); }`,
    '  nincc::st(&loss[0], bad ? NAN : (n > 0 ? float(-sum / n) : 0.0f));',
    '}',
    'const float grad = -1.0f / float(n);',
    `for (long long e = t; e < (long long)n * ${c.classes}; e += blockDim.x) {`,
    `  const int img = int(e / ${c.classes}), j = int(e % ${c.classes});`,
    '  nincc::st(&dlogp[e], nincc::ld(&labels[img]) == j ? grad : 0.0f);',
    '}',
  ];
  return { params: params(k, ['logp', { name: 'labels', int: true }, { name: 'loss', out: true }, { name: 'dlogp', out: true }]), body, launch: { grid: [1, 1, 1], block: [BLOCK, 1, 1], shared: 0 } };
}
