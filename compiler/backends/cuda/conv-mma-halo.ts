// The halo tile of a stride-1 k×k bf16 conv: a block stages, once per group of channels, the operand plane
// its rows' taps reach (bf16, in shared memory), and builds its A operand for every tap (r, s) from there
// instead of gathering from global memory once per tap — R·S global reads of each element per column tile
// become about one. The forward (conv-mma.ts) stages the input x, its pending BN/ReLU applied; the data
// gradient (conv-mma-grad.ts) the output gradient dY', its dReLU·dBN rebuild applied.
//
// Geometry. A's rows are positions (h, w) of an H_m × W_m plane (the forward's output P×Q, the data
// gradient's input H×W), and tap (r, s) of row (h, w) reads the source plane (x: H×W, dY: P×Q) at
// (h + r − ph, w + s − pw) forward, (h + ph − r, w + pw − s) for the data gradient of a stride-1 conv. Pad the
// source into a plane Z of (H_m + R − 1) rows × WZ = W_m + S − 1 columns per image, Z[i][j] = source[i − oh][j − ow]
// (0 outside; (oh, ow) = (ph, pw) forward, (R − 1 − ph, S − 1 − pw) data gradient): the element is then
// Z[h + r'][w + s'] with (r', s') = (r, s) forward, (R − 1 − r, S − 1 − s) data gradient — an offset r'·WZ + s'
// from the row's base Z index img·ZHW + h·WZ + w. Bases rise with the GEMM row m (a padded statistics row,
// pos ≥ H_m·W_m, takes its image's last position), so a block's rows and taps read the window
// [base(m0), base(m0 + BM − 1) + (R − 1)·WZ + S − 1] of the images' Z planes laid end to end: the halo holds
// that window for KC channels. KC·R·S is a multiple of the 32-deep slice, so every slice's taps (channel,
// r, s) fall in one staged group and A's k order, its shared layout and the B staging are the gathering
// path's: the two builds are bitwise equal (test/emu-conv-mma-halo.test.ts).
import { BK, tileThreads, type MmaTile } from './conv-mma-tile.js';

/** Static shared memory a kernel may declare (the CUDA limit without an opt-in to dynamic shared memory). */
export const STATIC_SHARED_BYTES = 48 * 1024;

/** A's rows as positions of an H_m × W_m plane, the source plane (channels × srcH × srcW) its taps read, and how. */
export interface HaloConv {
  readonly rowsH: number;
  readonly rowsW: number;
  readonly channels: number;
  readonly srcH: number;
  readonly srcW: number;
  readonly R: number;
  readonly S: number;
  /** The source's offset in Z: (ph, pw) forward, (R − 1 − ph, S − 1 − pw) data gradient. */
  readonly oh: number;
  readonly ow: number;
  /** The data gradient's flipped taps: (R − 1 − r, S − 1 − s). */
  readonly flip: boolean;
}

/** The halo's view of a stride-1 conv, or undefined for a strided or 1×1 one (no dense window, or nothing to reuse). */
export function haloConv(c: { C: number; K: number; H: number; W: number; P: number; Q: number; R: number; S: number; sh: number; sw: number; ph: number; pw: number }, pass: 'forward' | 'dgrad'): HaloConv | undefined {
  if (c.sh !== 1 || c.sw !== 1 || c.R * c.S === 1) return undefined;
  return pass === 'forward'
    ? { rowsH: c.P, rowsW: c.Q, channels: c.C, srcH: c.H, srcW: c.W, R: c.R, S: c.S, oh: c.ph, ow: c.pw, flip: false }
    : { rowsH: c.H, rowsW: c.W, channels: c.K, srcH: c.P, srcW: c.Q, R: c.R, S: c.S, oh: c.R - 1 - c.ph, ow: c.S - 1 - c.pw, flip: true };
}

