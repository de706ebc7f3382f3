// The inference convs' fp32 y (conv-mma.ts conv_infer) stored from the whole block's n8 tile in sector-aligned
// windows. The per-warp staging (conv-mma-store-fp32-staged.ts) stores a warp's 32 rows a channel an instruction:
// 128 bytes off the sector grid on planes that are not a multiple of 8 positions (NIN's 14² and 7²), cut again
// where the 32 rows cross an image, so a run's first and last sectors are shared with the next warp's run or the
// next image's (7²: 1.33 sectors for each needed, 14²: 1.125). Here every warp writes its columns of n8 tile `nt`
// channel-major into the dead operand tiles (column j of the block's tile holds its BM rows, rotated by 8·(j%8/2)
// so that an instruction's 8 rows × 4 columns hit 32 distinct banks), the block waits, and for each image its rows
// reach, the 8 channels' runs of that image (consecutive NCHW planes: one contiguous range where the block holds
// the whole image) are stored by lanes on consecutive words from the sector at or below the range's start: each
// warp instruction covers 4 whole sectors, masked to the block's rows, so a sector is stored once per block. What
// is left over the per-instruction ideal is where a plane is cut by the block's rows (an image at the block's first
// or last row): the sectors a run shares with another block's run, inherent to M tiles that cross images. The
// values are the accumulators the per-warp staging stored (a pure data-movement change). docs/design.md §4.1.

/** The block's geometry that the windows depend on. */
export interface WindowTarget {
  readonly dst: string; // the fp32 output buffer
  readonly plane: (img: string, col: string) => string; // index of the channel's plane (linear in col): its first position is plane · positions
  readonly columns: number; // D's columns (channels of this conv's output)
  readonly positions: number; // PQ
  readonly rows: number; // GEMM rows per image
  readonly blockRows: number; // BM
  readonly warpsN: number; // warps along the block's columns
  readonly warpCols: number; // WN: columns of a warp
  readonly threads: number;
}

/** Shared bytes of one n8 tile of the block: BM rows × 8 columns of each warp along the columns, fp32. */
export const windowBytes = (t: WindowTarget) => t.blockRows * t.warpsN * 8 * 4;

/**
 * Where the windows apply: unpadded rows (inference: a row is a position, as the stores' ranges assume), a power-of-two
 * BM (the rotation wraps by a mask), whole n8 tiles, and the dead buffer of `bytes` holds the block's n8 tile.
 */
export function windowsOf(t: WindowTarget, bytes: number): WindowTarget | undefined {
  const pow2 = (t.blockRows & (t.blockRows - 1)) === 0 && t.blockRows >= 32;
  return t.rows === t.positions && pow2 && t.columns % 8 === 0 && windowBytes(t) <= bytes ? t : undefined;
}

/** The block's n8 tile in shared buffer `buffer` (an int4 array of the kernel), as floats. */
export const windowsBuffer = (buffer: string) => `float* const tile_y = reinterpret_cast<float*>(&${buffer}[0]);  // the block's n8 tile, channel-major, fp32 (dead operand tiles)`;

/** The shared element of block row `row`, column `col` (0..8·warpsN − 1) (C++): the column's BM rows rotated by 8·(col%8/2). */
const elementAt = (t: WindowTarget, row: string, col: string) => `(${col}) * ${t.blockRows} + ((${row}) + 8 * ((${col}) % 8 / 2) & ${t.blockRows - 1})`;

/**
 * Accumulator value `v` of block row `blockRow`, column 2·(l%4) + half of warp column `wn`'s n8 tile: into the tile.
 * An instruction's lanes write rows r..r+7 (r a multiple of 8) × columns 2·(l%4) + half: banks r + l/4 + 8·(l%4), distinct.
 */
export const windowWrite = (t: WindowTarget, blockRow: string, v: string) => `nincc::st(&tile_y[${elementAt(t, blockRow, 'wn * 8 + 2 * (lane % 4) + half')}], ${v});`;

/**
 * After every warp wrote n8 tile `nt` (the block waits): for each warp column g and each image the block's rows reach
 * (positions p0..p1 of it), the 8 channels' runs lie in plane(img, col0)·PQ + p0 … + 7·PQ + p1; warp w stores the
 * 32-word windows from the sector holding the first word, warps apart, its lanes the words of a plane's positions
 * p0..p1. Every lane of a warp runs each window (a uniform loop), and a window with no such word is skipped by the
 * whole warp; a lane whose word is not one stores the window's first live word again (the same bytes and value: no
 * sector added), so that every lane stores as often (the emulator pairs a site's k-th executions, docs/profile.md).
 */
export function windowsStore(t: WindowTarget): string[] {
  const PQ = t.positions;
  const element = (e: string) => elementAt(t, `int((long long)img * ${PQ} + (${e} - base) % ${PQ} - m0)`, `g * 8 + int((${e} - base) / ${PQ})`);
  return [
    '__syncthreads();  // every warp\'s columns of this n8 tile are in tile_y',
    'NINCC_UNROLL',
    `for (int g = 0; g < ${t.warpsN}; ++g) {  // the warps' column groups`,
    `  const int col0 = n0 + g * ${t.warpCols} + nt * 8;`,
    `  if (col0 >= ${t.columns}) continue;`,
    `  for (int img = int(m0 / ${PQ}); img < n && (long long)img * ${PQ} < m0 + ${t.blockRows}; ++img) {  // the images the block's rows reach`,
    `    const int p0 = int(max(m0 - (long long)img * ${PQ}, 0LL)), p1 = int(min(m0 + ${t.blockRows} - (long long)img * ${PQ}, ${PQ}LL));`,
    `    const long long base = (long long)(${t.plane('img', 'col0')}) * ${PQ}, end = base + ${7 * PQ} + p1;  // channel col0's plane; col0 + 1… follow it`,
    `    for (long long w0 = ((base + p0) & ~7LL) + 32 * (int(threadIdx.x) / 32); w0 < end; w0 += ${t.threads}) {  // a warp's window: 32 words, 4 whole sectors`,
    '      const long long e = w0 + lane;',
    `      const bool live = e >= base + p0 && e < end && (e - base) % ${PQ} >= p0 && (e - base) % ${PQ} < p1;`,
    '      const unsigned lanes = nincc::warp_ballot(live);',
    '      if (lanes == 0) continue;  // the whole warp: a window inside the block\'s gap between two planes\' runs',
    '      const unsigned low = lanes & (0u - lanes);  // the first live lane, for the lanes whose word is not one',
    '      const int first = (low & 0xffff0000u ? 16 : 0) + (low & 0xff00ff00u ? 8 : 0) + (low & 0xf0f0f0f0u ? 4 : 0) + (low & 0xccccccccu ? 2 : 0) + (low & 0xaaaaaaaau ? 1 : 0);',
    '      const long long at = live ? e : w0 + first;',
    `      nincc::st(&${t.dst}[at], tile_y[${element('at')}]);`,
    '    }',
    '  }',
    '}',
    '__syncthreads();  // tile_y is rewritten for the next n8 tile',
  ];
}
