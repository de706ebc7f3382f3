// The few-channels stem of the bf16 tensor-core forward (conv-mma.ts): a strided k×k conv on a few input channels
// (NIN's 3→96 11×11/4) stages, once per block, the band of input rows its BM output positions reach — every
// channel, rounded to bf16 once, zero where Torch pads — in shared memory, and builds A for every 32-deep slice
// from there. The gathering path reads each input element from global memory about R·S/(sh·sw) times per
// column tile (NIN's stem: ~16× through L2); the band reads it about (band rows)/(sh·rows a block covers) times.
//
// Geometry (the stride-1 halo's, conv-mma-halo.ts, with strides). Pad each image into a plane Z of
// (P − 1)·sh + R rows × ZW = (Q − 1)·sw + S columns, Z[i][j] = x[i − ph][j − pw] (0 outside). Output position
// (p, q) of image img has the base Z index img·ZHW + p·sh·ZW + q·sw, and its tap (r, s) is Z[base + r·ZW + s].
// Bases rise with the GEMM row m (a padding row, pos ≥ P·Q, takes its image's last position), so a block's
// rows and taps read the window [base(m0), base(m0 + BM − 1) + (R − 1)·ZW + S − 1]; the band holds that window
// for all C channels. Where a block could span two images and the window, with the operand tiles, would pass
// the static shared-memory limit, each image's GEMM rows are padded to whole blocks (NIN's stem: 3136 → 3200
// rows, 2% more MMA work, no block across images). A's k order (c·R·S + r·S + s), shared layout and B staging
// are the gathering path's, and the values are those same ones rounded to bf16 once: the two builds agree
// bitwise (test/emu-conv-mma-stem.test.ts). A stem from a bf16 weight copy whose space-to-depth form fits
// (conv-mma-stem-s2d.ts: NIN's) takes that form instead; the band is then its off path (`stemS2d: false`).
import { type MmaTile, type Staging } from './conv-mma-tile.js';
import { stemConflicts } from './conv-mma-stem-banks.js';
import { bandWith, isStem, leastPitch, type StemBand, type StemConv } from './conv-mma-stem-geometry.js';

/** Row pitches of Z the band tries, from the least. */
const PITCHES = 16;

/**
 * The band of a stem with tile `tile` over `maxBatch` images of `rows` GEMM rows each (rowsPerImage), or with rows
 * padded to whole blocks where only that fits; of the row pitches leastPitch … + 15, the narrowest whose A
 * staging and band stores take no bank conflicts (stemConflicts: NIN's stem has 1568 extra wavefronts at
 * its least pitch 231, none at 234), else the least pitch. Undefined for a conv that is no stem or where no band fits.
 */
export function stemBand(c: StemConv, tile: MmaTile, rows: number, maxBatch: number, otherShared = 0): StemBand | undefined {
  if (!isStem(c)) return undefined;
  const padded = Math.ceil(rows / tile.bm) * tile.bm;
  const at = (zw: number) => bandWith(c, tile, rows, maxBatch, zw, otherShared) ?? bandWith(c, tile, padded, maxBatch, zw, otherShared);
  const pitches = Array.from({ length: PITCHES }, (_, i) => leastPitch(c) + i);
  const fitting = pitches.map(at).filter((b): b is StemBand => b !== undefined);
  return fitting.find((b) => stemConflicts(c, b, tile, maxBatch) === 0) ?? fitting[0];
}

/** The base Z index of GEMM row `m` (a C++ expression). */
const bandBase = (m: string, c: StemConv, b: StemBand) => {
  const pos = `min(int((${m}) % ${b.rows}), ${c.P * c.Q - 1})`;
  return `(${m}) / ${b.rows} * ${b.zhw} + ${pos} / ${c.Q} * ${c.sh * b.zw} + ${pos} % ${c.Q} * ${c.sw}`;
};

/**
 * Before the main loop: the band buffer, staged once — consecutive threads on consecutive Z positions (along
 * x's rows: coalesced), `load` setting `float v` from x's index `at` (channel `ch`) with the pending transform
 * applied — then a barrier.
 */
export function stageStemBand(c: StemConv, b: StemBand, threads: number, load: (at: string) => string[]): string[] {
  return [
    `NINCC_SHARED(nincc::bf16, band, ${c.C * b.window});  // ${c.C} channels × the ${b.window} padded positions this block's taps reach`,
    `const long long band_start = ${bandBase('m0', c, b)};`,
    `// Stage the band: every channel over the window, rounded to bf16 once (padding stays 0: Torch pads the activation).`,
    `for (int q = t; q < ${c.C * b.window}; q += ${threads}) {`,
    `  const int ch = q / ${b.window};`,
    `  const long long z = band_start + q % ${b.window};`,
    `  const int img = int(z / ${b.zhw}), i = int(z % ${b.zhw}) / ${b.zw}, j = int(z % ${b.zw});`,
    `  const int h = i - ${c.ph}, u = j - ${c.pw};`,
    '  float v = 0.0f;',
    `  if (img < n && h >= 0 && h < ${c.H} && u >= 0 && u < ${c.W}) {`,
    `    const long long at = ((long long)img * ${c.C} + ch) * ${c.H * c.W} + h * ${c.W} + u;`,
    ...load('at').map((s) => `    ${s}`),
    '  }',
    '  nincc::st(&band[q], nincc::to_bf16(v));',
    '}',
    '__syncthreads();',
  ];
}

/**
 * A's staging from the band (stageAlongK's perRow and perElement: eight lanes along a row's taps, which run
 * along a kernel row of the band): row m's tap crs = (ch, r, s) is the band element of channel ch at the row's
 * base + r·ZW + s. Rows past the batch or the image read some staged value: their outputs are never stored nor counted.
 */
export function stemStaging(c: StemConv, b: StemBand): Staging {
  const RS = c.R * c.S;
  return {
    perRow: ['const long long m = m0 + row;', `const int hb = int(${bandBase('m', c, b)} - band_start);`],
    perElement: [
      'const int crs = k0 + ko;',
      `if (crs < ${c.C * RS}) {`,
      `  const int rs = crs % ${RS};`,
      `  v = nincc::bf16_to_float(nincc::ld(&band[crs / ${RS} * ${b.window} + hb + rs / ${c.S} * ${b.zw} + rs % ${c.S}]));`,
      '}',
    ],
  };
}

/** report.txt's words for the band. */
export const stemWords = (c: StemConv, b: StemBand, PQ: number, stats: boolean) =>
  `x staged once per block in a shared band of ${c.C} channels × ${b.window} padded positions (bf16, ${b.bytes} bytes), A built from it for every slice` +
  (b.rows !== (stats ? Math.ceil(PQ / 32) * 32 : PQ) ? `; each image's rows padded to ${b.rows} (whole blocks, none across images)` : '');
