// Pass (part of codegen-cuda): the CUDA kernels of the fused training program (compiler/lower/train-fused.ts)
// and the SGD update. NCHW activations, one image per grid z; per-channel work in 32×8 tiles whose
// warps are channels, so statistics are warp reductions written as per-tile partials and summed by a
// finalize kernel in a fixed order: no float atomics, bitwise the same result on every run.
import {
  applyPending,
  backwardStats,
  BLOCK,
  channelTiles,
  cppDouble,
  element,
  flat,
  forwardStats,
  inputParams,
  params,
  perElement,
  rebuildGradient,
  rebuildParams,
  statsParams,
  tileSlot,
  fusedText,
  type Consts,
  type CudaKernel,
} from './parts.js';
import { convBackwardData, convBackwardWeight, convForward, wgradReduce } from './conv.js';
import type { KernelStep, OpKind } from '../../lower/program-ir.js';

/** Shared-memory tree over the block's 256 threads, combining slot t with t + s in a fixed order. */
const blockTree = (combine: string[]) => [
  '__syncthreads();',
  'for (int s = 128; s > 0; s >>= 1) {',
  '  if (t < s) {',
  ...combine.map((l) => `    ${l}`),
  '  }',
  '  __syncthreads();',
  '}',
];

function bnFinalize(k: KernelStep, c: Consts): CudaKernel {
  // One block per channel: thread t merges tiles t, t+256, … (Chan's formula in float64), then a fixed
  // tree merges the threads. Thread 0 turns mean and M2 into scale/shift and the running statistics.
  const tiles = Math.ceil(c.HW / 32);
  const names = ['st_mean', 'st_m2', 'gamma', 'beta', { name: 'running_mean', out: true }, { name: 'running_var', out: true }, { name: 'save_mean', out: true }, { name: 'save_invstd', out: true }, { name: 'scale', out: true }, { name: 'shift', out: true }];
  const merge = (na: string, ma: string, qa: string, nb: string, mb: string, qb: string) => [
    `if (${nb} > 0.0) {`,
    `  const double total = ${na} + ${nb}, delta = ${mb} - ${ma};`,
    `  ${ma} += delta * (${nb} / total);`,
    `  ${qa} += ${qb} + delta * delta * (${na} * ${nb} / total);`,
    `  ${na} = total;`,
    '}',
  ];
  const body = [
    'NINCC_SHARED(double, cnt, 256);',
    'NINCC_SHARED(double, mu, 256);',
    'NINCC_SHARED(double, m2, 256);',
    'const int ch = int(blockIdx.x), t = int(threadIdx.x);',
    'double na = 0.0, ma = 0.0, qa = 0.0;',
    `for (long long part = t; part < (long long)n * ${tiles}; part += 256) {`,
    `  const double nb = double(min(32, ${c.HW} - int(part % ${tiles}) * 32));`,
    `  const double mb = double(st_mean[part * ${c.C} + ch]), qb = double(st_m2[part * ${c.C} + ch]);`,
    ...merge('na', 'ma', 'qa', 'nb', 'mb', 'qb').map((s) => `  ${s}`),
    '}',
    'cnt[t] = na; mu[t] = ma; m2[t] = qa;',
    ...blockTree(['double n1 = cnt[t], m1 = mu[t], q1 = m2[t];', ...merge('n1', 'm1', 'q1', 'cnt[t + s]', 'mu[t + s]', 'm2[t + s]'), 'cnt[t] = n1; mu[t] = m1; m2[t] = q1;']),
    'if (t != 0) return;',
    'const double count = cnt[0], mean = mu[0];',
    'const double biased_var = m2[0] / count;',
    'const double unbiased_var = count > 1.0 ? m2[0] / (count - 1.0) : 0.0;',
    `const float invstd = float(1.0 / sqrt(biased_var + ${cppDouble(c.eps)}));`,
    'save_mean[ch] = float(mean);',
    'save_invstd[ch] = invstd;',
    `running_mean[ch] = float((1.0 - ${cppDouble(c.momentum)}) * double(running_mean[ch]) + ${cppDouble(c.momentum)} * mean);`,
    `running_var[ch] = float((1.0 - ${cppDouble(c.momentum)}) * double(running_var[ch]) + ${cppDouble(c.momentum)} * unbiased_var);`,
    'const float sc = invstd * gamma[ch];',
    'scale[ch] = sc;',
    'shift[ch] = float(double(beta[ch]) - mean * double(sc));',
  ];
  return { params: params(k, names), body, launch: { grid: [c.C, 1, 1], block: [BLOCK, 1, 1], shared: 0 }, fused: 'BN finalize: batch mean/var → scale/shift, running statistics' };
}

