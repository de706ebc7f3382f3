// The time model (runtime/profile/time-model.ts) against hand arithmetic on the GPU table, and the
// table's promise that every constant states its source.
import { describe, expect, it } from 'vitest';
import { GPUS, gpuNamed } from '../runtime/profile/gpus.js';
import { occupancy } from '../runtime/profile/occupancy.js';
import { predictKernel, waveQuantization, type KernelCounts } from '../runtime/profile/time-model.js';
import { NO_SECTORS } from './profile-l2-zero-counts.js';

const none: KernelCounts = {
  kernel: 'k',
  blocks: 132,
  ffma: 0,
  mma_tf32_m16n8k8: 0,
  mma_bf16_m16n8k16: 0,
  global_load_sectors: 0,
  global_store_sectors: 0,
  async_copy_sectors: 0,
  shared_load_wavefronts: 0,
  shared_store_wavefronts: 0,
  ...NO_SECTORS,
};

describe('time model', () => {
  it('a streaming kernel is bound by HBM: bytes / bandwidth, plus launch and one wave', () => {
    // One launch of 132 blocks, each streaming its own data: HBM moves every block's sectors.
    const p = predictKernel({ ...none, grid: [132, 1, 1], global_load_sectors: 31_250_000, block_sectors_private: 31_250_000 }, gpuNamed('h100'));
    // 10^9 bytes at 3.35 TB/s = 298.5 µs; L2 moves them in 10^9 / (5120 B × 1.98 GHz) = 98.6 µs.
    expect(p.bound).toBe('hbm');
    expect(p.pipeMicros.hbm).toBeCloseTo(1e9 / 3.35e12 * 1e6, 6);
    expect(p.pipeMicros.l2).toBeCloseTo(1e9 / (5120 * 1.98e9) * 1e6, 6);
    expect(p.overheadMicros).toBe(3 + 1);  // 132 blocks: one wave of one block per SM
    expect(p.micros).toBeCloseTo(298.507 + 4, 2);
    expect(p.fractionOfPeak).toBeCloseTo(298.507 / 302.507, 4);
  });

  it('bf16 mma count × 4096 FLOPs at the dense tensor peak; fp32 FMAs at SMs × lanes × clock', () => {
    // 216 blocks: two whole waves on the A100's 108 SMs, so no last wave's idle SMs are charged.
    const p = predictKernel({ ...none, blocks: 216, mma_bf16_m16n8k16: 1e6, ffma: 1e9 }, gpuNamed('a100'));
    expect(p.pipeMicros.tensor).toBeCloseTo((1e6 * 4096) / 312e12 * 1e6, 6);  // 13.1 µs
    expect(p.pipeMicros.fp32).toBeCloseTo(1e9 / (108 * 64 * 1.41e9) * 1e6, 6);  // 102.6 µs
    expect(p.bound).toBe('fp32');
  });

  it('bank conflicts show as shared wavefronts: one per SM per clock', () => {
    const p = predictKernel({ ...none, blocks: 264, shared_load_wavefronts: 4096 * 1000, shared_store_wavefronts: 128 * 1000 }, GPUS.h200);
    expect(p.bound).toBe('shared');
    expect(p.pipeMicros.shared).toBeCloseTo((4224 * 1000) / (132 * 1.98e9) * 1e6, 6);
    expect(p.overheadMicros).toBe(3 + 2);  // 264 blocks at one per SM: two waves
  });

  it('a launch that folds its finalize (fences, one ticket a block) pays one more wave latency; atomics are L2 sectors', () => {
    // 264 blocks, 2 a SM: one wave. 256 threads fence, thread 0 takes a ticket: 264 atomics of one sector each.
    const folded = { ...none, grid: [264, 1, 1], blocks: 264, threadfences: 264 * 256, atomic_operations: 264 };
    const p = predictKernel(folded, gpuNamed('h100'), 2);
    expect(p.overheadMicros).toBe(3 + 1 + 1);
    expect(p.pipeMicros.l2).toBeCloseTo((264 * 32) / (5120 * 1.98e9) * 1e6, 9);
    // The same counters summed over 3 launches of that grid: a tail each.
    expect(predictKernel({ ...folded, blocks: 3 * 264, threadfences: 3 * 264 * 256 }, gpuNamed('h100'), 2).overheadMicros).toBe(3 + 3 + 3);
    expect(predictKernel({ ...folded, threadfences: 0, atomic_operations: 0 }, gpuNamed('h100'), 2).overheadMicros).toBe(3 + 1);
  });

  it("a last, partial wave costs a full wave's time on the SMs' pipes, not on L2 or HBM", () => {
    // 1.1 waves of equal blocks (2 a SM on 132 SMs: 264 a wave, 290 blocks) take 2 waves, each as long as 264
    // blocks' share of the counts: 2·264/290 = 1.82× counts / SMs.
    const h100 = gpuNamed('h100');
    const work = { ...none, grid: [290, 1, 1], blocks: 290, mma_bf16_m16n8k16: 290e3, shared_load_wavefronts: 290e3, global_load_sectors: 290e3 };
    const p = predictKernel(work, h100, 2);
    const whole = predictKernel({ ...work, grid: [264, 1, 1], blocks: 264, mma_bf16_m16n8k16: 264e3, shared_load_wavefronts: 264e3, global_load_sectors: 264e3 }, h100, 2);
    expect(waveQuantization(work, 132, 2)).toBeCloseTo(528 / 290, 12);
    expect(p.pipeMicros.tensor).toBeCloseTo(2 * whole.pipeMicros.tensor, 9);
    expect(p.pipeMicros.tensor).toBeCloseTo((528e3 * 4096) / 989.4e12 * 1e6, 9);
    expect(p.pipeMicros.shared).toBeCloseTo(2 * whole.pipeMicros.shared, 9);
    expect(p.pipeMicros.l2).toBeCloseTo((290 / 264) * whole.pipeMicros.l2, 9);
    // The same counters over 3 launches of that grid: the same factor; whole waves: none.
    expect(waveQuantization({ ...work, blocks: 3 * 290 }, 132, 2)).toBeCloseTo(528 / 290, 12);
    expect(waveQuantization({ ...work, grid: [396, 1, 1] }, 132, 1)).toBe(1);
  });

  it('a load → barrier → compute loop exposes its shorter phase over the resident blocks; cp.async sectors expose none', () => {
    // Tensor-bound (10^6 mma.m16n8k16 = 4.096 GFLOP: 4.14 µs on an H100's 989.4 TFLOPS) with 2·10^5 sectors loaded
    // (6.4 MB: 1.91 µs at 3.35 TB/s), each block's own; 2 blocks resident a SM.
    const loads = { ...none, blocks: 264, grid: [264, 1, 1], mma_bf16_m16n8k16: 1e6, block_sectors_private: 2e5 };
    const plain = predictKernel({ ...loads, global_load_sectors: 2e5 }, gpuNamed('h100'), 2);
    expect(plain.bound).toBe('tensor');
    const memory = Math.max(plain.pipeMicros.hbm, plain.pipeMicros.l2);
    expect(memory).toBeCloseTo((2e5 * 32) / 3.35e12 * 1e6, 6);
    expect(plain.unpipelinedMicros).toBeCloseTo(memory / 2, 9);
    expect(plain.micros).toBeCloseTo(plain.pipeMicros.tensor + memory / 2 + plain.overheadMicros, 9);
    // One resident block a SM: nothing fills in, the whole shorter phase is exposed.
    expect(predictKernel({ ...loads, global_load_sectors: 2e5 }, gpuNamed('h100'), 1).unpipelinedMicros).toBeCloseTo(memory, 9);
    // Three quarters of the sectors by cp.async: a quarter of the exposure; all of them: none.
    const quarter = predictKernel({ ...loads, global_load_sectors: 5e4, async_copy_sectors: 1.5e5 }, gpuNamed('h100'), 2);
    expect(quarter.pipeMicros.hbm).toBeCloseTo(plain.pipeMicros.hbm, 9);
    expect(quarter.unpipelinedMicros).toBeCloseTo(memory / 8, 9);
    expect(predictKernel({ ...loads, async_copy_sectors: 2e5 }, gpuNamed('h100'), 2).unpipelinedMicros).toBe(0);
  });

  it('names the GPUs it knows when asked for another', () => {
    expect(() => gpuNamed('v100')).toThrow("unknown GPU 'v100': one of a100, h100, h200");
  });

  it('every numeric constant of every GPU says where it comes from', () => {
    for (const gpu of Object.values(GPUS))
      for (const [field, value] of Object.entries(gpu))
        if (typeof value === 'number') expect(gpu.sources[field], `${gpu.name}.${field}`).toMatch(/\S/);
  });
});

