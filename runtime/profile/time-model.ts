// The time model: a kernel's predicted time from its profile counters (docs/profile.md) on one GPU
// (gpus.ts) — the slowest of its pipes at peak rate, plus the part of its loads' and its compute's phases
// that do not overlap (unpipelinedMicros), plus launch and unhidden latency — and what
// bounds it. Pure functions over plain data; bench/gpu/ncu.sh is where its error gets measured.
import type { GpuSpec } from './gpus.js';
import { gridBlocks, wavesOf } from './waves.js';
import { hbmSectors, type SharingCounts } from './l2-reuse-hbm.js';

/** The emulator's counters for one launch, scaled to the whole grid (`emu_test --counts` prints them). */
export interface KernelCounts extends SharingCounts {
  readonly kernel: string;
  readonly blocks: number;
  readonly ffma: number;
  readonly mma_tf32_m16n8k8: number;
  readonly mma_bf16_m16n8k16: number;
  readonly global_load_sectors: number;
  readonly global_store_sectors: number;
  readonly async_copy_sectors: number;
  readonly shared_load_wavefronts: number;
  readonly shared_store_wavefronts: number;
  /** Integer atomics (a last-block ticket) and __threadfence, per thread; absent in counts from before they existed. */
  readonly atomic_operations?: number;
  readonly threadfences?: number;
}

export const PIPES = ['fp32', 'tensor', 'shared', 'l2', 'hbm'] as const;
export type Pipe = (typeof PIPES)[number];

export interface Prediction {
  readonly kernel: string;
  /** Each pipe's busy time at its peak rate, µs. */
  readonly pipeMicros: Readonly<Record<Pipe, number>>;
  /** Sectors HBM moves (l2-reuse-hbm.ts): each block's, less the reuse an L2 of the card's size keeps. */
  readonly hbmSectors: number;
  /** The pipe with the longest busy time. */
  readonly bound: Pipe;
  /**
   * The shorter of the memory phase (L2, HBM) and the on-SM phase (FMA, tensor, shared) that the kernel does not
   * overlap with the longer, µs: see unpipelinedMicros.
   */
  readonly unpipelinedMicros: number;
  /** Launch plus unhidden latency, µs. */
  readonly overheadMicros: number;
  readonly micros: number;
  /** How much of the predicted time the bounding pipe is busy: its fraction of peak. */
  readonly fractionOfPeak: number;
}

const SECTOR_BYTES = 32;
const MMA_FLOPS = { tf32_m16n8k8: 2 * 16 * 8 * 8, bf16_m16n8k16: 2 * 16 * 8 * 16 };

/** Blocks that run at once on the whole GPU (from ptxas's registers and shared memory; 1 per SM if unknown). */
export function predictKernel(counts: KernelCounts, gpu: GpuSpec, residentBlocksPerSm = 1): Prediction {
  const clockHz = gpu.clockGHz * 1e9;
  const hbm = hbmSectors(counts, gpu).sectors;
  const micros = (seconds: number) => seconds * 1e6;
  const quantized = waveQuantization(counts, gpu.sms, residentBlocksPerSm);
  const pipeMicros: Record<Pipe, number> = {
    fp32: quantized * micros(counts.ffma / (gpu.sms * gpu.fp32LanesPerSm * clockHz)),
    tensor: quantized * micros(
      (counts.mma_tf32_m16n8k8 * MMA_FLOPS.tf32_m16n8k8) / (gpu.tf32TensorTflops * 1e12) +
        (counts.mma_bf16_m16n8k16 * MMA_FLOPS.bf16_m16n8k16) / (gpu.bf16TensorTflops * 1e12),
    ),
    shared: quantized * micros(
      (counts.shared_load_wavefronts + counts.shared_store_wavefronts) /
        (gpu.sms * gpu.sharedWavefrontsPerSmPerClock * clockHz),
    ),
    // An atomic is a read-modify-write at L2: one sector each.
    l2: micros(
      ((counts.global_load_sectors + counts.global_store_sectors + counts.async_copy_sectors + (counts.atomic_operations ?? 0)) * SECTOR_BYTES) /
        (gpu.l2BytesPerClock * clockHz),
    ),
    hbm: micros((hbm * SECTOR_BYTES) / (gpu.hbmGBps * 1e9)),
  };
  const bound = PIPES.reduce((best, p) => (pipeMicros[p] > pipeMicros[best] ? p : best), PIPES[0]);
  const waves = wavesOf(counts.blocks, gpu.sms, residentBlocksPerSm);
  const overheadMicros = gpu.launchMicros + (waves + lastBlockTails(counts)) * gpu.waveLatencyMicros;
  const unpipelined = unpipelinedMicros(counts, pipeMicros, residentBlocksPerSm);
  const total = pipeMicros[bound] + unpipelined + overheadMicros;
  return {
    kernel: counts.kernel,
    pipeMicros,
    hbmSectors: hbm,
    bound,
    unpipelinedMicros: unpipelined,
    overheadMicros,
    micros: total,
    fractionOfPeak: pipeMicros[bound] / total,
  };
}

