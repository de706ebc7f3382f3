// A tap-major k×k data gradient's reduction in splits (issue #15, ablation dgradTapSplits): where its grid is a fraction
// of the GPU's resident slots (NIN's k31: 49 × 3 blocks of 128×128 for 264 slots, charged 1.80× by the waves), the
// reduction over K's 32-channel groups (each group: its halo staged once, then R·S taps: conv-mma-taps-halo.ts) is split
// across gridDim.z, whole groups a split, so no halo is staged twice. Each block stores its accumulators (fp32, the
// thread's own layout, consecutive threads on consecutive words) as its split's partial, fences and takes its tile's
// ticket; the block that draws the last one adds every split's partials in split order and runs the unchanged epilogue
// (dx, the input BN's statistics) on the sum. Another summation order than the unsplit loop's: deterministic (the sum's
// order does not depend on which split finished last), not bitwise the one-split result.
import { wavesOf } from '../../../runtime/profile/waves.js';
import { BK } from './conv-mma-tile.js';

/** Resident blocks a SM the choice assumes before ptxas has spoken: NIN's tap-major data gradients, 4 warps at ~223 registers. */
export const DGRAD_RESIDENT_BLOCKS = 2;

/** The most splits: each adds an fp32 copy of the output written and read once (NIN's k31: 9.6 MB a split). */
export const DGRAD_MAX_SPLITS = 4;

/** One split's grid (output tiles), a tile's BM·BN, and K's 32-channel groups. */
export interface DgradGrid {
  readonly tiles: number;
  readonly area: number;
  readonly groups: number;
}

/**
 * The split count of least waves × groups a block runs, by the profile's wave rule (runtime/profile/waves.ts), in
 * 1..DGRAD_MAX_SPLITS; of equals the fewest (less partial traffic).
 */
export function chooseDgradSplits(g: DgradGrid, sms: number, residentBlocks = DGRAD_RESIDENT_BLOCKS): number {
  const cost = (s: number) => wavesOf(g.tiles * s, sms, residentBlocks) * Math.ceil(g.groups / s);
  let best = 1;
  for (let s = 2; s <= Math.min(DGRAD_MAX_SPLITS, g.groups); s++) if (cost(s) < cost(best)) best = s;
  return best;
}

/** The split's k range (C++ lines declaring k_lo, k_hi): whole groups of `groupDepth` (32 channels × R·S taps). */
export function dgradSplitRange(splits: number, groups: number, groupDepth: number): string[] {
  if (groupDepth % BK !== 0) throw new Error(`internal error: a data-gradient group of ${groupDepth} is not whole slices`);
  return [
    `const int split = int(blockIdx.z);  // this block's share of K's ${groups} groups of ${groupDepth} (conv-mma-dgrad-splits.ts)`,
    `const int k_lo = ${groups} * split / ${splits} * ${groupDepth}, k_hi = ${groups} * (split + 1) / ${splits} * ${groupDepth};`,
  ];
}

/** The splits' partials at pointer `at` (a word of split 0's) added in split order, `pitch` words apart. */
const splitsSum = (splits: number, pitch: number, at = 'at') => Array.from({ length: splits }, (_, sp) => `nincc::ldcg(${sp === 0 ? at : `${at} + ${sp * pitch}`})`).join(' + ');

/**
 * After the main loop: the partial stored, the ticket taken (thread 0's, through `flag`: an idle shared int4 array),
 * every block but the tile's last split leaving. That one then has the splits' sum in split order, its own partial read
 * back as well, in one of two forms. `inEpilogue` (ablation dgradSumInEpilogue, on): the epilogue reads each
 * accumulator's sum where it reads the accumulator (dgradSplitAccumulator), a few partials live at a time between its
 * stores: 217–223 registers in every split data gradient of NIN and resnet-18 (sm_80, sm_90), no spill. Off: the
 * block replaces its accumulators acc[MT][NT][4] by the sum here, before the epilogue: 254–255 registers, and where
 * the epilogue stores fp32 dx straight to global memory (resnet-18's k47, k64) 76 and 292 bytes of spill (bench/RESULTS.md
 * i15s). (Round 16's form, its own partial from registers selected by the split, took 255 and spilled in NIN's k31.)
 */
export function dgradSplitSum(splits: number, MT: number, NT: number, threads: number, flag: string, inEpilogue = false): string[] {
  const pitch = MT * NT * 4 * threads; // a split's partial of one tile
  // `line` for each accumulator, at `word`: its offset in a split's partial (compile-time indices keep acc in registers).
  const each = (line: string) => [
    '  NINCC_UNROLL',
    `  for (int mt = 0; mt < ${MT}; ++mt)`,
    '    NINCC_UNROLL',
    `    for (int nt = 0; nt < ${NT}; ++nt)`,
    '      NINCC_UNROLL',
    '      for (int e = 0; e < 4; ++e) {',
    `        const int word = ((mt * ${NT} + nt) * 4 + e) * ${threads};`,
    `        ${line}`,
    '      }',
  ];
  const tilePart = [
    'const int tile = int(blockIdx.y * gridDim.x + blockIdx.x);',
    `float* const tile_part = dpart + (long long)tile * ${splits * pitch} + t;`,
  ];
  return [
    // Summed in the epilogue, tile_part outlives the block below.
    ...(inEpilogue ? tilePart : []),
    `{  // the splits' ${inEpilogue ? 'partials' : 'sum'} (conv-mma-dgrad-splits.ts): each split's partial of this tile, consecutive threads on consecutive words`,
    ...(inEpilogue ? [] : tilePart.map((s) => `  ${s}`)),
    ...each(`nincc::st(&tile_part[split * ${pitch} + word], acc[mt][nt][e]);`),
    '  __threadfence();  // this thread\'s partial is visible to every block before its block takes the ticket',
    '  __syncthreads();',
    `  if (t == 0) ${flag}[0].x = int(atomicInc(reinterpret_cast<unsigned*>(dtickets) + tile, ${splits - 1}u) == ${splits - 1}u);`,
    '  __syncthreads();',
    `  if (${flag}[0].x == 0) return;  // another split of this tile finishes it${inEpilogue ? ', this one sums them in its epilogue' : ''}`,
    ...(inEpilogue ? [] : each(`const float* const at = tile_part + word;  acc[mt][nt][e] = ${splitsSum(splits, pitch)};`)),
    '}',
  ];
}

/**
 * The epilogue's lines that read accumulator acc[mt][nt][e] as `d` where the sum is in the epilogue (dgradSplitSum):
 * its splits' partials added in split order, the same sum as the other form.
 */
export function dgradSplitAccumulator(splits: number, MT: number, NT: number, threads: number, mt: string, nt: string, e: string): string[] {
  return [
    `const float* const part_at = tile_part + ((${mt}) * ${NT} + ${nt}) * ${4 * threads} + (${e}) * ${threads};  // this accumulator's word in each split's partial`,
    `const float d = ${splitsSum(splits, MT * NT * 4 * threads, 'part_at')};`,
  ];
}

/** report.txt's words. */
export const dgradSplitWords = (splits: number) =>
  `K's channel groups in ${splits} splits (gridDim.z), fp32 partials summed in split order by the last split block of each tile`;
