// The SGD update of one k×k conv's weights that also writes their bf16 copies (op sgd_conv_bf16, lowered where
// the switch sgdWeightCopies is on: lower/train-fused.ts), so no conversion launch (conv-weight-bf16.ts) runs in a
// training step: a block updates a tile of W read in its own order (coalesced), keeps each new weight rounded to bf16
// in shared memory, and then writes the copies' 16-byte chunks the tile completes, a warp along contiguous runs.
// The copies' contents are conv-weight-bf16.ts's (the same layouts, the same rounding), so the step is bitwise the same.
import { BLOCK, params, type Consts, type CudaKernel } from './parts.js';
import { sgdOneWeight } from './sgd.js';
import { STATIC_SHARED_BYTES } from './conv-mma-halo.js';
import { TAPS_GROUP } from './conv-mma-taps-halo.js';
import { s2dStem, s2dWeightLambda } from './conv-mma-stem-s2d.js';
import type { WeightCopyLayout } from './conv-weight-bf16.js';
import type { ConvShape } from '../../lower/ops.js';
import type { KernelStep } from '../../lower/program-ir.js';

/** sgd_conv_bf16's `forward` and `dgrad` constants: the index of the copy's layout here, 0 for no copy. */
export const WEIGHT_COPY_ORDERS = [undefined, 'channels', 'taps', 's2d'] as const;
export const copyOrderCode = (layout: WeightCopyLayout | undefined): number => WEIGHT_COPY_ORDERS.indexOf(layout);

/** bf16 weights a block keeps: all its static shared memory. */
const STAGE_ELEMENTS = STATIC_SHARED_BYTES / 2;
/** A forward-only tile's filters at most: enough for whole 64-byte rows of each slice, and NIN's stem still has 24 blocks. */
const ROWS_MAX = 4;
/** Filters of a 32-filter group a group tile updates per half: those whose data-gradient chunks 2h, 2h + 1 (one sector of each row) complete. */
const HALF = TAPS_GROUP / 2;

/**
 * How the update writes the copies: `rows`, filters [r0, r0 + rows) whole (forward copy only: its row r reads W[r] alone);
 * `groups`, 32 filters × 32 channels × every tap, in two halves of 16 filters (a data-gradient copy tap-major, with a
 * tap-major forward copy or none: their 64-byte rows hold 32 channels, or 32 filters, at one tap). Undefined where neither
 * fits the stage or applies (a channel-major data-gradient copy: a slice then spans filters' taps): the copies keep
 * their conversion launches.
 */
export type SgdCopyPlan = { readonly kind: 'rows'; readonly rows: number } | { readonly kind: 'groups' };
export function sgdCopyPlan(c: ConvShape, forward: WeightCopyLayout | undefined, dgrad: WeightCopyLayout | undefined): SgdCopyPlan | undefined {
  const RS = c.R * c.S;
  if (dgrad === undefined) {
    const rows = Math.min(ROWS_MAX, Math.floor(STAGE_ELEMENTS / (c.C * RS)));
    return forward !== undefined && rows >= 1 ? { kind: 'rows', rows } : undefined;
  }
  const fits = HALF * TAPS_GROUP * RS <= STAGE_ELEMENTS && c.K % TAPS_GROUP === 0;
  return dgrad === 'taps' && (forward === undefined || forward === 'taps') && fits ? { kind: 'groups' } : undefined;
}

/** Position p = 8·chunk + e of a staged row holds k offset j = p / 4 + 8·(p % 4) (conv-mma-tile.ts), as C++ over `chunk`. */
const jOf = (e: number) => `2 * chunk + ${(e >> 2) + 8 * (e & 3)}`;
/** A 16-byte chunk of 8 bf16 from its values, lower positions in the lower halves (tapMajorCopy's packing). */
const chunkOf = (value: (e: number) => string) => `int4{${[0, 2, 4, 6].map((e) => `int(nincc::to_bf16x2(${value(e + 1)}, ${value(e)}))`).join(', ')}}`;
const staged = (index: string) => `nincc::bf16_to_float(nincc::ld(&stage[${index}]))`;

