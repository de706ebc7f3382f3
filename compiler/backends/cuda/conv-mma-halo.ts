// The output-gradient halo tile of a stride-1 k×k bf16 data gradient (conv-mma-grad.ts): a block stages, once
// per group of channels, the rebuilt dY' of the output positions its rows' taps reach (bf16, in shared
// memory), and builds its A operand for every tap (r, s) from there instead of gathering dY' from global
// memory once per tap — R·S global reads of each element per column tile become about one.
//
// Geometry. The dgrad of a stride-1 conv reads dY[k][h + ph − r][w + pw − s] for input position (h, w) and
// tap (r, s). Pad dY into a plane Z of (H + R − 1) rows × WZ = W + S − 1 columns per image, Z[i][j] =
// dY[i − (R − 1 − ph)][j − (S − 1 − pw)] (0 outside dY): then the element is Z[h + R − 1 − r][w + S − 1 − s],
// an offset (R − 1 − r)·WZ + (S − 1 − s) from the row's base Z index img·ZHW + h·WZ + w. Bases rise with the
// GEMM row m (a padded statistics row, pos ≥ H·W, takes its image's last position), so a block's rows and
// taps read the window [base(m0), base(m0 + BM − 1) + (R − 1)·WZ + S − 1] of the images' Z planes laid end
// to end: the halo holds that window for KC channels. KC·R·S is a multiple of the 32-deep slice, so every
// slice's taps (k, r, s) fall in one staged group and A's k order, its shared layout and the B staging are
// the gathering path's: the two builds are bitwise equal (test/emu-conv-mma-halo.test.ts).
import { BK, type MmaTile } from './conv-mma-tile.js';

/** Static shared memory a kernel may declare (the CUDA limit without an opt-in to dynamic shared memory). */
export const STATIC_SHARED_BYTES = 48 * 1024;

/** The shape facts the halo needs (Consts of conv_dgrad_fused). */
export interface HaloConv {
  readonly C: number;
  readonly K: number;
  readonly H: number;
  readonly W: number;
  readonly P: number;
  readonly Q: number;
  readonly R: number;
  readonly S: number;
  readonly sh: number;
  readonly sw: number;
  readonly ph: number;
  readonly pw: number;
}

