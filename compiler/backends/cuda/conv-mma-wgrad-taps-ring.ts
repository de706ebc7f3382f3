// The tap-major k×k weight gradients' B fragments by ldmatrix straight from the cp.async ring of dY' windows (issue #15,
// `wgradTapsRingFragments`): no B tile. The tap-major halo (conv-mma-wgrad-taps-halo.ts) already takes both operands in
// the positions' own k order, which is a ring window's order (8 consecutive positions of one channel: one 16-byte
// ldmatrix row), so B's fragments are the same bf16 values the B tile held, in the same k order — the products and their
// order are unchanged. Before, each slice read its 128 window rows (a 2-byte load a lane), stored them again as the B
// tile (a 4-byte store a lane) and read them back by ldmatrix: about 0.4 shared wavefronts a MMA on NIN's k21 that this
// skips. ldmatrix wants 16-byte rows, so each window keeps a 40-position pitch (80 bytes: an ldmatrix matrix's 8 rows on
// 8 distinct 16-byte bank groups) and each slice starts at its window's first position, on the copy's chunk: the splits
// fall on multiples of the chunk (chunkSplitRange; NIN's splits already do). Planes of 4-position chunks (NIN's 14×14: 196
// positions, 8-byte copies) copy 8 chunks a row, a 16-lane phase two rows 4 apart (their 64 bytes 64 bytes apart mod
// 128: conflict-free). The bias gradient, which the B staging summed, is summed from the ring window by the blocks that
// store it (row tile 0), in the staging's order (stageAlongPositions' biasPerValue), so every result is bitwise that of
// the switch off where the split bounds are the same. docs/design.md §4.1.
import type { Consts } from './parts.js';
import { BK } from './conv-mma-tile.js';
import { STATIC_SHARED_BYTES } from './conv-mma-halo.js';
import { asyncRingBytes, asyncRingElement, type AsyncRing } from './conv-mma-wgrad-async-ring.js';
import { biasPerValue, type CoalescedRows } from './conv-mma-wgrad-coalesced-staging.js';

/** A window's positions from its first: a slice's 32 and one 16-byte chunk more (80 bytes, see the file's note). */
const PITCH = BK + 8;

/**
 * The ring with 16-byte-aligned window rows, or undefined: 8- or 16-byte chunks, whole 8-row groups of copies, no dY' store
 * (it reads the B staging's values), not a wave split (whole slices already), B's rows along positions for the bias sums;
 * a static ring whose wider windows still fit beside `besideBytes`.
 */
export function tapsRingOf(c: Consts<'conv_wgrad_fused'>, r: AsyncRing | undefined, rows: CoalescedRows | undefined, besideBytes: number): AsyncRing | undefined {
  if (!r || (r.chunk !== 8 && r.chunk !== 4) || r.rows % 8 !== 0 || c.dyOut || c.waveSplits || (c.bias && !rows)) return undefined;
  const wide = { ...r, window: PITCH };
  return wide.dynamic || besideBytes + asyncRingBytes(wide) <= STATIC_SHARED_BYTES ? wide : undefined;
}

/**
 * Per slice, where B was staged: in row tile 0's blocks (those that store the bias partial) each warp's B rows, a lane a
 * position of the window, summed as stageAlongPositions' biasPerValue sums them (the same values, the same tree, the
 * same slice order into `bsum`).
 */
export function tapsRingBiasSums(r: AsyncRing, rows: CoalescedRows, K: number): string[] {
  return [
    "if (blockIdx.x == 0) {  // the bias gradient from the ring window, in the B staging's order (no B tile)",
    '  NINCC_UNROLL',
    `  for (int i = 0; i < ${rows.perWarp}; ++i) {`,
    `    const int row = warp * ${rows.perWarp} + i, kout = n0 + row, ko = lane;`,
    '    float v = 0.0f;',
    ...[...asyncRingElement(r, K), ...biasPerValue('i')].map((line) => `    ${line}`),
    '  }',
    '}',
  ];
}

/** report.txt's words (the ring's own say how dY' arrives). */
export const tapsRingWords = "B's fragments by ldmatrix from the ring's windows (no B tile; windows 80 bytes apart), the splits on its chunks, the bias summed from the windows by row tile 0";
