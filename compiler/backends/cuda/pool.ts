// The pooling family's window arithmetic, which the forward (pool-vec-tiles.ts), the backward
// (pool-vec-backward.ts) and the pooled residual add (residual.ts) share.
import { cppDouble, type Consts } from './parts.js';

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

/** The first and last output rows whose windows hold input row `h` (C++ expressions; clipped to 0 … P−1). */
export const firstWindowRow = (c: Consts<PoolOp>, h: string) => `(${h} + ${c.ph} - ${c.R} + 1 <= 0 ? 0 : (${h} + ${c.ph} - ${c.R} + ${c.sh}) / ${c.sh})`;
export const lastWindowRow = (c: Consts<PoolOp>, h: string) => `min((${h} + ${c.ph}) / ${c.sh}, ${c.P - 1})`;

/**
 * Input (h, u) of plane `ch` sums into d the output gradients g of the windows that hold it (max: whose argmax
 * it is, j = h·W + u), in a fixed order; average pooling divides by each window's divisor. `tile`: g (and
 * argmax) are shared-memory copies of output rows p0 … of the plane (pool-vec-backward.ts), not global memory.
 */
export function poolGather(c: Consts<PoolOp>, max: boolean, tile?: { readonly g: string; readonly argmax: string; readonly p0: string }): string[] {
  const at = tile ? `(p - ${tile.p0}) * ${c.Q} + q` : `plane + p * ${c.Q} + q`;
  const g = tile ? tile.g : 'g';
  const argmax = tile ? tile.argmax : 'argmax';
  return [
    `const int p_lo = ${firstWindowRow(c, 'h')};`,
    `const int q_lo = u + ${c.pw} - ${c.S} + 1 <= 0 ? 0 : (u + ${c.pw} - ${c.S} + ${c.sw}) / ${c.sw};`,
    `const int p_hi = ${lastWindowRow(c, 'h')}, q_hi = min((u + ${c.pw}) / ${c.sw}, ${c.Q - 1});`,
    ...(tile ? [] : [`const long long plane = ((long long)img * ${c.C} + ch) * ${c.P * c.Q};`]),
    'for (int p = p_lo; p <= p_hi; ++p)',
    '  for (int q = q_lo; q <= q_hi; ++q)',
    max
      ? `    if (nincc::ld(&${argmax}[${at}]) == j) d += nincc::ld(&${g}[${at}]);`
      : c.ceil
        ? `    d += nincc::ld(&${g}[${at}]) / ${divisor(c)};` // each window its own divisor
        : `    d += nincc::ld(&${g}[${at}]);`,
    ...(max || c.ceil ? [] : [`d = d / ${cppDouble(c.R * c.S)}f;`]),
  ];
}