export interface HaloGeometry {
  readonly zw: number; // WZ: columns of a padded plane
  readonly zhw: number; // ZHW: Z elements per image
  readonly window: number; // WL: Z elements a block's rows and taps reach, the most over the grid's blocks
  readonly channels: number; // KC: channels per staged group
  readonly bytes: number; // the halo's shared memory: KC × WL bf16
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** Base Z index of GEMM row m (rows per image `rows`, H·W live), as the kernel computes it. */
function rowBase(m: number, rows: number, c: HaloConv, zw: number, zhw: number): number {
  const img = Math.floor(m / rows);
  const pos = Math.min(m % rows, c.H * c.W - 1);
  return img * zhw + Math.floor(pos / c.W) * zw + (pos % c.W);
}

/**
 * The halo of a data gradient with tile `tile` over `maxBatch` images of `rows` GEMM rows each, or undefined
 * where it does not apply: a strided conv (taps skip positions: no dense window), a 1×1 (each element is
 * read once already), or a window that with the operand tiles and `otherShared` bytes (the rebuild table)
 * would pass the static shared-memory limit.
 */
export function haloGeometry(c: HaloConv, tile: MmaTile, rows: number, maxBatch: number, otherShared: number): HaloGeometry | undefined {
  if (c.sh !== 1 || c.sw !== 1 || c.R * c.S === 1) return undefined;
  const zw = c.W + c.S - 1;
  const zhw = (c.H + c.R - 1) * zw;
  const reach = (c.R - 1) * zw + c.S - 1;
  let window = 0;
  for (let m0 = 0; m0 < maxBatch * rows; m0 += tile.bm) {
    window = Math.max(window, rowBase(m0 + tile.bm - 1, rows, c, zw, zhw) - rowBase(m0, rows, c, zw, zhw) + reach + 1);
  }
  const channels = BK / gcd(c.R * c.S, BK);
  const bytes = channels * window * 2;
  const operands = (tile.bm + tile.bn) * BK * 2;
  return operands + otherShared + bytes <= STATIC_SHARED_BYTES ? { zw, zhw, window, channels, bytes } : undefined;
}

/** Before the main loop: the halo buffer and the block's window start (the base of its first row). */
export function haloPrologue(c: HaloConv, g: HaloGeometry, rows: number): string[] {
  return [
    `NINCC_SHARED(nincc::bf16, halo, ${g.channels * g.window});  // dY' of ${g.channels} channels × the ${g.window} padded positions this block's taps reach`,
    `const long long halo_start = ${baseOf('m0', c, g, rows)};`,
  ];
}

/** The base Z index of GEMM row `m` (a C++ expression). */
const baseOf = (m: string, c: HaloConv, g: HaloGeometry, rows: number) =>
  `(${m}) / ${rows} * ${g.zhw} + min(int((${m}) % ${rows}), ${c.H * c.W - 1}) / ${c.W} * ${g.zw} + min(int((${m}) % ${rows}), ${c.H * c.W - 1}) % ${c.W}`;

/**
 * At the first slice of each group of KC channels: stage the group's window, consecutive threads on
 * consecutive Z positions (along dY's rows: coalesced), `load` setting `float v` from `at` (dY's index,
 * `kout` its channel) with the rebuild applied; then a barrier. The previous group's last reads of the
 * halo ended at the main loop's closing barrier.
 */
export function stageHalo(c: HaloConv, g: HaloGeometry, threads: number, load: (at: string) => string[], perChannel: string[]): string[] {
  const group = g.channels * c.R * c.S;
  return [
    `if (k0 % ${group} == 0) {`,
    `  // Stage the halo: channels k0 / ${c.R * c.S} … + ${g.channels - 1} of dY' over the window, rounded to bf16 once.`,
    `  for (int q = t; q < ${g.channels * g.window}; q += ${threads}) {`,
    `    const int kout = k0 / ${c.R * c.S} + q / ${g.window};`,
    `    const long long z = halo_start + q % ${g.window};`,
    `    const int img = int(z / ${g.zhw}), i = int(z % ${g.zhw}) / ${g.zw}, j = int(z % ${g.zw});`,
    `    const int p = i - ${c.R - 1 - c.ph}, u = j - ${c.S - 1 - c.pw};`,
    ...perChannel.map((s) => `    ${s}`),
    '    float v = 0.0f;',
    `    if (img < n && kout < ${c.K} && p >= 0 && p < ${c.P} && u >= 0 && u < ${c.Q}) {`,
    `      const long long at = ((long long)img * ${c.K} + kout) * ${c.P * c.Q} + p * ${c.Q} + u;`,
    ...load('at').map((s) => `      ${s}`),
    '    }',
    '    nincc::st(&halo[q], nincc::to_bf16(v));',
    '  }',
    '  __syncthreads();',
    '}',
  ];
}

/**
 * A's staging from the halo (stageAcrossRows' perRow and perElement): row m's tap e = (k, r, s) is the
 * halo element of channel k − group start at the row's base + (R − 1 − r)·WZ + (S − 1 − s). Rows past the
 * batch or the image read some staged value: their outputs are never stored nor counted.
 */
export function haloStaging(c: HaloConv, g: HaloGeometry, rows: number): { perRow: string[]; perElement: string[] } {
  const RS = c.R * c.S;
  return {
    perRow: ['const long long m = m0 + row;', `const int hb = int(${baseOf('m', c, g, rows)} - halo_start);`],
    perElement: [
      'const int kk = k0 + ko;',
      `const int kl = kk / ${RS} - k0 / ${g.channels * RS} * ${g.channels}, rs = kk % ${RS};`,
      `v = nincc::bf16_to_float(nincc::ld(&halo[kl * ${g.window} + hb + (${c.R - 1} - rs / ${c.S}) * ${g.zw} + ${c.S - 1} - rs % ${c.S}]));`,
    ],
  };
}
