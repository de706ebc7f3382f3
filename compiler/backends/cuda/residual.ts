// CUDA kernels of a residual block's add in the fused training program (lower/train-fused.ts, docs/design.md
// §4): the forward applies each branch end's pending BN/ReLU on load, sums and applies the block's ReLU in
// one pass; the backward masks the gradient by that ReLU and writes each end's BN partials in one pass.
import type { KernelStep } from '../../lower/program-ir.js';
import { maskFromEnds } from '../../lower/ops.js';
import { channelTile } from './bn.js';
import { channelTiles, element, params, perElement, tileSlot, type Consts, type CudaKernel, type Param } from './parts.js';
import { divisor, poolGather, poolWindow } from './pool.js';

/**
 * `v = relu?(scale·v + shift)` with branch end p's pending transform (the same fmaf the backward's mask recomputes);
 * its buffers are `${buf}_scale`, `${buf}_shift` (buf: the end's buffer, p unless a kernel names it otherwise).
 */
const applyEnd = (p: 'a' | 'b', bn: boolean, relu: boolean, ch: string, buf: string = p) => [
  ...(bn ? [`${p}v = nincc::ffma(${p}v, nincc::ld(&${buf}_scale[${ch}]), nincc::ld(&${buf}_shift[${ch}]));`] : []),
  ...(relu ? [`${p}v = ${p}v > 0.0f ? ${p}v : 0.0f;`] : []),
];

/** A residual add's branch ends (each one's pending BN and ReLU) and the block's ReLU after their sum. */
export interface EndsSum {
  readonly aBn: boolean;
  readonly aRelu: boolean;
  readonly bBn: boolean;
  readonly bRelu: boolean;
  readonly relu: boolean;
}

/**
 * `float ${sum} = relu?(end_a + end_b)` at element `at` of channel `ch`, each end with its pending transform applied,
 * the ends read from buffers `${prefix}a`, `${prefix}b`: the arithmetic of every kernel that adds a residual block
 * (add_apply, the average pool and the conv that add as they load), so that each computes the same bits.
 */
export const endsSum = (c: EndsSum, at: string, prefix = '', sum = 'v') => [
  `float av = nincc::ld(&${prefix}a[${at}]);`,
  ...applyEnd('a', c.aBn, c.aRelu, 'ch', `${prefix}a`),
  `float bv = nincc::ld(&${prefix}b[${at}]);`,
  ...applyEnd('b', c.bBn, c.bRelu, 'ch', `${prefix}b`),
  `float ${sum} = av + bv;`,
  ...(c.relu ? [`${sum} = ${sum} > 0.0f ? ${sum} : 0.0f;`] : []),
];

type Ends = Consts<'add_apply' | 'avgpool_add_fwd' | 'avgpool_add_bwd'>;

const endsParams = (c: Ends) => ['a', ...(c.aBn ? ['a_scale', 'a_shift'] : []), 'b', ...(c.bBn ? ['b_scale', 'b_shift'] : [])];

/** What the sum applies, for report.txt. */
export function endsText(c: EndsSum): string {
  const ends = [c.aBn && 'BN', c.aRelu && 'ReLU'].filter(Boolean).join('+');
  const shortcut = [c.bBn && 'BN', c.bRelu && 'ReLU'].filter(Boolean).join('+');
  return `residual add${ends ? ` (branch end's pending ${ends} applied on load)` : ''}${shortcut ? ` (shortcut's pending ${shortcut} applied on load)` : ''}${c.relu ? ' + ReLU' : ''}`;
}

/** y = relu?(end_a + end_b), each end with its pending transform applied. */
export function addApply(k: KernelStep, c: Consts<'add_apply'>): CudaKernel {
  const count = c.C * c.HW;
  const body = [
    ...element(count),
    `const long long at = (long long)img * ${count} + i;`,
    ...(c.aBn || c.bBn ? [`const int ch = i / ${c.HW};`] : []),
    ...endsSum(c, 'at'),
    'nincc::st(&y[at], v);',
  ];
  return { params: params(k, [...endsParams(c), { name: 'y', out: true }]), body, launch: perElement(count), fused: endsText(c) };
}

/**
 * Average pooling of a residual block's output that is never stored: each window element is the sum
 * relu?(end_a + end_b) computed on load, the same arithmetic as add_apply's and then the pool's, in the
 * same order, so the pooled values are bitwise those of add_apply followed by avgpool_fwd_fused.
 */
