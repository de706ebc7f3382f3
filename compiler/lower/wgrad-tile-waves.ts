// A 1×1 bf16 weight gradient's tile for one GPU: where the default tile's grid leaves SMs idle even at the most splits
// (NIN's k4/k7: 1 tile × 32 splits = 32 blocks for 132 SMs), a smaller tile makes more blocks, each with a smaller
// partial, rather than more splits that the last split block would sum alone (bench/RESULTS.md i15U, i15Y).
import { wavesTimesSlices, wgradSplitsForWaves, type WaveGpu, type WgradReduction } from './wgrad-splits-waves.js';

/** One tile a weight gradient may take: its output tiles (blocks of one split) and the MMA work of a block's slice (BM·BN). */
export interface WgradTileOption {
  readonly tiles: number;
  readonly area: number;
}

/**
 * The option (0: the default tile, first) and its split count of least modelled time: each option's best split count
 * (wgrad-splits-waves.ts), its waves × slices a block, times the block's BM·BN — the tensor work a slice takes, which the
 * profile's wave factor multiplies (runtime/profile/time-model.ts waveQuantization). Of equals, the earlier option.
 */
export function wgradTileForWaves(options: readonly WgradTileOption[], r: Omit<WgradReduction, 'tiles'>, gpu: WaveGpu): { option: number; splits: number } {
  const timed = options.map((o, option) => {
    const splits = wgradSplitsForWaves({ ...r, tiles: o.tiles }, gpu);
    return { option, splits, time: wavesTimesSlices({ ...r, tiles: o.tiles }, gpu, splits) * o.area };
  });
  const { option, splits } = timed.reduce((best, t) => (t.time < best.time ? t : best));
  return { option, splits };
}
