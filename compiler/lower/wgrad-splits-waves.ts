// The weight gradient's split count for one GPU: the split count (up to the lowering's default) whose grid's
// waves × each block's work is least, by the profile's time model (runtime/profile/time-model.ts waveQuantization).
import { wavesOf } from '../../runtime/profile/waves.js';

/** A weight gradient's grid before splitting: output tiles, the positions its reduction runs over, the slice depth. */
export interface WgradReduction {
  /** Output tiles of one split: ⌈C·R·S / BM⌉ · ⌈K / BN⌉ blocks. */
  readonly tiles: number;
  /** n·P·Q at the build's max batch: a split takes an even share of them (docs/design.md §4.1). */
  readonly positions: number;
  /** Positions per staged slice: a split's share is padded to whole slices. */
  readonly slice: number;
  /** The most splits to consider: the lowering's default (train-fused.ts wgradSplits), which sizes the partials. */
  readonly maxSplits: number;
}

/**
 * Resident blocks per SM the first choice assumes for a bf16 weight gradient, before ptxas has said its registers
 * (NIN's k×k ones take 256 threads at 230 registers, one a SM: runtime/profile/occupancy.ts). A build with nvcc
 * chooses again with each kernel's own count (compiler/schedule/wgrad-residency.ts).
 */
export const WGRAD_RESIDENT_BLOCKS = 1;

/** The GPU the build is for: its SMs and the weight gradient's resident blocks per SM. */
export interface WaveGpu {
  readonly sms: number;
  readonly residentBlocks: number;
}

/**
 * The modelled time of `splits`, in slices one block runs: ⌈tiles·splits / (R·S)⌉ waves, each as long as a block's
 * ⌈positions / (splits·slice)⌉ slices (a last, partial wave costs a full one: docs/profile.md).
 */
export function wavesTimesSlices(r: WgradReduction, gpu: WaveGpu, splits: number): number {
  return wavesOf(r.tiles * splits, gpu.sms, gpu.residentBlocks) * Math.ceil(r.positions / (splits * r.slice));
}

/** The split count in 1..maxSplits of least modelled time; of equals, the fewest (less partials traffic, shorter tails). */
export function wgradSplitsForWaves(r: WgradReduction, gpu: WaveGpu): number {
  let best = 1;
  for (let s = 2; s <= r.maxSplits; s++) if (wavesTimesSlices(r, gpu, s) < wavesTimesSlices(r, gpu, best)) best = s;
  return best;
}