export function avgpoolAddForward(k: KernelStep, c: Consts<'avgpool_add_fwd'>): CudaKernel {
  const out = c.K * c.P * c.Q;
  const body = [
    ...element(out),
    `const int ch = i / ${c.P * c.Q}, p = i / ${c.Q} % ${c.P}, q = i % ${c.Q};`,
    `const long long plane = (long long)img * ${c.C * c.H * c.W} + (long long)ch * ${c.H * c.W};`,
    ...poolWindow(c),
    'float sum = 0.0f;',
    'for (int h = h0; h < h1; ++h)',
    '  for (int u = w0; u < w1; ++u) {',
    ...endsSum(c, `plane + h * ${c.W} + u`).map((line) => `    ${line}`),
    '    sum += v;',
    '  }',
    `nincc::st(&y[(long long)img * ${out} + i], sum / ${divisor(c)});`,
  ];
  return { params: params(k, [...endsParams(c), { name: 'y', out: true }]), body, launch: perElement(out), fused: `average pooling of the ${endsText(c)}, the sum never stored` };
}

/** Branch end p's pending value relu?(scale·y + shift) from its raw `${p}y`, as `${p}v`: add_apply's applyEnd, the same fmaf. */
const endValue = (p: 'a' | 'b', relu: boolean, bn = true) => [`float ${p}v = ${p}y;`, ...applyEnd(p, bn, relu, 'ch')];

/**
 * Branch end p's dz (its pending ReLU's mask of d) and dz·x̂ at this lane's position into the caller's `dzv`, `dzx`
 * (0.0f where not `valid`); `${p}y` is its raw value.
 */
export const endGradient = (p: 'a' | 'b', relu: boolean) => [
  'if (valid) {',
  `  dzv = ${relu ? `nincc::ffma(${p}y, nincc::ld(&${p}_scale[ch]), nincc::ld(&${p}_shift[ch])) > 0.0f ? d : 0.0f` : 'd'};`,
  `  dzx = dzv * ((${p}y - nincc::ld(&${p}_mean[ch])) * nincc::ld(&${p}_invstd[ch]));`,
  '}',
];

/** Branch end p's Σdz, Σdz·x̂ partials from this lane's gradient d (the warp is one channel); `${p}y` is its raw value. */
const endStats = (p: 'a' | 'b', relu: boolean, slot: string) => [
  '{',
  '  float dzv = 0.0f, dzx = 0.0f;',
  ...endGradient(p, relu).map((s) => `  ${s}`),
  '  dzv = nincc::warp_sum(dzv);',
  '  dzx = nincc::warp_sum(dzx);',
  `  if (threadIdx.x == 0) { nincc::st(&${p}_dz[${slot}], dzv); nincc::st(&${p}_dzx[${slot}], dzx); }`,
  '}',
];

const endParams = (p: 'a' | 'b', on: boolean): Param[] =>
  on ? [...['y', 'scale', 'shift', 'mean', 'invstd'].map((n) => ({ name: `${p}_${n}` })), { name: `${p}_dz`, out: true }, { name: `${p}_dzx`, out: true }] : [];

/** The block's ReLU and the branch ends whose pending BN takes partials of the add's gradient (add_bwd_fused's consts). */
export interface AddBackward {
  readonly relu: boolean;
  readonly aStats: boolean;
  readonly aRelu: boolean;
  readonly bStats: boolean;
  readonly bRelu: boolean;
}

/** The residual add whose backward a conv_dgrad_fused does in its epilogue (addBwd), as add_bwd_fused's consts. */
export const addBackwardOfDgrad = (c: Consts<'conv_dgrad_fused'>): AddBackward | undefined =>
  c.addBwd === true ? { relu: c.sumRelu === true, aStats: c.aStats === true, aRelu: c.aRelu === true, bStats: c.bStats === true, bRelu: c.bRelu === true } : undefined;

/**
 * The add's backward given this lane's gradient `d` of its output at `at` (channel `ch`, `valid`; the warp is one
 * channel, 32 positions): d masked by the block's ReLU ([y > 0], or recomputed from the two ends), stored in `store`
 * (none: the caller's), and each end's Σdz, Σdz·x̂ partials at `slot`. add_bwd_fused's body, and the epilogue of the
 * data gradient of the conv that reads the add first (conv.ts addBackward): the same arithmetic, the same bits.
 * `stats`: the ends' partials from d where the warp is not one channel's 32 positions (conv-mma-add-bwd.ts).
 */