function bnBackwardFinalize(k: KernelStep, c: Consts): CudaKernel {
  const tiles = Math.ceil(c.HW / 32);
  const names = ['st_dz', 'st_dzx', { name: 'dgamma', out: true }, { name: 'dbeta', out: true }];
  const body = [
    'NINCC_SHARED(double, sdz, 256);',
    'NINCC_SHARED(double, sdzx, 256);',
    'const int ch = int(blockIdx.x), t = int(threadIdx.x);',
    'double a = 0.0, b = 0.0;',
    `for (long long part = t; part < (long long)n * ${tiles}; part += 256) { a += double(st_dz[part * ${c.C} + ch]); b += double(st_dzx[part * ${c.C} + ch]); }`,
    'sdz[t] = a; sdzx[t] = b;',
    ...blockTree(['sdz[t] += sdz[t + s];', 'sdzx[t] += sdzx[t + s];']),
    'if (t == 0) { dbeta[ch] = float(sdz[0]); dgamma[ch] = float(sdzx[0]); }',
  ];
  return { params: params(k, names), body, launch: { grid: [c.C, 1, 1], block: [BLOCK, 1, 1], shared: 0 }, fused: 'BN backward finalize: dγ = Σdz·x̂, dβ = Σdz' };
}

/** The per-channel tile prologue: channel `ch` of this warp, position `j`, flat index `at` in the batch. */
const channelTile = (C: number, HW: number) => [
  'const int img = int(blockIdx.z);',
  `const int ch = int(blockIdx.y) * 8 + int(threadIdx.y), j = int(blockIdx.x) * 32 + int(threadIdx.x);`,
  `if (img >= n || ch >= ${C}) return;  // uniform over the warp (one channel)`,
  `const bool valid = j < ${HW};`,
  `const long long at = ((long long)img * ${C} + ch) * ${HW} + (valid ? j : 0);`,
];

function bnStats(k: KernelStep, c: Consts): CudaKernel {
  const body = [...channelTile(c.C, c.HW), 'const float v = valid ? x[at] : 0.0f;', ...forwardStats('v', 'valid', `min(32, ${c.HW} - int(blockIdx.x) * 32)`, tileSlot(c.C, c.HW))];
  return { params: params(k, ['x', { name: 'st_mean', out: true }, { name: 'st_m2', out: true }]), body, launch: channelTiles(c.C, c.HW), fused: 'BN statistics of a buffer no conv produced' };
}

function actApply(k: KernelStep, c: Consts): CudaKernel {
  const body = [...element(c.C * c.HW), `const long long at = (long long)img * ${c.C * c.HW} + i;`, 'float v = x[at];', ...applyPending(c, 'v', `i / ${c.HW}`), 'y[at] = v;'];
  return { params: params(k, ['x', ...inputParams(c), { name: 'y', out: true }]), body, launch: perElement(c.C * c.HW), fused: fusedText([c.inBn && 'BN scale/shift', c.inRelu && 'ReLU']) + ' (materialized for a consumer without the prologue)' };
}

function actBackwardStats(k: KernelStep, c: Consts): CudaKernel {
  const f = { ...c, outStats: true };
  const body = [...channelTile(c.C, c.HW), 'const float d = valid ? g[at] : 0.0f;', ...backwardStats(f, 'd', 'at', 'ch', 'valid', tileSlot(c.C, c.HW))];
  return { params: params(k, ['g', ...statsParams(f)]), body, launch: channelTiles(c.C, c.HW), fused: 'Σdz, Σdz·x̂ partials of a materialized value' };
}

function gradRebuild(k: KernelStep, c: Consts): CudaKernel {
  const body = [...element(c.C * c.HW), ...(c.gBn ? [`const float inv_m = 1.0f / float((long long)n * ${c.HW});`] : []), `const long long at = (long long)img * ${c.C * c.HW} + i;`, 'float d = g[at];', ...rebuildGradient(c, 'd', 'at', `i / ${c.HW}`), 'dx[at] = d;'];
  return { params: params(k, ['g', ...rebuildParams(c), { name: 'dx', out: true }]), body, launch: perElement(c.C * c.HW), fused: fusedText([c.gRelu && 'dReLU', c.gBn && 'dBN']) + ' (for a consumer without the prologue)' };
}

