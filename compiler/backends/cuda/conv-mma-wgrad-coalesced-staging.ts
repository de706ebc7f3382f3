// The bf16 weight gradients' operand staging at full coalescing: one staged row a warp instruction, the 32
// lanes along the row's 32 positions of the slice (64 bytes in bf16, 128 in fp32: whole sectors), where
// stageAlongK (conv-mma-tile.ts) puts 8 lanes on each of 4 rows (16 bytes a row, half a sector each).
// Each position goes where stageAlongK's lane would have put it (two lanes pair theirs into one bf16x2
// store) — the slice's shared k order is kept, so the products and their order in A·B are unchanged (bitwise). The rows'
// channel parameters (a pending BN, the dReLU·dBN rebuild) are loaded once per block, a lane per row,
// and passed to the row's lanes by shuffle. docs/design.md §4.1.
import { swizzled } from './conv-mma-tile.js';

/**
 * The rows each warp stages, a run of consecutive rows, or undefined where `rows` does not split evenly
 * into an even number of at most 32 a warp (a lane holds the parameters of one row; rows go in pairs).
 */
export function rowsPerWarp(rows: number, threads: number): number | undefined {
  const warps = threads / 32;
  return rows % warps === 0 && rows / warps <= 32 && (rows / warps) % 2 === 0 ? rows / warps : undefined;
}

/** The warp's row `i` (0..perWarp−1) in the tile. */
const warpRow = (perWarp: number, i: string) => `warp * ${perWarp} + ${i}`;

/**
 * The shared position of the lane that loads slice offset `lane`: stageAlongK's lane `quarter` put offsets
 * quarter + 8·e at position 4·quarter + e, so offset o goes to 4·(o % 8) + o / 8.
 */
const SHARED_POSITION = '(4 * (lane % 8) + lane / 8)';

/** How one operand's rows are found: their channel and whether they are inside the operand, given the row. */
export interface CoalescedRows {
  /** The tile's rows, and the warp's share of them (rowsPerWarp). */
  readonly rows: number;
  readonly perWarp: number;
  /** The channel parameters' buffers read per row (conv-mma-channels.ts's fields), each into `r_<field>`. */
  readonly fields: readonly string[];
  /** The row's channel and its liveness, as expressions of the row index expression. */
  readonly channel: (row: string) => string;
  readonly live: (row: string) => string;
}

/**
 * Before the slice loop: lane l of each warp loads the parameters of the warp's row l into `h_<field>`
 * (a row's channel is the same every slice), 0 past the warp's rows or the operand.
 */
export function hoistRowParams(r: CoalescedRows): string[] {
  const row = warpRow(r.perWarp, 'lane');
  return r.fields.map((field) => `const float h_${field} = lane < ${r.perWarp} && ${r.live(row)} ? nincc::ld(&${field}[${r.channel(row)}]) : 0.0f;`);
}

/**
 * Stages the warp's rows two at a time, each a load instruction: `perRow` sees `row` and the row's parameters
 * `r_<field>`, `perElement` sets `float v` (zero-initialised) for slice offset `ko` = lane, and `perValue(i)`
 * runs on every lane after it, `i` the row's index in the warp (the whole warp: a shuffle may follow). Lanes
 * l and l + 8 (l / 8 even) hold neighbouring shared positions: by one shfl_xor 8, the first keeps the pair
 * of the first row, the second that of the second, and each stores it as one bf16x2 — 4 bytes a lane, the
 * two rows' 128 contiguous bytes in one wavefront, as stageAlongK's 8-byte stores of four rows take two.
 * `unrollBy`: the pairs unrolled that many at a time, not all of them (wgradGatherUnrollBy4 in conv-mma-grad.ts).
 */
export function stageAlongPositions(tile: 'as' | 'bs', r: CoalescedRows, perRow: readonly string[], perElement: readonly string[], perValue: (i: string) => readonly string[] = () => [], natural = false, unrollBy?: number): string[] {
  const half = (h: number) => [
    `  {  // row ${h} of the pair`,
    `    const int row = ${warpRow(r.perWarp, `i + ${h}`)};`,
    ...r.fields.map((field) => `    const float r_${field} = nincc::shfl(h_${field}, i + ${h});`),
    ...perRow.map((line) => `    ${line}`),
    '    const int ko = lane;',
    '    float v = 0.0f;',
    ...perElement.map((line) => `    ${line}`),
    ...perValue(`i + ${h}`).map((line) => `    ${line}`),
    `    pair[${h}] = v;`,
    '  }',
  ];
  // In the positions' own order (K_OFFSET_NATURAL, conv-mma-wgrad-taps-halo.ts) lanes l and l + 1 hold a pair's two positions: by one
  // shfl_xor 1 the even lane keeps the first row's pair, the odd one the second's.
  const pairUp = natural
    ? [
        '  // The odd lanes keep the second row\'s pair (lane l − 1\'s value, then theirs), the even ones the first\'s (theirs, then lane l + 1\'s).',
        '  const int second = lane % 2;',
        '  const float sent = nincc::shfl_xor(second ? pair[0] : pair[1], 1);',
        `  const int row = ${warpRow(r.perWarp, 'i + second')}, at = lane - second;  // the pair's first position: even`,
      ]
    : [
        '  // The lanes of odd l / 8 keep the second row\'s pair (lane l − 8\'s value, then theirs), the others the first\'s (theirs, then lane l + 8\'s).',
        '  const int second = lane / 8 % 2;',
        '  const float sent = nincc::shfl_xor(second ? pair[0] : pair[1], 8);',
        `  const int row = ${warpRow(r.perWarp, 'i + second')}, at = ${SHARED_POSITION} - second;  // the pair's first position: even`,
      ];
  return [
    unrollBy === undefined ? 'NINCC_UNROLL' : `NINCC_UNROLL_BY(${unrollBy})`,
    `for (int i = 0; i < ${r.perWarp}; i += 2) {`,
    '  float pair[2];',
    ...half(0),
    ...half(1),
    ...pairUp,
    `  nincc::st(reinterpret_cast<uint32_t*>(${tile}) + (${swizzled('row', 'at / 8')}) * 4 + at % 8 / 2, second ? nincc::to_bf16x2(pair[1], sent) : nincc::to_bf16x2(sent, pair[0]));`,
    '}',
  ];
}

/**
 * The bias gradient with B staged along positions: each row's 32 values of the slice summed across the
 * warp by shfl_xor 16, 8, 4, 2, 1 (a fixed tree), the slice sums added in slice order by the lane that
 * holds the row (`bsum`). Another order than stageAlongK's (8 lanes each summing 4 positions a slice,
 * then across them), so the bias gradient is not bitwise that of `wgradCoalesced: false`.
 */
export const biasPerValue = (i: string): string[] => [
  'float s = v;',
  's += nincc::shfl_xor(s, 16); s += nincc::shfl_xor(s, 8); s += nincc::shfl_xor(s, 4); s += nincc::shfl_xor(s, 2); s += nincc::shfl_xor(s, 1);',
  `if (lane == ${i}) bsum += s;`,
];

/** After the slice loop: the blocks of column 0 store each row's sum to this split's partial. */
export function biasStore(r: CoalescedRows, channels: number): string[] {
  return [
    '// The bias gradient in fp32 from the staged dY\' (before rounding): lane l holds the sum of the warp\'s row l.',
    `if (blockIdx.x == 0 && lane < ${r.perWarp} && n0 + ${warpRow(r.perWarp, 'lane')} < ${channels}) nincc::st(&bpart[split * ${channels} + n0 + ${warpRow(r.perWarp, 'lane')}], bsum);`,
  ];
}
