// The staged fp32 output stores of the tensor-core inference convs (conv-mma.ts conv_infer, whose y is fp32):
// the m16n8 accumulator layout gives a warp instruction 8 positions × 4 channels, four 32-byte runs that
// straddle two sectors each unless the run starts on one (NIN's planes are odd, so most do not: 7 or 8
// sectors for the 4 the bytes need). As the bf16 stores (conv-mma-store-staged.ts, whose keep/target this
// shares), each warp writes its 32 rows × 8 channels into its own 1024-byte piece of the dead operand tiles,
// reads back one row per lane and stores channel by channel: 32 consecutive positions of one NCHW plane, 128
// contiguous bytes, 4 or 5 sectors at any alignment. The values are the accumulators the direct stores wrote.
import { storeRowsByChannel, type StagedTarget } from './conv-mma-store-staged.js';

/** A row of the piece: 8 channels' fp32, two 16-byte halves. */
const ROW_WORDS = 8;
/** One warp's piece: 32 rows. */
export const STAGED_FP32_WARP_BYTES = 32 * ROW_WORDS * 4;

/**
 * The per-layer choice: whether a plane of `positions` fp32 outputs makes the direct stores waste sectors. A
 * direct run is 8 positions (32 bytes) from a multiple of 8 in the plane; it fills one sector exactly when every
 * plane starts on one, i.e. when positions is a multiple of 8 (NIN's 56² and 28²: 100 % store efficiency already,
 * where staging would only add its 16 shared wavefronts a part). Otherwise runs straddle two sectors (NIN's 14²:
 * half of them; 7²: most), and staging moves 128-byte runs instead.
 */
export const directFp32StoresWaste = (positions: number) => positions % 8 !== 0;

/** Whether the block's shared buffer of `bytes` holds every warp's fp32 piece. */
export const stagedFp32Fits = (bytes: number, warps: number) => warps * STAGED_FP32_WARP_BYTES <= bytes;

/** The warp's piece of shared buffer `buffer` (an int4 array of the kernel), as floats. */
export const stagedFp32Piece = (buffer: string) =>
  `float* const staged = reinterpret_cast<float*>(&${buffer}[0]) + warp * ${32 * ROW_WORDS};  // this warp's 32 rows × 8 channels in fp32 (dead operand tiles)`;

/**
 * Where row `row`'s 16-byte half `half` sits: rows 4..7 of every 8 swap their halves, so that the 8 lanes of
 * a read phase (rows l..l+7, one half each) fall on 8 distinct groups of 4 banks, and the 16 lanes of a
 * write phase (4 rows, 32 words) on 32 distinct banks.
 */
const halfAt = (row: string, half: string) => `${row} * ${ROW_WORDS} + 4 * ((${half}) ^ ((${row}) / 4 % 2))`;

/**
 * Accumulator element j of column half `half` (row 16·(j/2) + 8·(j%2) + l/4 of the part, column 2·(l%4) + half):
 * half 0 waits in keep[j]; half 1 writes both as one float2 (columns 2·(l%4) and 2·(l%4) + 1).
 */
export const stagedFp32Write = (v: string) =>
  `if (half == 0) keep[j] = ${v}; else { const int row = 16 * (j / 2) + 8 * (j % 2) + lane / 4; nincc::store_float2(&staged[${halfAt('row', 'lane % 4 / 2')} + 2 * (lane % 2)], make_float2(keep[j], ${v})); }`;

/**
 * After the warp wrote its part (`first`: the part's first global row; `col0`: its first column): lane l reads
 * row l (two 16-byte halves), then stores it channel by channel. Rows past a plane (a partial tile, the
 * padding of an image's rows) are not stored.
 */
export function stagedFp32Store(t: StagedTarget, first: string, col0: string): string[] {
  return storeRowsByChannel(
    t,
    first,
    col0,
    [
      `const float4 lo = nincc::load_float4(&staged[${halfAt('lane', '0')}]), hi = nincc::load_float4(&staged[${halfAt('lane', '1')}]);  // row \`lane\`: its 8 channels`,
      'const float value[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};',
    ],
    { bytes: 128, value: 'value[c8]' },
  );
}
