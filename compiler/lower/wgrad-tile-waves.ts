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
 * Where the default tile fills a wave at the most splits, the default tile.
 */
export function wgradTileForWaves(options: readonly WgradTileOption[], r: Omit<WgradReduction, 'tiles'>, gpu: WaveGpu): { option: number; splits: number } {
  // Only a grid that cannot fill one wave at the most splits takes a smaller tile: the cost below counts tensor work, not
  // the smaller tile's re-reads of x and dY' (NIN's k34/k37 at 64×16: 8,192 blocks, bench/RESULTS.md i15Y).
  if (options[0].tiles * r.maxSplits >= gpu.sms * Math.max(1, gpu.residentBlocks)) return { option: 0, splits: wgradSplitsForWaves({ ...r, tiles: options[0].tiles }, gpu) };
  const timed = options.map((o, option) => {
    const splits = wgradSplitsForWaves({ ...r, tiles: o.tiles }, gpu);
    return { option, splits, time: wavesTimesSlices({ ...r, tiles: o.tiles }, gpu, splits) * o.area };
  });
  const { option, splits } = timed.reduce((best, t) => (t.time < best.time ? t : best));
  return { option, splits };
}