export function poolForward(k: KernelStep, c: Consts, max: boolean, argmax = max): CudaKernel {
  // Torch7 floor mode; max: -inf padding, ties to the first maximum, NaN wins, the argmax (h·W + w in
  // the plane, −1 for none) kept for the backward; avg: count_include_pad. Pending transform on load.
  const out = c.C * c.P * c.Q;
  const body = [
    ...element(out),
    `const int ch = i / ${c.P * c.Q}, p = i / ${c.Q} % ${c.P}, q = i % ${c.Q};`,
    `const float* plane = x + (long long)img * ${c.C * c.H * c.W} + (long long)ch * ${c.H * c.W};`,
    `const int h0 = max(p * ${c.sh} - ${c.ph}, 0), h1 = min(p * ${c.sh} - ${c.ph} + ${c.R}, ${c.H});`,
    `const int w0 = max(q * ${c.sw} - ${c.pw}, 0), w1 = min(q * ${c.sw} - ${c.pw} + ${c.S}, ${c.W});`,
    ...(max ? ['float best = -INFINITY;', 'int best_at = -1;'] : ['float sum = 0.0f;']),
    'for (int h = h0; h < h1; ++h)',
    '  for (int u = w0; u < w1; ++u) {',
    `    float e = plane[h * ${c.W} + u];`,
    ...applyPending(c, 'e', 'ch').map((s) => `    ${s}`),
    ...(max ? [`    if (best_at < 0 || e > best || e != e) { best = e; best_at = h * ${c.W} + u; }`] : ['    sum += e;']),
    '  }',
    ...(max ? [`y[(long long)img * ${out} + i] = best;`, ...(argmax ? [`argmax[(long long)img * ${out} + i] = best_at;`] : [])] : [`y[(long long)img * ${out} + i] = sum / ${cppDouble(c.R * c.S)}f;`]),
  ];
  const names = ['x', ...inputParams(c), { name: 'y', out: true }, ...(argmax ? [{ name: 'argmax', out: true, int: true }] : [])];
  return { params: params(k, names), body, launch: perElement(out), fused: fusedText([`${max ? 'max' : 'average'} pooling`, c.inBn && 'prologue: BN scale/shift', c.inRelu && 'prologue: ReLU']) };
}

function poolBackward(k: KernelStep, c: Consts, max: boolean): CudaKernel {
  // Gather, not scatter: each input position sums the output gradients of the windows that hold it
  // (max: whose argmax it is), in a fixed order; then the epilogue's BN partials for the input value.
  const HW = c.H * c.W, PQ = c.P * c.Q;
  const body = [
    ...channelTile(c.C, HW),
    `const int h = j / ${c.W}, u = j % ${c.W};`,
    'float d = 0.0f;',
    'if (valid) {',
    `  const int p_lo = h + ${c.ph} - ${c.R} + 1 <= 0 ? 0 : (h + ${c.ph} - ${c.R} + ${c.sh}) / ${c.sh};`,
    `  const int q_lo = u + ${c.pw} - ${c.S} + 1 <= 0 ? 0 : (u + ${c.pw} - ${c.S} + ${c.sw}) / ${c.sw};`,
    `  const int p_hi = min((h + ${c.ph}) / ${c.sh}, ${c.P - 1}), q_hi = min((u + ${c.pw}) / ${c.sw}, ${c.Q - 1});`,
    `  const long long plane = ((long long)img * ${c.C} + ch) * ${PQ};`,
    '  for (int p = p_lo; p <= p_hi; ++p)',
    '    for (int q = q_lo; q <= q_hi; ++q)',
    max ? `      if (argmax[plane + p * ${c.Q} + q] == j) d += g[plane + p * ${c.Q} + q];` : `      d += g[plane + p * ${c.Q} + q];`,
    ...(max ? [] : [`  d = d / ${cppDouble(c.R * c.S)}f;`]),
    '  dx[at] = d;',
    '}',
    ...backwardStats(c, 'd', 'at', 'ch', 'valid', tileSlot(c.C, HW)),
  ];
  const names = ['g', ...(max ? [{ name: 'argmax', int: true }] : []), { name: 'dx', out: true }, ...statsParams(c)];
  return { params: params(k, names), body, launch: channelTiles(c.C, HW), fused: fusedText([`${max ? 'max' : 'average'} pooling backward`, c.outStats && 'epilogue: Σdz, Σdz·x̂ partials of the input BN']) };
}