/**
 * How much longer than counts / SMs the SMs' own pipes (fp32, tensor, shared) are busy when a launch's grid is not
 * a whole number of waves: a grid of B equal blocks at R resident per SM on S SMs runs ⌈B/(R·S)⌉ waves, each as
 * long as a full wave (R·S blocks' share of the counts), since a block runs at its 1/R of its SM whether or not the
 * SM's other slots are filled. So the factor is ⌈B/(R·S)⌉·R·S / B (1 for whole waves; 2/1.1 for 1.1 waves). L2 and
 * HBM are the chip's, drawn by whichever SMs are busy, and keep counts / bandwidth (docs/profile.md).
 * Counters summed over launches of one grid are the same factor: each launch has the same last wave.
 */
export function waveQuantization(counts: Pick<KernelCounts, 'grid' | 'blocks'>, sms: number, residentBlocksPerSm: number): number {
  const grid = gridBlocks(counts) ?? counts.blocks;
  if (grid <= 0) return 1;
  return (wavesOf(grid, sms, residentBlocksPerSm) * sms * Math.max(1, residentBlocksPerSm)) / grid;
}

/**
 * Launches whose blocks fence and take a ticket (glue folded into its producer: docs/profile.md): the block
 * that takes the last ticket starts its finalize only after every other block's fence and ticket, a dependent
 * round trip after the last wave that nothing overlaps — one wave latency a launch (counters summed over
 * launches of one grid say how many by their blocks).
 */
export function lastBlockTails(counts: Pick<KernelCounts, 'grid' | 'blocks' | 'threadfences'>): number {
  if (!counts.threadfences) return 0;
  const grid = gridBlocks(counts);
  return grid ? Math.max(1, Math.round(counts.blocks / grid)) : 1;
}

/**
 * What a load → barrier → compute loop does not overlap (assumed, not fitted: bench/gpu/ncu.sh). A block's warps
 * wait for a slice's plain loads before they compute on it, so within a block the memory phase and the on-SM phase
 * take turns; the other blocks resident on the SM fill in, so of the shorter phase a share 1 / (resident blocks)
 * stays exposed. Sectors that arrive by cp.async are issued slices ahead of their use (a multistage ring,
 * backends/cuda/conv-mma-async-1x1.ts) and overlap the block's own compute: they expose nothing. So
 * exposed = min(memory, on-SM) × (plain-load sectors / all loaded sectors) / resident blocks.
 */
export function unpipelinedMicros(counts: KernelCounts, pipeMicros: Readonly<Record<Pipe, number>>, residentBlocksPerSm: number): number {
  const loaded = counts.global_load_sectors + counts.async_copy_sectors;
  if (loaded === 0) return 0;
  const memory = Math.max(pipeMicros.l2, pipeMicros.hbm);
  const onSm = Math.max(pipeMicros.fp32, pipeMicros.tensor, pipeMicros.shared);
  return (Math.min(memory, onSm) * (counts.global_load_sectors / loaded)) / Math.max(1, residentBlocksPerSm);
}
