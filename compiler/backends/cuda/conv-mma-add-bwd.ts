// The residual add's backward in the bf16 tensor-core data gradient's epilogue (addBwdInDgrad on the bf16 path,
// docs/design.md §4): the conv that reads a block's output first stores dz = dX·[out > 0] in place of dX and writes the
// branch ends' Σdz, Σdz·x̂ partials, add_bwd_fused's arithmetic (residual.ts addBackwardOf) in the MMA accumulator layout.
// add_bwd_fused sums a partial over one channel's 32 positions by warp_sum (shfl_down 16, 8, 4, 2, 1: the positions
// paired on bit 4 first, then 3, 2, 1, 0); here those 32 positions of a column are 4 accumulators (j) in each of the 8
// lanes of equal l % 4, position 16·(j/2) + 8·(j%2) + l/4 (conv-mma-grad.ts eachAccumulator). So each lane adds its j
// pairs on bit 4 (j, j + 2), then bit 3, and the lanes shfl_xor 16, 8, 4 for bits 2, 1, 0: the same tree, so the same bits.
import { addBackwardOf, endGradient, type AddBackward } from './residual.js';

const ends = (add: AddBackward) => [...(add.aStats ? [['a', add.aRelu] as const] : []), ...(add.bStats ? [['b', add.bRelu] as const] : [])];

/** Per 32-row part and column (eachAccumulator's perRows): each end's dz and dz·x̂ at the lane's 4 positions. */
// The lane's values are `${p}_lane_dz`, `${p}_lane_dzx`: not `${p}_dzx`, the kernel's parameter (the partials' buffer).
export const addBwdPartOpen = (add: AddBackward): string[] => ends(add).map(([p]) => `float ${p}_lane_dz[4], ${p}_lane_dzx[4];  // this lane's 4 positions of the column's 32`);

/**
 * Per accumulator (after eachAccumulator's `dv`, `at`, `valid`, `col`): dv masked by the block's ReLU, stored as dz in
 * dx, and each end's dz, dz·x̂ at position j kept for the part's sum. `ch` the column clamped into the channels (the
 * ends' parameters are read unguarded where the mask is recomputed from them).
 */
export const addBwdAccumulator = (add: AddBackward, C: number): string[] => [
  '{  // the residual add\'s backward (conv-mma-add-bwd.ts): dX is the add\'s whole gradient, this conv\'s the last',
  `  const int ch = col < ${C} ? col : 0;`,
  '  float d = dv;',
  ...addBackwardOf(add, '', 'dx', (p, relu) => ['{', '  float dzv = 0.0f, dzx = 0.0f;', ...endGradient(p, relu).map((s) => `  ${s}`), `  ${p}_lane_dz[j] = dzv; ${p}_lane_dzx[j] = dzx;`, '}']).map((s) => `  ${s}`),
  '}',
];

/** After the part's accumulators (eachAccumulator's afterRows): each end's partials of the 32 positions in add_bwd_fused's warp_sum order, at its slot. */
export const addBwdPartClose = (add: AddBackward, C: number, statTiles: number, rows: number, part: string): string[] => {
  const tree = (v: string) => [`float ${v}_s = (${v}[0] + ${v}[2]) + (${v}[1] + ${v}[3]);`, `${v}_s += nincc::shfl_xor(${v}_s, 16); ${v}_s += nincc::shfl_xor(${v}_s, 8); ${v}_s += nincc::shfl_xor(${v}_s, 4);`];
  return ends(add).length === 0
    ? []
    : [
        '{  // the branch ends\' Σdz, Σdz·x̂ of these 32 positions: add_bwd_fused\'s warp_sum tree (conv-mma-add-bwd.ts)',
        ...ends(add).flatMap(([p]) => [...tree(`${p}_lane_dz`), ...tree(`${p}_lane_dzx`)]).map((s) => `  ${s}`),
        `  const long long first = ${part};`,
        `  const int img = int(first / ${rows}), tile = int(first % ${rows}) / 32;`,
        `  if (lane < 4 && img < n && tile < ${statTiles} && col < ${C}) {`,
        `    const long long slot = ((long long)img * ${statTiles} + tile) * ${C} + col;`,
        ...ends(add).map(([p]) => `    nincc::st(&${p}_dz[slot], ${p}_lane_dz_s); nincc::st(&${p}_dzx[slot], ${p}_lane_dzx_s);`),
        '  }',
        '}',
      ];
};