/** y = x·wᵀ (+ b) (then ReLU for an inference linear whose ReLU was fused), one thread per output. */
export function linearForward(k: KernelStep, c: Consts): CudaKernel {
  const names = ['x', 'w', ...(c.bias ? ['b'] : []), { name: 'y', out: true }];
  const body = [
    ...element(c.out),
    `const float* xi = x + (long long)img * ${c.in};`,
    `const float* wo = w + (long long)i * ${c.in};`,
    'float acc = 0.0f;',
    `for (int j = 0; j < ${c.in}; ++j) acc = fmaf(xi[j], wo[j], acc);`,
    ...(c.bias ? ['acc += b[i];'] : []),
    ...(c.relu ? ['acc = acc > 0.0f ? acc : 0.0f;'] : []),
    `y[(long long)img * ${c.out} + i] = acc;`,
  ];
  return { params: params(k, names), body, launch: perElement(c.out) };
}

function linearBackwardData(k: KernelStep, c: Consts): CudaKernel {
  const body = [...element(c.in), `const float* gi = g + (long long)img * ${c.out};`, 'float acc = 0.0f;', `for (int o = 0; o < ${c.out}; ++o) acc = fmaf(gi[o], w[(long long)o * ${c.in} + i], acc);`, `dx[(long long)img * ${c.in} + i] = acc;`];
  return { params: params(k, ['g', 'w', { name: 'dx', out: true }]), body, launch: perElement(c.in) };
}

function linearBackwardWeight(k: KernelStep, c: Consts): CudaKernel {
  // One thread per weight (then per bias): the batch summed in image order.
  const weights = c.out * c.in;
  const body = [
    'const long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;',
    `if (e < ${weights}) {`,
    `  const int o = int(e / ${c.in}), i = int(e % ${c.in});`,
    '  float acc = 0.0f;',
    `  for (int img = 0; img < n; ++img) acc = fmaf(g[(long long)img * ${c.out} + o], x[(long long)img * ${c.in} + i], acc);`,
    '  dw[e] = acc;',
    ...(c.bias ? ['} else if (e < ' + (weights + c.out) + ') {', `  const int o = int(e - ${weights});`, '  float acc = 0.0f;', `  for (int img = 0; img < n; ++img) acc += g[(long long)img * ${c.out} + o];`, '  db[o] = acc;'] : []),
    '}',
  ];
  const names = ['x', 'g', { name: 'dw', out: true }, ...(c.bias ? [{ name: 'db', out: true }] : [])];
  return { params: params(k, names), body, launch: flat(weights + (c.bias ? c.out : 0)) };
}

function softmaxBackward(k: KernelStep, c: Consts, log: boolean): CudaKernel {
  // One warp per image. log: dx = g − exp(y)·Σg. softmax: dx = y·(g − Σ g·y).
  const body = [
    'const int img = int(blockIdx.z), lane = int(threadIdx.x);',
    'if (img >= n) return;',
    `const long long row = (long long)img * ${c.classes};`,
    'float s = 0.0f;',
    `for (int j = lane; j < ${c.classes}; j += 32) s += ${log ? 'g[row + j]' : 'g[row + j] * y[row + j]'};`,
    's = nincc::warp_sum(s);',
    `for (int j = lane; j < ${c.classes}; j += 32) dx[row + j] = ${log ? 'g[row + j] - expf(y[row + j]) * s' : 'y[row + j] * (g[row + j] - s)'};`,
  ];
  return { params: params(k, ['y', 'g', { name: 'dx', out: true }]), body, launch: { grid: [1, 1, 1], batchAxis: 2, block: [32, 1, 1], shared: 0 } };
}

function nllLoss(k: KernelStep, c: Consts): CudaKernel {
  // loss = −(1/N)·Σ logp[n][label n] (float64, image order; NaN for a label out of range, as the cpu
  // device); dlogp = −1/N at each label, 0 elsewhere.
  const body = [
    'const int t = int(threadIdx.x);',
    'if (t == 0) {',
    '  double sum = 0.0;',
    '  bool bad = false;',
    `  for (int img = 0; img < n; ++img) { const int label = labels[img]; if (label < 0 || label >= ${c.classes}) bad = true; else sum += double(logp[(long long)img * ${c.classes} + label]); }`,
    '  loss[0] = bad ? NAN : (n > 0 ? float(-sum / n) : 0.0f);',
    '}',
    'const float grad = -1.0f / float(n);',
    `for (long long e = t; e < (long long)n * ${c.classes}; e += blockDim.x) {`,
    `  const int img = int(e / ${c.classes}), j = int(e % ${c.classes});`,
    '  dlogp[e] = labels[img] == j ? grad : 0.0f;',
    '}',
  ];
  return { params: params(k, ['logp', { name: 'labels', int: true }, { name: 'loss', out: true }, { name: 'dlogp', out: true }]), body, launch: { grid: [1, 1, 1], block: [BLOCK, 1, 1], shared: 0 } };
}