export function sgdConvBf16(k: KernelStep, c: Consts<'sgd_conv_bf16'>): CudaKernel {
  const forward = WEIGHT_COPY_ORDERS[c.forward], dgrad = WEIGHT_COPY_ORDERS[c.dgrad];
  const plan = sgdCopyPlan(c, forward, dgrad);
  if (!plan) throw new Error(`internal error: ${k.kernel}: no SGD tile writes copies ordered ${forward ?? '-'} / ${dgrad ?? '-'} of a ${c.K}×${c.C}×${c.R}×${c.S} conv`);
  const list = [{ name: 'w', out: true }, { name: 'g', out: true }, { name: 'mom', out: true }, ...(forward ? [{ name: 'wb', out: true }] : []), ...(dgrad ? [{ name: 'wbd', out: true }] : [])];
  const common = { params: params(k, list, ['lr', 'wd', 'momentum', 'first']) };
  const what = (tile: string) => `SGD update of the weights writing their bf16 copies (${[forward && `forward ${forward}`, dgrad && `data gradient ${dgrad}`].filter(Boolean).join(', ')}) from ${tile} staged in shared memory`;
  if (plan.kind === 'rows') return { ...common, body: rowsTile(c, forward!, plan.rows), launch: { grid: [Math.ceil(c.K / plan.rows), 1, 1], block: [BLOCK, 1, 1], shared: 0 }, fused: what(`${plan.rows} filters a block`) };
  return { ...common, body: groupsTile(c, forward !== undefined), launch: { grid: [2 * (c.K / TAPS_GROUP) * Math.ceil(c.C / TAPS_GROUP), 1, 1], block: [BLOCK, 1, 1], shared: 0 }, fused: what('16 of 32 filters × 32 channels a block') };
}

/** Filters [r0, r0 + tile_rows) updated in w's order, then every slice of their forward copy rows. */
function rowsTile(c: ConvShape, layout: WeightCopyLayout, rows: number): string[] {
  const RS = c.R * c.S, depth = c.C * RS;
  const s2d = layout === 's2d' ? s2dStem(c) : undefined;
  if (layout === 's2d' && !s2d) throw new Error('internal error: sgd-weight-bf16.ts: an s2d copy of a conv with no space-to-depth form');
  // Each layout's value at (row, slice sl, position 8·chunk + e): conv-weight-bf16.ts's, from the stage.
  const taps = s2d ? s2d.conv.R * s2d.conv.S : RS;
  const slices = layout === 'channels' ? Math.ceil(depth / TAPS_GROUP) : ((s2d ? s2d.conv.C : c.C) / TAPS_GROUP) * taps;
  const setup = layout === 'channels' ? [] : [`const int g = sl / ${taps}, tap = sl % ${taps};`, ...(s2d ? s2dWeightLambda(s2d, c, staged) : [])];
  const value = (e: number) =>
    layout === 'channels' ? `(sl * ${TAPS_GROUP} + ${jOf(e)} < ${depth} ? ${staged(`row * ${depth} + sl * ${TAPS_GROUP} + ${jOf(e)}`)} : 0.0f)`
    : s2d ? `weight_at(g * ${TAPS_GROUP} + ${jOf(e)}, tap)`
    : staged(`row * ${depth} + (g * ${TAPS_GROUP} + ${jOf(e)}) * ${RS} + tap`);
  return [
    '(void)n;',
    `NINCC_SHARED(nincc::bf16, stage, ${rows * depth});  // ${rows} filters' new weights, rounded to bf16`,
    `const int r0 = blockIdx.x * ${rows}, tile_rows = min(${rows}, ${c.K} - r0), t = threadIdx.x;`,
    '// Update the filters (contiguous in w), keeping each new weight for the copy.',
    `for (int e = t; e < tile_rows * ${depth}; e += ${BLOCK}) {`,
    `  const long long i = (long long)r0 * ${depth} + e;`,
    ...sgdOneWeight('i', 'updated').map((s) => `  ${s}`),
    '  nincc::st(&stage[e], nincc::to_bf16(updated));',
    '}',
    '__syncthreads();',
    `// The forward copy's rows r0… of every slice (${layout}): runs of tile_rows · 64 bytes, 16 a lane.`,
    `for (int q = t; q < ${slices} * tile_rows * 4; q += ${BLOCK}) {`,
    '  const int sl = q / (tile_rows * 4), row = q / 4 % tile_rows, chunk = q % 4;',
    ...setup.map((s) => `  ${s}`),
    `  nincc::st(reinterpret_cast<int4*>(wb) + ((long long)sl * ${c.K} + r0 + row) * 4 + chunk, ${chunkOf(value)});`,
    '}',
  ];
}

