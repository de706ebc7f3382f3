// A folded bf16 weight gradient's split count and (1×1) tile for one GPU at R resident blocks a SM: the choice the
// pipeline's lowering makes (compiler/pipeline.ts wgradSplitsFor), and build.ts's test of whether ptxas's R changes
// any choice of a first compile (where none does, the second lowering would rebuild the same kernels: it is skipped).
import { isOn, type Ablations } from '../ablations.js';
import { wgradSplitGrid } from '../backends/cuda/conv-mma-grad.js';
import { BK } from '../backends/cuda/conv-mma-tile.js';
import { WAVE_WGRAD_TILES } from '../backends/cuda/conv-mma-wgrad-wave-tiles.js';
import type { KernelStep, OpConsts } from '../lower/program-ir.js';
import { WGRAD_RESIDENT_BLOCKS } from '../lower/wgrad-splits-waves.js';
import { wgradTileForWaves } from '../lower/wgrad-tile-waves.js';
import { kernelAblations, type TunedChoices } from '../tune/tune-record.js';

export interface WgradGpuChoice {
  readonly splits: number;
  readonly waveTile?: number;
}

/** What the choice reads of a build: its SMs, max batch and switches. */
export interface WgradChoiceBuild {
  readonly sms: number;
  readonly maxBatch: number;
  readonly ablations?: Ablations;
  readonly tuned?: TunedChoices;
}

/** Layer `layer`'s choice from the consts its lowering offered (c.splits: the most splits, which size the partials). */
export function wgradGpuChoice(build: WgradChoiceBuild, layer: number, c: OpConsts['conv_wgrad_fused'], residentBlocks: number): WgradGpuChoice {
  const ablations = kernelAblations(build.ablations, build.tuned, { op: 'conv_wgrad_fused', layer, consts: c } as KernelStep);
  // A 1×1 kernel may take a smaller tile where that makes the grid fill the GPU (conv-mma-wgrad-wave-tiles.ts): option 0 is the default tile.
  const waveTiles = c.R * c.S === 1 && isOn(ablations, 'wgradWaveTiles') ? WAVE_WGRAD_TILES.map((_, waveTile) => waveTile) : [];
  const grids = [undefined, ...waveTiles].map((waveTile) => wgradSplitGrid(waveTile === undefined ? c : { ...c, waveTile }, ablations));
  const { option, splits } = wgradTileForWaves(grids, { positions: build.maxBatch * c.P * c.Q, slice: BK, maxSplits: c.splits }, { sms: build.sms, residentBlocks });
  return { splits, ...(option > 0 ? { waveTile: waveTiles[option - 1] } : {}) };
}

/** One layer's choice as a first lowering made it: the consts it was offered and what it chose. */
export interface WgradChoiceMade {
  readonly consts: OpConsts['conv_wgrad_fused'];
  readonly choice: WgradGpuChoice;
}

/**
 * Whether choosing again at `residentBlocks` (per layer; absent: WGRAD_RESIDENT_BLOCKS) changes any choice `made`: where
 * none changes, a second lowering gives the same program and kernels.
 */
export function wgradChoicesChange(made: ReadonlyMap<number, WgradChoiceMade>, build: WgradChoiceBuild, residentBlocks: ReadonlyMap<number, number>): boolean {
  return [...made].some(([layer, m]) => {
    const again = wgradGpuChoice(build, layer, m.consts, residentBlocks.get(layer) ?? WGRAD_RESIDENT_BLOCKS);
    return again.splits !== m.choice.splits || again.waveTile !== m.choice.waveTile;
  });
}
