// A k×k conv's weights as bf16 in the order its bf16 tensor-core kernel stages its B operand (the op
// conv_weight_bf16, written by a step before each reader: lower/train-fused.ts bf16Weights), and that B
// staging: each 16-byte chunk of the copy is one swizzled shared chunk, so a block copies its B slice with
// 16-byte loads, a warp reading 512 contiguous bytes — against fp32 gathers of 8 floats, which read twice
// the bytes and, where a kernel row of R·S floats leaves them unaligned (the data gradient's W[k][c][r][s]
// along (k, r, s)), two sectors each. Layout: slice-major, element p of row `row` of 32-deep slice `sl` at
// (sl · rows + row) · 32 + p, holding B's k = 32·sl + p / 4 + 8·(p % 4) (conv-mma-tile.ts's k order of a
// staged row) rounded to bf16 (0 past the reduction), rows = K (forward: W[k][crs]) or C (data gradient:
// W[k][c][r][s] with k = (k, r, s)). The values are those the fp32 staging rounds, so outputs are bitwise equal.
import { params, flat, type Consts, type CudaKernel } from './parts.js';
import { BK, swizzled } from './conv-mma-tile.js';
import { TAPS_GROUP, tapsOrder } from './conv-mma-taps-halo.js';
import { s2dForward, s2dStem, s2dWeightLambda } from './conv-mma-stem-s2d.js';
import type { KernelStep } from '../../lower/program-ir.js';
import type { Ablations } from '../../ablations.js';

/** B's rows and its reduction's length: the forward's K × C·R·S, or the data gradient's C × K·R·S. */
export const weightMatrix = (c: { C: number; K: number; R: number; S: number }, dgrad: boolean) =>
  dgrad ? { rows: c.C, depth: c.K * c.R * c.S } : { rows: c.K, depth: c.C * c.R * c.S };

/**
 * The k order of a conv's copy, its reader's: a stem forward over x space-to-depth (conv-mma-stem-s2d.ts) reads W'
 * tap-major (W's taps rearranged, zero where W' pads); a reader running tap-major (conv-mma-taps-halo.ts) takes
 * k = 32·(g·RS + tap) + j; the others k channel-major. The SGD update writing the copies follows it (sgd-weight-bf16.ts).
 */
export type WeightCopyLayout = 's2d' | 'taps' | 'channels';
export function weightCopyLayout(c: Consts<'conv_weight_bf16'>, maxBatch: number, ablations?: Ablations): WeightCopyLayout {
  if (!c.dgrad && s2dForward(c, maxBatch, ablations)) return 's2d';
  return tapsOrder(c, c.dgrad ? 'dgrad' : 'forward', maxBatch, ablations) ? 'taps' : 'channels';
}

export function convWeightBf16(k: KernelStep, c: Consts<'conv_weight_bf16'>, maxBatch: number, ablations?: Ablations): CudaKernel {
  const { rows, depth } = weightMatrix(c, c.dgrad);
  const RS = c.R * c.S;
  const fused = (order: string) => `the weights rounded to bf16 in the ${c.dgrad ? 'data gradient' : 'forward'}'s staged B order (32-deep slices${order})`;
  const common = { params: params(k, ['w', { name: 'wb', out: true }]) };
  const layout = weightCopyLayout(c, maxBatch, ablations);
  const s2d = layout === 's2d' ? s2dStem(c) : undefined;
  if (s2d) {
    const s2dCopy = { lambda: s2dWeightLambda(s2d, c), at: (j: number) => `weight_at(g * ${TAPS_GROUP} + ${j}, tap)` };
    return { ...common, ...tapMajorCopy(s2d.conv, rows, s2d.conv.C / TAPS_GROUP, s2d.conv.R * s2d.conv.S, s2dCopy), fused: fused(`, W' of x space-to-depth by ${s2d.fh}×${s2d.fw}, k tap-major per 32 channels`) };
  }
  if (layout === 'taps') return { ...common, ...tapMajorCopy(c, rows, depth / RS / TAPS_GROUP, RS), fused: fused(', k tap-major per 32 channels') };
  const count = Math.ceil(depth / BK) * rows * BK;
  // B[row][kk]: the forward's W[row][kk]; the data gradient's W[kk / RS][row][kk % RS].
  const source = c.dgrad ? `((long long)(kk / ${RS}) * ${c.C} + row) * ${RS} + kk % ${RS}` : `(long long)row * ${depth} + kk`;
  return {
    ...common,
    body: [
      'const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;',
      '(void)n;',
      `if (i >= ${count}) return;`,
      `const int sl = int(i / ${rows * BK}), row = int(i / ${BK} % ${rows}), p = int(i % ${BK});`,
      `const int kk = sl * ${BK} + p / 4 + 8 * (p % 4);`,
      `const float v = kk < ${depth} ? nincc::ld(&w[${source}]) : 0.0f;`,
      'nincc::st(reinterpret_cast<nincc::bf16*>(wb) + i, nincc::to_bf16(v));',
    ],
    launch: flat(count),
  };
}