export interface HaloGeometry {
  readonly zw: number; // WZ: columns of a padded plane
  readonly zhw: number; // ZHW: Z elements per image
  readonly window: number; // WL: Z elements a block's rows and taps reach, the most over the grid's blocks
  readonly group: number; // KC: channels per staged group
  readonly bytes: number; // the halo's shared memory: KC × WL bf16
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** Base Z index of GEMM row m (rows per image `rows`, H_m·W_m live), as the kernel computes it. */
function rowBase(m: number, rows: number, c: HaloConv, zw: number, zhw: number): number {
  const img = Math.floor(m / rows);
  const pos = Math.min(m % rows, c.rowsH * c.rowsW - 1);
  return img * zhw + Math.floor(pos / c.rowsW) * zw + (pos % c.rowsW);
}

/**
 * The halo of a conv with tile `tile` over `maxBatch` images of `rows` GEMM rows each, or undefined where the
 * window, with the operand tiles and `otherShared` bytes (a rebuild table), would pass the static
 * shared-memory limit.
 */
export function haloGeometry(c: HaloConv, tile: MmaTile, rows: number, maxBatch: number, otherShared: number): HaloGeometry | undefined {
  const zw = c.rowsW + c.S - 1;
  const zhw = (c.rowsH + c.R - 1) * zw;
  const reach = (c.R - 1) * zw + c.S - 1;
  let window = 0;
  for (let m0 = 0; m0 < maxBatch * rows; m0 += tile.bm) {
    window = Math.max(window, rowBase(m0 + tile.bm - 1, rows, c, zw, zhw) - rowBase(m0, rows, c, zw, zhw) + reach + 1);
  }
  const group = BK / gcd(c.R * c.S, BK);
  const bytes = group * window * 2;
  const operands = (tile.bm + tile.bn) * BK * 2;
  return operands + otherShared + bytes <= STATIC_SHARED_BYTES ? { zw, zhw, window, group, bytes } : undefined;
}

/** Before the main loop: the halo buffer and the block's window start (the base of its first row). */
export function haloPrologue(c: HaloConv, g: HaloGeometry, rows: number): string[] {
  return [
    `NINCC_SHARED(nincc::bf16, halo, ${g.group * g.window});  // ${g.group} channels × the ${g.window} padded positions this block's taps reach`,
    `const long long halo_start = ${baseOf('m0', c, g, rows)};`,
  ];
}

/** The base Z index of GEMM row `m` (a C++ expression). */
const baseOf = (m: string, c: HaloConv, g: HaloGeometry, rows: number) =>
  `(${m}) / ${rows} * ${g.zhw} + min(int((${m}) % ${rows}), ${c.rowsH * c.rowsW - 1}) / ${c.rowsW} * ${g.zw} + min(int((${m}) % ${rows}), ${c.rowsH * c.rowsW - 1}) % ${c.rowsW}`;

/**
 * At the first slice of each group of KC channels: stage the group's window, consecutive threads on
 * consecutive Z positions (along the source's rows: coalesced), `load` setting `float v` from `at` (the
 * source's index, `ch` its channel) with the pending transform or rebuild applied; then a barrier. The
 * previous group's last reads of the halo ended at the main loop's closing barrier.
 */
export function stageHalo(c: HaloConv, g: HaloGeometry, tile: MmaTile, load: (at: string) => string[], perChannel: string[]): string[] {
  const group = g.group * c.R * c.S;
  const threads = tileThreads(tile);
  return [
    `if (k0 % ${group} == 0) {`,
    `  // Stage the halo: channels k0 / ${c.R * c.S} … + ${g.group - 1} over the window, rounded to bf16 once (padding stays 0).`,
    // With 32 accumulators a thread, unrolled by four: left to itself, ptxas chose 80 registers on sm_80 and
    // spilled beside them (googlenet's 160→224 3×3 conv_infer, 128×32 on 4 warps: 4 B; 96 registers and none by
    // four). With 64 (128×64 on 4 warps, 128×128 on 8) ptxas stops at 128 registers and spills by four, not
    // by its own choice (scripts/check-spills.ts over every shipped model).
    ...((tile.bm * tile.bn) / threads <= 32 ? ['  NINCC_UNROLL_BY(4)'] : []),
    `  for (int q = t; q < ${g.group * g.window}; q += ${threads}) {`,
    `    const int ch = k0 / ${c.R * c.S} + q / ${g.window};`,
    `    const long long z = halo_start + q % ${g.window};`,
    `    const int img = int(z / ${g.zhw}), i = int(z % ${g.zhw}) / ${g.zw}, j = int(z % ${g.zw});`,
    `    const int p = i - ${c.oh}, u = j - ${c.ow};`,
    ...perChannel.map((s) => `    ${s}`),
    '    float v = 0.0f;',
    `    if (img < n && ch < ${c.channels} && p >= 0 && p < ${c.srcH} && u >= 0 && u < ${c.srcW}) {`,
    `      const long long at = ((long long)img * ${c.channels} + ch) * ${c.srcH * c.srcW} + p * ${c.srcW} + u;`,
    ...load('at').map((s) => `      ${s}`),
    '    }',
    '    nincc::st(&halo[q], nincc::to_bf16(v));',
    '  }',
    '  __syncthreads();',
    '}',
  ];
}

/**
 * A's staging from the halo (stageAcrossRows' perRow and perElement): row m's tap e = (channel, r, s) is
 * the halo element of channel − group start at the row's base + r'·WZ + s'. Rows past the batch or the
 * image read some staged value: their outputs are never stored nor counted.
 */
export function haloStaging(c: HaloConv, g: HaloGeometry, rows: number): { perRow: string[]; perElement: string[] } {
  const RS = c.R * c.S;
  return {
    perRow: ['const long long m = m0 + row;', `const int hb = int(${baseOf('m', c, g, rows)} - halo_start);`],
    perElement: [
      'const int kk = k0 + ko;',
      `const int kl = kk / ${RS} - k0 / ${g.group * RS} * ${g.group}, rs = kk % ${RS};`,
      `v = nincc::bf16_to_float(nincc::ld(&halo[kl * ${g.window} + hb + ${c.flip ? `(${c.R - 1} - rs / ${c.S})` : `rs / ${c.S}`} * ${g.zw} + ${c.flip ? `${c.S - 1} - rs % ${c.S}` : `rs % ${c.S}`}]));`,
    ],
  };
}