/**
 * Half h of filters 32·kg… × channels 32·cg… × every tap: the 16 filters 32·kg + 8·m + 4·h + a (a < 4), local index
 * kl = 4·m + a; their forward rows whole, and of each data-gradient row (channel c, tap) the chunks 2h and 2h + 1,
 * whose positions hold exactly those filters (j = p / 4 + 8·(p % 4)). A block a half: twice the blocks of a whole group.
 */
function groupsTile(c: ConvShape, forward: boolean): string[] {
  const RS = c.R * c.S;
  const groups = Math.ceil(c.C / TAPS_GROUP);
  const filter = (kl: string) => `kg * ${TAPS_GROUP} + ${kl} / 4 * 8 + 4 * h + ${kl} % 4`;
  return [
    '(void)n;',
    `NINCC_SHARED(nincc::bf16, stage, ${HALF * TAPS_GROUP * RS});  // [filter kl][channel][tap] of a half, rounded to bf16`,
    `const int h = blockIdx.x % 2, kg = blockIdx.x / 2 / ${groups}, cg = blockIdx.x / 2 % ${groups}, t = threadIdx.x;`,
    `const int channels = min(${TAPS_GROUP}, ${c.C} - cg * ${TAPS_GROUP});`,
    '{',
    '  // Update the half\'s filters: each one\'s channels × taps are contiguous in w.',
    `  for (int e = t; e < ${HALF} * channels * ${RS}; e += ${BLOCK}) {`,
    `    const int kl = e / (channels * ${RS}), rest = e % (channels * ${RS});`,
    `    const long long i = ((long long)(${filter('kl')}) * ${c.C} + cg * ${TAPS_GROUP}) * ${RS} + rest;`,
    ...sgdOneWeight('i', 'updated').map((s) => `    ${s}`),
    `    nincc::st(&stage[kl * ${TAPS_GROUP * RS} + rest], nincc::to_bf16(updated));`,
    '  }',
    '  __syncthreads();',
    ...(forward
      ? [
          '  // The forward copy: rows of the 16 filters at slice cg·RS + tap, 4 filters (256 contiguous bytes) a run.',
          `  for (int q = t; q < ${RS * HALF * 4}; q += ${BLOCK}) {`,
          `    const int chunk = q % 4, kl = q / 4 % ${HALF}, tap = q / ${HALF * 4};`,
          `    nincc::st(reinterpret_cast<int4*>(wb) + ((long long)(cg * ${RS} + tap) * ${c.K} + ${filter('kl')}) * 4 + chunk, ${chunkOf((e) => staged(`(kl * ${TAPS_GROUP} + ${jOf(e)}) * ${RS} + tap`))});`,
          '  }',
        ]
      : []),
    '  // The data-gradient copy: chunks 2h, 2h + 1 (one whole sector) of each channel\'s row at slice kg·RS + tap.',
    `  for (int q = t; q < ${RS} * channels * 2; q += ${BLOCK}) {`,
    '    const int b = q % 2, cl = q / 2 % channels, tap = q / (2 * channels), chunk = 2 * h + b;',
    `    nincc::st(reinterpret_cast<int4*>(wbd) + ((long long)(kg * ${RS} + tap) * ${c.C} + cg * ${TAPS_GROUP} + cl) * 4 + chunk, ${chunkOf((e) => staged(`((${4 * (e & 3) + (e >> 2)} + 2 * b) * ${TAPS_GROUP} + cl) * ${RS} + tap`))});`,
    '  }',
    '}',
  ];
}