/**
 * The tap-major copy: a thread per (row, group g of 32 channels, tap), consecutive threads on consecutive taps
 * (so each of its 32 loads, channel 32·g + j at W's tap, runs along a kernel's R·S contiguous floats across the
 * warp), writing the slice g·RS + tap of its row: 64 contiguous bytes, j at position p with j = p / 4 + 8·(p % 4).
 */
function tapMajorCopy(c: { C: number; dgrad?: boolean }, rows: number, groups: number, RS: number, s2d?: { lambda: string[]; at: (j: number) => string }): Pick<CudaKernel, 'body' | 'launch'> {
  const count = rows * groups * RS;
  // The forward's W[row][ch][tap], the data gradient's W[ch][row][tap] (ch = 32·g + j); a stem's W' through its lambda.
  const source = (j: number) => (c.dgrad ? `((long long)(g * ${TAPS_GROUP} + ${j}) * ${c.C} + row) * ${RS} + tap` : `((long long)row * ${groups * TAPS_GROUP} + g * ${TAPS_GROUP} + ${j}) * ${RS} + tap`);
  const load = (j: number) => (s2d ? s2d.at(j) : `nincc::ld(&w[${source(j)}])`);
  const jAt = (p: number) => Math.floor(p / 4) + 8 * (p % 4);
  return {
    body: [
      'const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;',
      '(void)n;',
      `if (i >= ${count}) return;`,
      `const int tap = int(i % ${RS}), g = int(i / ${RS} % ${groups}), row = int(i / ${RS * groups});`,
      `int4* out = reinterpret_cast<int4*>(wb) + ((long long)(g * ${RS} + tap) * ${rows} + row) * 4;`,
      ...(s2d ? s2d.lambda : []),
      ...Array.from({ length: BK / 8 }, (_, chunk) => {
        const pair = (p: number) => `int(nincc::to_bf16x2(${load(jAt(p + 1))}, ${load(jAt(p))}))`;
        return `nincc::st(&out[${chunk}], int4{${[0, 2, 4, 6].map((e) => pair(8 * chunk + e)).join(', ')}});`;
      }),
    ],
    launch: flat(count),
  };
}

/**
 * Stage B (`bs`, `rowsInTile` rows from `n0`) of the slice at `k0` from the copy `wb` of `rows` rows:
 * consecutive threads on consecutive 16-byte chunks, 4 a row; rows past B stay zero. `steps` (a C++ expression,
 * mmaSlice's): the k-steps the slice runs; the chunks of a skipped one are not staged (nothing reads them).
 */
export function stageWeightsBf16(rows: number, rowsInTile: number, threads: number, steps?: string): string[] {
  return [
    '// Stage B from the bf16 copy: 16-byte chunks already in the staged k order, four lanes a row.',
    'NINCC_UNROLL',
    `for (int q = t; q < ${rowsInTile * 4}; q += ${threads}) {`,
    '  const int row = q / 4, chunk = q % 4;',
    ...(steps ? [`  if (chunk >= 2 * ${steps}) continue;  // a skipped k-step's chunks`] : []),
    '  int4 v = int4{0, 0, 0, 0};',
    `  if (n0 + row < ${rows}) v = nincc::ld(reinterpret_cast<const int4*>(wb) + ((long long)(k0 / ${BK}) * ${rows} + n0 + row) * 4 + chunk);`,
    `  nincc::st(&bs[${swizzled('row', 'chunk')}], v);`,
    '}',
  ];
}
