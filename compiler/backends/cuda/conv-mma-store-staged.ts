// The staged bf16 output stores of the tensor-core convs (conv-mma.ts forward y, conv-mma-grad.ts data
// gradient dX): the m16n8 accumulator layout gives a lane 2 channels × 2 positions 8 apart, so direct 2-byte
// stores of one warp instruction write 8 positions × 4 channels — each 32-byte sector half used. Instead each
// warp writes its 32 rows × 8 columns (one n8 tile, one 32-row part) into its own piece of the operand tiles'
// shared memory (dead after the main loop's last barrier), channel-major, then reads them back as 16-byte
// chunks of 8 consecutive positions of one channel: an NCHW plane's positions are contiguous, so each lane
// stores one int4, and a warp instruction writes 8 channels × 64 contiguous bytes — whole sectors. The values
// are the same rounded bf16 the direct store wrote (a pure data-movement change). docs/design.md §4.1.

/** A channel's 32 rows in the warp's piece, padded to 40 bf16 (80 bytes): see stagedWrite and stagedStore for why conflict-free. */
export const STAGED_PITCH = 40;
/** One warp's piece: 8 channels (an n8 tile) of STAGED_PITCH bf16. */
export const STAGED_WARP_BYTES = 8 * STAGED_PITCH * 2;

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

/** The warp's piece of shared buffer `buffer` (an int4 array of the kernel), as bf16. */
export const stagedPiece = (buffer: string) => `nincc::bf16* const staged = reinterpret_cast<nincc::bf16*>(&${buffer}[0]) + warp * ${8 * STAGED_PITCH};  // this warp's 8 channels × 32 rows (dead operand tiles)`;

/**
 * Accumulator element j of column half `half` (row 16·(j/2) + 8·(j%2) + l/4 of the 32, column 2·(l%4) + half),
 * rounded to bf16, into the piece. One instruction's lanes hit channels half, 2 + half, 4 + half, 6 + half
 * (words 20·col apart: banks 0, 8, 16, 24 or 20, 28, 4, 12) at 8 rows (4 words): 32 distinct banks.
 */
export const stagedWrite = (v: string) => `nincc::st(&staged[(2 * (lane % 4) + half) * ${STAGED_PITCH} + 16 * (j / 2) + 8 * (j % 2) + lane / 4], nincc::to_bf16(${v}));`;

/**
 * After the warp wrote its 32 rows (`first`: the first's global row) × 8 columns (`col0`: the first's
 * column). Positions a multiple of 8 (every chunk 16-byte aligned, in one image): lane l stores column l % 8,
 * rows 8·(l/8)…+7 as one int4; the 8 lanes of a 16-byte phase read 8 channels at words 20·col + 4·chunk,
 * 8 distinct 4-bank groups. Otherwise (NIN's 55×55, 27×27, 13×13, 6×6 planes) the chunks are unaligned: lane
 * l stores row l of each channel in turn, 2 bytes, so one instruction still writes 64 contiguous bytes (2 or
 * 3 whole sectors, against the direct stores' 4 half-used). Rows past a plane (a partial tile, the padding
 * of an image's rows) are not stored.
 */
export function stagedStore(t: StagedTarget, first: string, col0: string): string[] {
  // The 8 rows of a chunk lie in one image, at an 8-aligned position, when both counts are multiples of 8.
  const vector = t.positions % 8 === 0 && t.rows % 8 === 0;
  return [
    'nincc::sync_warp();',
    ...(vector
      ? [
          '{',
          `  const int col = ${col0} + lane % 8, r8 = 8 * (lane / 8);`,
          `  const long long m = ${first} + r8;`,
          `  const int img = int(m / ${t.rows}), pos = int(m % ${t.rows});`,
          `  if (img < n && col < ${t.columns} && pos < ${t.positions}) {  // a whole chunk: the plane's positions run in multiples of 8`,
          `    const int4 chunk = nincc::ld(reinterpret_cast<const int4*>(&staged[(lane % 8) * ${STAGED_PITCH} + r8]));`,
          `    nincc::st(reinterpret_cast<int4*>(&${t.dst}[(long long)(${t.plane('img', 'col')}) * ${t.positions} + pos]), chunk);`,
          '  }',
          '}',
        ]
      : [
          'NINCC_UNROLL',
          'for (int c8 = 0; c8 < 8; ++c8) {  // lane l: row l of each channel in turn, 32 consecutive positions (64 contiguous bytes, unaligned)',
          `  const int col = ${col0} + c8;`,
          `  const long long m = ${first} + lane;`,
          `  const int img = int(m / ${t.rows}), pos = int(m % ${t.rows});`,
          `  if (img < n && col < ${t.columns} && pos < ${t.positions}) nincc::st(&${t.dst}[(long long)(${t.plane('img', 'col')}) * ${t.positions} + pos], nincc::ld(&staged[c8 * ${STAGED_PITCH} + lane]));`,
          '}',
        ]),
    'nincc::sync_warp();  // the piece is rewritten for the next 32 rows',
  ];
}
