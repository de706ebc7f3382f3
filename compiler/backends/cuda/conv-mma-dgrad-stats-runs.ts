// The bf16 data gradients' statistics epilogue reading e_y (the input's pending y) in whole sectors (issue #15, switch
// `dgradStatsRuns`). The m16n8 accumulator layout gives a lane 2 channels × 4 positions 8 apart of a 32-row part, so
// reading e_y there takes 8 load instructions of 8 positions × 4 channels: 16-byte runs, each 32-byte sector read
// half by two instructions (NIN's k4/k7 data gradients: 24.08M sectors for 21.68M needed). Instead each lane loads
// one 16-byte run (8 positions of one channel: the part's 8 columns × 32 rows are 32 runs, one a lane, whole sectors)
// and the warp transposes them to the accumulator layout through registers: an 8×8 transpose of bf16 among the 8
// lanes of equal l % 4, three butterfly stages of shfl_xor (2 words each). The values and the statistics' summation
// order are the direct reads', so the result is bitwise theirs. Needs whole runs: a plane of a multiple of 8
// positions (16-byte aligned) and rows per image a multiple of 8, so a run is wholly inside or past a plane.
import type { Consts } from './parts.js';

/** Whether the runs apply: a bf16 e_y on planes of whole 16-byte runs. */
export const statsRunsFit = (c: Consts<'conv_dgrad_fused'>, positions: number, rows: number): boolean =>
  c.eyBf16 === true && positions % 8 === 0 && rows % 8 === 0;

/**
 * Per n8 tile and 32-row part (`first`: its first global row; `col0`: its first column), before its column halves:
 * lane l (s = l % 4, t = l / 4) loads positions 8·(t % 4)… of column 2·s + t / 4, then the transpose leaves in word
 * ey[2·half + j / 2], half j % 2, the value of the accumulator element (j, half): column 2·s + half, row 8·j + t.
 * Stage b exchanges index bit b of the 8 values with lane bit 2 + b (lanes 4 << b apart): the lane whose bit is set
 * keeps the values whose index bit is set and receives the others from its partner, and the partner the converse.
 */
export function statsRunsLoad(c: Consts<'conv_dgrad_fused'>, first: string, col0: string, positions: number, rows: number): string[] {
  return [
    'uint32_t ey[4] = {0u, 0u, 0u, 0u};  // e_y of this part: 8 bf16, transposed below into the accumulator layout',
    '{',
    `  const long long m = ${first} + 8 * ((lane >> 2) & 3);`,
    `  const int img = int(m / ${rows}), pos = int(m % ${rows}), ch = ${col0} + 2 * (lane & 3) + (lane >> 4);`,
    `  if (img < n && pos < ${positions} && ch < ${c.C}) {  // one 16-byte run: 8 positions of channel ch`,
    `    const int4 run = nincc::ld(reinterpret_cast<const int4*>(&e_y[((long long)img * ${c.C} + ch) * ${positions} + pos]));`,
    '    ey[0] = uint32_t(run.x); ey[1] = uint32_t(run.y); ey[2] = uint32_t(run.z); ey[3] = uint32_t(run.w);',
    '  }',
    '}',
    '{  // index bit 2 (words w, w + 2) with lanes 16 apart',
    '  const bool set = (lane & 16) != 0;',
    '  NINCC_UNROLL',
    '  for (int w = 0; w < 2; ++w) {',
    '    const uint32_t got = nincc::shfl_xor(set ? ey[w] : ey[w + 2], 16);',
    '    if (set) ey[w] = got; else ey[w + 2] = got;',
    '  }',
    '}',
    '{  // index bit 1 (words w, w + 1) with lanes 8 apart',
    '  const bool set = (lane & 8) != 0;',
    '  NINCC_UNROLL',
    '  for (int w = 0; w < 4; w += 2) {',
    '    const uint32_t got = nincc::shfl_xor(set ? ey[w] : ey[w + 1], 8);',
    '    if (set) ey[w] = got; else ey[w + 1] = got;',
    '  }',
    '}',
    '{  // index bit 0 (the halves of a word) with lanes 4 apart: two words\' halves a shuffle',
    '  const bool set = (lane & 4) != 0;',
    '  NINCC_UNROLL',
    '  for (int w = 0; w < 4; w += 2) {',
    '    const uint32_t got = nincc::shfl_xor(set ? (ey[w] & 0xffffu) | (ey[w + 1] << 16) : (ey[w] >> 16) | (ey[w + 1] & 0xffff0000u), 4);',
    '    if (set) { ey[w] = (ey[w] & 0xffff0000u) | (got & 0xffffu); ey[w + 1] = (ey[w + 1] & 0xffff0000u) | (got >> 16); }',
    '    else { ey[w] = (ey[w] & 0xffffu) | (got << 16); ey[w + 1] = (ey[w + 1] & 0xffffu) | (got & 0xffff0000u); }',
    '  }',
    '}',
  ];
}

/** The e_y value of accumulator element (j, half), after statsRunsLoad. */
export const statsRunsValue = 'nincc::bf16_to_float(j % 2 ? nincc::high_bf16(ey[2 * half + j / 2]) : nincc::low_bf16(ey[2 * half + j / 2]))';