function dropout(k: KernelStep, c: Consts, forward: boolean): CudaKernel {
  // Torch7 nn.Dropout (v2): kept elements scaled by 1/(1 − p). The mask is the cpu kernels' own
  // (nincc::dropout_keeps over the batch-flat element index, the call seed salted by the layer), so
  // both devices drop the same elements and the backward redraws the forward's mask.
  const scale = c.p < 1 ? `(1.0f / (1.0f - ${cppDouble(c.p)}f))` : '0.0f'; // in float, as the cpu kernel computes it
  const body = [
    ...element(c.count),
    `const long long at = (long long)img * ${c.count} + i;`,
    ...(c.p <= 0
      ? ['(void)seed;', `${forward ? 'y' : 'dx'}[at] = ${forward ? 'x' : 'g'}[at];`]
      : [
          `const unsigned long long salted = seed ^ (0x9E3779B97F4A7C15ull * ${k.layer}ull);`,
          `const bool keep = nincc::dropout_keeps(salted, (unsigned long long)at, ${cppDouble(c.p)}f);`,
          forward ? `y[at] = keep ? x[at] * ${scale} : 0.0f;` : `dx[at] = keep ? g[at] * ${scale} : 0.0f;`,
        ]),
  ];
  const names = forward ? ['x', { name: 'y', out: true }] : ['g', { name: 'dx', out: true }];
  return { params: params(k, names, [], true), body, launch: { ...perElement(c.count), seed: true }, fused: `dropout ${forward ? 'mask' : 'backward'} (mask recomputed from the call seed, never stored)` };
}

function sgdUpdate(k: KernelStep, c: Consts): CudaKernel {
  // torch/optim sgd in its order (runtime/include/nincc/cpu/sgd.h): weight decay into g, momentum
  // buffer (= g on the first step after a reset), then w ← w − lr·buf.
  const body = [
    'const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;',
    `if (i >= ${c.count}) return;`,
    '(void)n;',
    'float grad = g[i];',
    'if (wd != 0.0f) { grad = grad + wd * w[i]; g[i] = grad; }',
    'if (momentum != 0.0f) { const float buf = first != 0.0f ? grad : momentum * mom[i] + grad; mom[i] = buf; grad = buf; }',
    'w[i] = w[i] - lr * grad;',
  ];
  return { params: params(k, [{ name: 'w', out: true }, { name: 'g', out: true }, { name: 'mom', out: true }], ['lr', 'wd', 'momentum', 'first']), body, launch: flat(c.count) };
}

type Generator = (k: KernelStep, c: Consts) => CudaKernel;

const generators: Partial<Record<OpKind, Generator>> = {
  conv_fwd_fused: convForward,
  conv_dgrad_fused: convBackwardData,
  conv_wgrad_fused: convBackwardWeight,
  wgrad_reduce: wgradReduce,
  bn_stats: bnStats,
  bn_finalize: bnFinalize,
  bn_bwd_finalize: bnBackwardFinalize,
  act_apply: actApply,
  act_bwd_stats: actBackwardStats,
  grad_rebuild: gradRebuild,
  maxpool_fwd_fused: (k, c) => poolForward(k, c, true),
  avgpool_fwd_fused: (k, c) => poolForward(k, c, false),
  maxpool_bwd_fused: (k, c) => poolBackward(k, c, true),
  avgpool_bwd_fused: (k, c) => poolBackward(k, c, false),
  linear_fwd: linearForward,
  linear_bwd_data: linearBackwardData,
  linear_bwd_weight: linearBackwardWeight,
  logsoftmax_bwd: (k, c) => softmaxBackward(k, c, true),
  softmax_bwd: (k, c) => softmaxBackward(k, c, false),
  dropout_fwd: (k, c) => dropout(k, c, true),
  dropout_bwd: (k, c) => dropout(k, c, false),
  nll_loss: nllLoss,
  sgd_update: sgdUpdate,
};

/** The kernel of a training-program step, or undefined for an op this file does not generate. */
export function trainKernel(k: KernelStep): CudaKernel | undefined {
  return generators[k.op]?.(k, k.consts as Consts);
}
