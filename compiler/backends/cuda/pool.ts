// CUDA kernels of the pooling family: max and average pooling forward (training, with the pending BN+ReLU
// applied on load, and inference) and backward, one thread per output element.
import { applyPending, backwardStats, cppDouble, element, inputParams, params, perElement, statsParams, tileSlot, fusedText, type Consts, type CudaKernel } from './parts.js';
import type { KernelStep } from '../../lower/program-ir.js';
import { channelTileGroups, channelTileGroupsLaunch } from './bn.js';

/** Groups of 8 channels each pooling-backward block takes in turn (bn.ts channelTileGroups). */
const POOL_BWD_CHANNEL_GROUPS = 4;

/**
 * Average pooling's divisor for output (p, q) (count_include_pad): the whole kernel in floor mode; in ceil
 * mode the window clipped to the padded image, as THNN counts it (a window past the far padding counts less).
 */
type PoolOp = 'maxpool_fwd_fused' | 'avgpool_fwd_fused' | 'maxpool_fwd_infer' | 'avgpool_fwd' | 'maxpool_bwd_fused' | 'avgpool_bwd_fused' | 'avgpool_add_fwd' | 'avgpool_add_bwd';

export function divisor(c: Consts<PoolOp>): string {
  if (!c.ceil) return `${cppDouble(c.R * c.S)}f`;
  return `float((min(p * ${c.sh} - ${c.ph} + ${c.R}, ${c.H + c.ph}) - (p * ${c.sh} - ${c.ph})) * (min(q * ${c.sw} - ${c.pw} + ${c.S}, ${c.W + c.pw}) - (q * ${c.sw} - ${c.pw})))`;
}

/** Output (p, q)'s window clipped to the image: rows h0 … h1−1, columns w0 … w1−1. */
export const poolWindow = (c: Consts<PoolOp>) => [
  `const int h0 = max(p * ${c.sh} - ${c.ph}, 0), h1 = min(p * ${c.sh} - ${c.ph} + ${c.R}, ${c.H});`,
  `const int w0 = max(q * ${c.sw} - ${c.pw}, 0), w1 = min(q * ${c.sw} - ${c.pw} + ${c.S}, ${c.W});`,
];

/**
 * Input (h, u) of plane `ch` sums into d the output gradients g of the windows that hold it (max: whose argmax
 * it is, j = h·W + u), in a fixed order; average pooling divides by each window's divisor.
 */
export function poolGather(c: Consts<PoolOp>, max: boolean): string[] {
  return [
    `const int p_lo = h + ${c.ph} - ${c.R} + 1 <= 0 ? 0 : (h + ${c.ph} - ${c.R} + ${c.sh}) / ${c.sh};`,
    `const int q_lo = u + ${c.pw} - ${c.S} + 1 <= 0 ? 0 : (u + ${c.pw} - ${c.S} + ${c.sw}) / ${c.sw};`,
    `const int p_hi = min((h + ${c.ph}) / ${c.sh}, ${c.P - 1}), q_hi = min((u + ${c.pw}) / ${c.sw}, ${c.Q - 1});`,
    `const long long plane = ((long long)img * ${c.C} + ch) * ${c.P * c.Q};`,
    'for (int p = p_lo; p <= p_hi; ++p)',
    '  for (int q = q_lo; q <= q_hi; ++q)',
    max
      ? `    if (nincc::ld(&argmax[plane + p * ${c.Q} + q]) == j) d += nincc::ld(&g[plane + p * ${c.Q} + q]);`
      : c.ceil
        ? `    d += nincc::ld(&g[plane + p * ${c.Q} + q]) / ${divisor(c)};` // each window its own divisor
        : `    d += nincc::ld(&g[plane + p * ${c.Q} + q]);`,
    ...(max || c.ceil ? [] : [`d = d / ${cppDouble(c.R * c.S)}f;`]),
  ];
}

export function poolForward(k: KernelStep, c: Consts<'maxpool_fwd_fused' | 'avgpool_fwd_fused' | 'maxpool_fwd_infer' | 'avgpool_fwd'>, max: boolean, argmax = max): CudaKernel {
  // Torch7 floor or ceil mode (P×Q from the compiler; windows clipped to the image); max: -inf padding, ties to the first maximum, NaN wins, the argmax (h·W + w in
  // the plane, −1 for none) kept for the backward; avg: count_include_pad. Pending transform on load.
  const out = c.C * c.P * c.Q;
  const body = [
    ...element(out),
    `const int ch = i / ${c.P * c.Q}, p = i / ${c.Q} % ${c.P}, q = i % ${c.Q};`,
    `const float* plane = x + (long long)img * ${c.C * c.H * c.W} + (long long)ch * ${c.H * c.W};`,
    ...poolWindow(c),
    ...(max ? ['float best = -INFINITY;', 'int best_at = -1;'] : ['float sum = 0.0f;']),
    'for (int h = h0; h < h1; ++h)',
    '  for (int u = w0; u < w1; ++u) {',
    `    float e = nincc::ld(&plane[h * ${c.W} + u]);`,
    ...applyPending(c, 'e', 'ch').map((s) => `    ${s}`),
    ...(max ? [`    if (best_at < 0 || e > best || e != e) { best = e; best_at = h * ${c.W} + u; }`] : ['    sum += e;']),
    '  }',
    ...(max ? [`nincc::st(&y[(long long)img * ${out} + i], best);`, ...(argmax ? [`nincc::st(&argmax[(long long)img * ${out} + i], best_at);`] : [])] : [`nincc::st(&y[(long long)img * ${out} + i], sum / ${divisor(c)});`]),
  ];
  const names = ['x', ...inputParams(c), { name: 'y', out: true }, ...(argmax ? [{ name: 'argmax', out: true, int: true }] : [])];
  return { params: params(k, names), body, launch: perElement(out), fused: fusedText([`${max ? 'max' : 'average'} pooling`, c.inBn && 'prologue: BN scale/shift', c.inRelu && 'prologue: ReLU']) };
}

export function poolBackward(k: KernelStep, c: Consts<'maxpool_bwd_fused' | 'avgpool_bwd_fused'>, max: boolean): CudaKernel {
  // Gather, not scatter: each input position sums the output gradients of the windows that hold it
  // (max: whose argmax it is), in a fixed order; then the epilogue's BN partials for the input value.
  const HW = c.H * c.W;
  const body = channelTileGroups(c.C, HW, POOL_BWD_CHANNEL_GROUPS, [
    `const int h = j / ${c.W}, u = j % ${c.W};`,
    'float d = 0.0f;',
    'if (valid) {',
    ...poolGather(c, max).map((line) => `  ${line}`),
    '  nincc::st(&dx[at], d);',
    '}',
    ...backwardStats(c, 'd', 'at', 'ch', 'valid', tileSlot(c.C, HW)),
  ]);
  const names = ['g', ...(max ? [{ name: 'argmax', int: true }] : []), { name: 'dx', out: true }, ...statsParams(c)];
  return {
    params: params(k, names),
    body,
    launch: channelTileGroupsLaunch(c.C, HW, POOL_BWD_CHANNEL_GROUPS),
    fused: fusedText([`${max ? 'max' : 'average'} pooling backward (${POOL_BWD_CHANNEL_GROUPS}×8 channels per block)`, c.outStats && 'epilogue: Σdz, Σdz·x̂ partials of the input BN']),
  };
}