describe('occupancy', () => {
  it('sgemm_tiled16 (ptxas: 32 registers, 2048 bytes smem, 256 threads) fills an SM: 8 blocks by threads', () => {
    // threads 2048/256 = 8; registers 8 warps × 1024 = 8192 per block → 8; shared 233472 / 3072 = 76.
    const o = occupancy({ threadsPerBlock: 256, registersPerThread: 32, sharedBytesPerBlock: 2048 }, GPUS.h100);
    expect(o).toEqual({ blocksPerSm: 8, fraction: 1, limitedBy: 'threads' });
  });
  it('registers round up to 256 per warp and can be the limit', () => {
    // 33 registers × 32 = 1056 → 1280 per warp; 8 warps = 10240 per block → 6 blocks (7 unrounded).
    const o = occupancy({ threadsPerBlock: 256, registersPerThread: 33, sharedBytesPerBlock: 0 }, GPUS.a100);
    expect(o).toEqual({ blocksPerSm: 6, fraction: 48 / 64, limitedBy: 'registers' });
  });
  it('shared memory counts the 1 KB the driver reserves per block', () => {
    // A100: 167936 / (40960 + 1024) = 4 exactly; one byte more per block leaves room for 3.
    expect(occupancy({ threadsPerBlock: 128, registersPerThread: 32, sharedBytesPerBlock: 40960 }, GPUS.a100).blocksPerSm).toBe(4);
    expect(occupancy({ threadsPerBlock: 128, registersPerThread: 32, sharedBytesPerBlock: 40961 }, GPUS.a100).blocksPerSm).toBe(3);
  });
});
