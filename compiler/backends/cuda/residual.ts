// CUDA kernels of a residual block's add in the fused training program (lower/train-fused.ts, docs/design.md
// §4): the forward applies each branch end's pending BN/ReLU on load, sums and applies the block's ReLU in
// one pass; the backward masks the gradient by that ReLU and writes each end's BN partials in one pass.
import type { KernelStep } from '../../lower/program-ir.js';
import { maskFromEnds } from '../../lower/ops.js';
import { channelTile } from './bn.js';
import { channelTiles, element, params, perElement, tileSlot, type Consts, type CudaKernel, type Param } from './parts.js';

/** `v = relu?(scale·v + shift)` with branch end p's pending transform (the same fmaf the backward's mask recomputes). */
const applyEnd = (p: 'a' | 'b', bn: boolean, relu: boolean, ch: string) => [
  ...(bn ? [`${p}v = nincc::ffma(${p}v, nincc::ld(&${p}_scale[${ch}]), nincc::ld(&${p}_shift[${ch}]));`] : []),
  ...(relu ? [`${p}v = ${p}v > 0.0f ? ${p}v : 0.0f;`] : []),
];

/** y = relu?(end_a + end_b), each end with its pending transform applied. */
export function addApply(k: KernelStep, c: Consts<'add_apply'>): CudaKernel {
  const count = c.C * c.HW;
  const body = [
    ...element(count),
    `const long long at = (long long)img * ${count} + i;`,
    ...(c.aBn || c.bBn ? [`const int ch = i / ${c.HW};`] : []),
    'float av = nincc::ld(&a[at]);',
    ...applyEnd('a', c.aBn, c.aRelu, 'ch'),
    'float bv = nincc::ld(&b[at]);',
    ...applyEnd('b', c.bBn, c.bRelu, 'ch'),
    'const float v = av + bv;',
    `nincc::st(&y[at], ${c.relu ? 'v > 0.0f ? v : 0.0f' : 'v'});`,
  ];
  const names = ['a', ...(c.aBn ? ['a_scale', 'a_shift'] : []), 'b', ...(c.bBn ? ['b_scale', 'b_shift'] : []), { name: 'y', out: true }];
  const ends = [c.aBn && 'BN', c.aRelu && 'ReLU'].filter(Boolean).join('+');
  const shortcut = [c.bBn && 'BN', c.bRelu && 'ReLU'].filter(Boolean).join('+');
  const fused = `residual add${ends ? ` (branch end's pending ${ends} applied on load)` : ''}${shortcut ? ` (shortcut's pending ${shortcut} applied on load)` : ''}${c.relu ? ' + ReLU' : ''}`;
  return { params: params(k, names), body, launch: perElement(count), fused };
}

/** Branch end p's pending value relu?(scale·y + shift) from its raw `${p}y`, as `${p}v`: add_apply's applyEnd, the same fmaf. */
const endValue = (p: 'a' | 'b', relu: boolean) => [`float ${p}v = ${p}y;`, ...applyEnd(p, true, relu, 'ch')];

/** Branch end p's Σdz, Σdz·x̂ partials from this lane's gradient d (the warp is one channel); `${p}y` is its raw value. */
const endStats = (p: 'a' | 'b', relu: boolean, slot: string) => [
  '{',
  '  float dzv = 0.0f, dzx = 0.0f;',
  '  if (valid) {',
  `    dzv = ${relu ? `nincc::ffma(${p}y, nincc::ld(&${p}_scale[ch]), nincc::ld(&${p}_shift[ch])) > 0.0f ? d : 0.0f` : 'd'};`,
  `    dzx = dzv * ((${p}y - nincc::ld(&${p}_mean[ch])) * nincc::ld(&${p}_invstd[ch]));`,
  '  }',
  '  dzv = nincc::warp_sum(dzv);',
  '  dzx = nincc::warp_sum(dzx);',
  `  if (threadIdx.x == 0) { nincc::st(&${p}_dz[${slot}], dzv); nincc::st(&${p}_dzx[${slot}], dzx); }`,
  '}',
];

const endParams = (p: 'a' | 'b', on: boolean): Param[] =>
  on ? [...['y', 'scale', 'shift', 'mean', 'invstd'].map((n) => ({ name: `${p}_${n}` })), { name: `${p}_dz`, out: true }, { name: `${p}_dzx`, out: true }] : [];

/** dz = g·[y > 0] (when the add applied the block's ReLU), and each end's BN partials of it. */
export function addBackwardFused(k: KernelStep, c: Consts<'add_bwd_fused'>): CudaKernel {
  const slot = tileSlot(c.C, c.HW);
  const fromEnds = maskFromEnds(c);
  const body = [
    ...channelTile(c.C, c.HW),
    'float d = valid ? nincc::ld(&g[at]) : 0.0f;',
    ...(c.aStats ? ['const float ay = valid ? nincc::ld(&a_y[at]) : 0.0f;'] : []),
    ...(c.bStats ? ['const float by = valid ? nincc::ld(&b_y[at]) : 0.0f;'] : []),
    ...(c.relu && fromEnds ? ['{', ...endValue('a', c.aRelu), ...endValue('b', c.bRelu), '  if (valid && !(av + bv > 0.0f)) d = 0.0f;', '}'] : []),
    ...(c.relu && !fromEnds ? ['if (valid && !(nincc::ld(&y[at]) > 0.0f)) d = 0.0f;'] : []),
    ...(c.relu ? ['if (valid) nincc::st(&dz[at], d);'] : []),
    ...(c.aStats ? endStats('a', c.aRelu, slot) : []),
    ...(c.bStats ? endStats('b', c.bRelu, slot) : []),
  ];
  const names = ['g', ...(c.relu ? [...(fromEnds ? [] : ['y']), { name: 'dz', out: true }] : []), ...endParams('a', c.aStats), ...endParams('b', c.bStats)];
  const fused = ['residual add backward', c.relu && `dReLU${fromEnds ? " (mask recomputed from the branch ends it reads anyway)" : ''}`, (c.aStats || c.bStats) && "the branch ends' BN partials Σdz, Σdz·x̂"].filter(Boolean).join(' + ');
  return { params: params(k, names), body, launch: channelTiles(c.C, c.HW), fused };
}