export function addBackwardOf(c: AddBackward, slot: string, store: string | undefined, stats = (p: 'a' | 'b', relu: boolean) => endStats(p, relu, slot)): string[] {
  const fromEnds = maskFromEnds(c);
  return [
    ...(c.aStats ? ['const float ay = valid ? nincc::ld(&a_y[at]) : 0.0f;'] : []),
    ...(c.bStats ? ['const float by = valid ? nincc::ld(&b_y[at]) : 0.0f;'] : []),
    ...(c.relu && fromEnds ? ['{', ...endValue('a', c.aRelu), ...endValue('b', c.bRelu), '  if (valid && !(av + bv > 0.0f)) d = 0.0f;', '}'] : []),
    ...(c.relu && !fromEnds ? ['if (valid && !(nincc::ld(&y[at]) > 0.0f)) d = 0.0f;'] : []),
    ...(store ? [`if (valid) nincc::st(&${store}[at], d);`] : []),
    ...(c.aStats ? stats('a', c.aRelu) : []),
    ...(c.bStats ? stats('b', c.bRelu) : []),
  ];
}

/** addBackwardOf's input buffers (the mask's y, the ends' a_*, b_*) and partials, in add_bwd_fused's order. */
export const addBackwardParams = (c: AddBackward): Param[] => [...(c.relu && !maskFromEnds(c) ? [{ name: 'y' }] : []), ...endParams('a', c.aStats), ...endParams('b', c.bStats)];

/** What addBackwardOf does, for report.txt. */
export const addBackwardText = (c: AddBackward) =>
  ['residual add backward', c.relu && `dReLU${maskFromEnds(c) ? ' (mask recomputed from the branch ends it reads anyway)' : ''}`, (c.aStats || c.bStats) && "the branch ends' BN partials Σdz, Σdz·x̂"].filter(Boolean).join(' + ');

/** dz = g·[y > 0] (when the add applied the block's ReLU), and each end's BN partials of it. */
export function addBackwardFused(k: KernelStep, c: Consts<'add_bwd_fused'>): CudaKernel {
  const body = [...channelTile(c.C, c.HW), 'float d = valid ? nincc::ld(&g[at]) : 0.0f;', ...addBackwardOf(c, tileSlot(c.C, c.HW), c.relu ? 'dz' : undefined)];
  const mask = c.relu && !maskFromEnds(c) ? ['y'] : [];
  const names = ['g', ...(c.relu ? [...mask, { name: 'dz', out: true }] : []), ...endParams('a', c.aStats), ...endParams('b', c.bStats)];
  return { params: params(k, names), body, launch: channelTiles(c.C, c.HW), fused: addBackwardText(c) };
}

/**
 * avgpool_add_fwd's backward in one pass: each input position gathers the pool's gradient (the gradient of the
 * sum never stored), masks it by the block's ReLU recomputed from the two ends (bitwise the forward's mask),
 * writes it as dz, the gradient of both ends' pending values, and each end's BN partials of it.
 */
export function avgpoolAddBackward(k: KernelStep, c: Consts<'avgpool_add_bwd'>): CudaKernel {
  const HW = c.H * c.W;
  const slot = tileSlot(c.C, HW);
  const reads = (p: 'a' | 'b', bn: boolean) => (c.relu || bn ? [`const float ${p}y = valid ? nincc::ld(&${p}_y[at]) : 0.0f;`] : []);
  const body = [
    ...channelTile(c.C, HW),
    `const int h = j / ${c.W}, u = j % ${c.W};`,
    'float d = 0.0f;',
    'if (valid) {',
    ...poolGather(c, false).map((line) => `  ${line}`),
    '}',
    ...reads('a', c.aBn),
    ...reads('b', c.bBn),
    ...(c.relu ? ['{', ...endValue('a', c.aRelu, c.aBn), ...endValue('b', c.bRelu, c.bBn), '  if (valid && !(av + bv > 0.0f)) d = 0.0f;', '}'] : []),
    'if (valid) nincc::st(&dz[at], d);',
    ...(c.aBn ? endStats('a', c.aRelu, slot) : []),
    ...(c.bBn ? endStats('b', c.bRelu, slot) : []),
  ];
  const end = (p: 'a' | 'b', bn: boolean): Param[] => [...(c.relu && !bn ? [{ name: `${p}_y` }] : []), ...endParams(p, bn)];
  const names = ['g', { name: 'dz', out: true }, ...end('a', c.aBn), ...end('b', c.bBn)];
  const fused = ['average pooling backward + residual add backward', c.relu && 'dReLU (mask recomputed from the branch ends)', (c.aBn || c.bBn) && "the branch ends' BN partials Σdz, Σdz·x̂"].filter(Boolean).join(' + ');
  return { params: params(k, names), body, launch: channelTiles(c.C, HW), fused };
}
