// The staged bf16 output stores of the tensor-core convs (conv-mma.ts forward y, conv-mma-grad.ts data
// gradient dX): the m16n8 accumulator layout gives a lane 2 channels × 2 positions 8 apart, so direct 2-byte
// stores of one warp instruction write 8 positions × 4 channels — 16-byte runs, each 32-byte sector half used.
// Instead each warp writes its 32 rows (positions) × 8 columns (channels: one n8 tile) as bf16 pairs into its
// own 512-byte piece of the operand tiles' shared memory (dead after the main loop's last barrier), reads back
// one row's 8 channels per lane (16 bytes), and stores channel by channel: lane l writes position l of the
// channel, so each store instruction writes 32 consecutive positions of one NCHW plane — 64 contiguous bytes,
// 2 or 3 whole sectors at any alignment (NIN's planes are all odd or 36 positions: 16-byte stores of 8
// positions would need a plane whose positions are a multiple of 8). The values are the same rounded bf16
// the direct stores wrote (a pure data-movement change). docs/design.md §4.1.

/** A row of the piece: 8 channels' bf16, as 4 words (pairs of channels, the lower channel in the low half). */
export const STAGED_ROW_WORDS = 4;
/** One warp's piece: 32 rows. */
export const STAGED_WARP_BYTES = 32 * STAGED_ROW_WORDS * 4;

/** Where the staged stores go: the output plane of D column `col` (a C++ expression of `img` and `col`), its positions, rows per image. */
export interface StagedTarget {
  readonly dst: string; // the bf16 output buffer
  readonly plane: (img: string, col: string) => string; // index of the channel's plane: its first position is plane · positions
  readonly columns: number; // D's columns (channels of this conv's output)
  readonly positions: number; // positions of a plane (PQ, or HW for a data gradient)
  readonly rows: number; // GEMM rows per image (positions padded to whole statistics tiles or blocks)
}

/** Whether the block's shared buffer of `bytes` holds every warp's piece. */
export const stagedFits = (bytes: number, warps: number) => warps * STAGED_WARP_BYTES <= bytes;

/** The warp's piece of shared buffer `buffer` (an int4 array of the kernel), as words. */
export const stagedPiece = (buffer: string) => `uint32_t* const staged = reinterpret_cast<uint32_t*>(&${buffer}[0]) + warp * ${32 * STAGED_ROW_WORDS};  // this warp's 32 rows × 8 channels in bf16 (dead operand tiles)`;

/** Opens each 32-row part, before its column halves: half 0's values wait there for their pair. */
export const stagedKeep = 'float keep[4];  // column half 0 of this part, paired with half 1 for the staged store';

/**
 * Accumulator element j of column half `half` (row 16·(j/2) + 8·(j%2) + l/4 of the part, column 2·(l%4) + half):
 * half 0 waits in keep[j]; half 1 writes both, rounded to bf16, as one word. One instruction's lanes write
 * words 4·row + l%4 of 8 consecutive rows: 32 consecutive words, 32 distinct banks.
 */
export const stagedWrite = (v: string) =>
  `if (half == 0) keep[j] = ${v}; else nincc::st(&staged[(16 * (j / 2) + 8 * (j % 2) + lane / 4) * ${STAGED_ROW_WORDS} + lane % 4], nincc::to_bf16x2(${v}, keep[j]));`;

/**
 * After the warp wrote its part (`first`: the part's first global row; `col0`: its first column): lane l
 * reads row l (16 bytes: each 8-lane phase reads 8 consecutive 16-byte units, distinct bank groups), then
 * stores it channel by channel. Rows past a plane (a partial tile, the padding of an image's rows) are not stored.
 */
export function stagedStore(t: StagedTarget, first: string, col0: string): string[] {
  return storeRowsByChannel(
    t,
    first,
    col0,
    [
      'const int4 pairs = nincc::ld(reinterpret_cast<const int4*>(staged) + lane);  // row `lane`: its 8 channels',
      'const uint32_t word[4] = {uint32_t(pairs.x), uint32_t(pairs.y), uint32_t(pairs.z), uint32_t(pairs.w)};',
    ],
    { bytes: 64, value: 'nincc::bf16{uint16_t(word[c8 / 2] >> (16 * (c8 % 2)))}' },
  );
}

/**
 * The staged stores' second half, for either format: `readRow` puts lane l's row (its 8 channels) in
 * registers, then each of 8 store instructions writes channel c8 (`value`, an expression of c8) of the
 * warp's 32 rows: consecutive positions of one plane, `bytes` contiguous bytes where they stay in it.
 */
export function storeRowsByChannel(t: StagedTarget, first: string, col0: string, readRow: readonly string[], run: { bytes: number; value: string }): string[] {
  return [
    'nincc::sync_warp();',
    '{',
    ...readRow.map((s) => `  ${s}`),
    `  const long long m = ${first} + lane;`,
    `  const int img = int(m / ${t.rows}), pos = int(m % ${t.rows});`,
    '  NINCC_UNROLL',
    `  for (int c8 = 0; c8 < 8; ++c8) {  // one channel a store: 32 consecutive positions, ${run.bytes} contiguous bytes`,
    `    const int col = ${col0} + c8;`,
    `    if (img < n && col < ${t.columns} && pos < ${t.positions}) nincc::st(&${t.dst}[(long long)(${t.plane('img', 'col')}) * ${t.positions} + pos], ${run.value});`,
    '  }',
    '}',
    'nincc::sync_warp();  // the piece is rewritten for the next part',
  ];
}
