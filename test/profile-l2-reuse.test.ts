// The profile model's HBM traffic with an L2 of the card's size (runtime/profile/l2-reuse-hbm.ts,
// docs/profile.md "HBM traffic"): sectors many blocks read (weights) are charged once per launch when
// their reuse fits in L2, once per block when it does not; streaming data is charged as it is.
import { describe, expect, it } from 'vitest';
import { GPUS } from '../runtime/profile/gpus.js';
import { hbmSectors, windowBytes, type SharingCounts } from '../runtime/profile/l2-reuse-hbm.js';
import { predictKernel } from '../runtime/profile/time-model.js';
import { NO_SECTORS } from './profile-l2-zero-counts.js';

const H100 = GPUS.h100; // 132 SMs, 50 MB L2
const none = NO_SECTORS;
const MB = 1024 * 1024;

describe('HBM traffic through L2', () => {
  it('weights every block reads are charged once per launch: the next block reads them one block\'s bytes later', () => {
    // A 1×1 conv's shape: 4096 blocks along x, each reading 64 KB of weights (2048 sectors, the same
    // for all) and streaming 32 KB of activations (1024 sectors) of its own. Between two blocks' reads
    // of a weight sector, one block's 96 KB pass through L2 (however many blocks run at once: each
    // starts as one ends): far below 50 MB, so the weights stay in L2.
    const c: SharingCounts = { ...none, grid: [4096, 1, 1], blocks: 4096, block_sectors_private: 4096 * 1024, block_sectors_shared_x: 4096 * 2048 };
    expect(windowBytes(c, c.grid!, 1)).toBe(96 * 1024);
    expect(windowBytes(c, c.grid!, 264)).toBe(264 * 32 * 1024 + 64 * 1024);
    const hbm = hbmSectors(c, H100);
    expect(hbm.reuseFits[0]).toBe(true);
    expect(hbm.sectors).toBe(4096 * 1024 + 2048); // the activations, plus the weights once
    // A block whose own bytes exceed L2 (an L2 of 64 KB here) gets no reuse: the weights once per block.
    expect(hbmSectors(c, { ...H100, l2Bytes: 64 * 1024 }).sectors).toBe(4096 * 3072);
  });

  it('streaming data larger than L2 gets no reuse: every block sector is charged', () => {
    // 8192 blocks of 64 KB each, nothing shared: 512 MB, ten times L2. HBM moves all of it.
    const c: SharingCounts = { ...none, grid: [8192, 1, 1], blocks: 8192, block_sectors_private: 8192 * 2048 };
    expect(hbmSectors(c, H100).sectors).toBe(8192 * 2048);
  });

  it('data shared along y is next read a whole grid row later: reused only when that row fits in L2', () => {
    // A GEMM's A rows, read again by the next column of tiles gx blocks later: a launch whose
    // footprint between two reads exceeds L2 gets no free reuse. Each block streams 128 KB of its own
    // and reads 64 KB of A its column-neighbours read too.
    const counts = (gx: number): SharingCounts => ({ ...none, grid: [gx, 4, 1], blocks: gx * 4, block_sectors_private: gx * 4 * 4096, block_sectors_shared_y: gx * 4 * 2048 });
    // gx = 200: a row of 200 blocks is 200 × 192 KB = 37.5 MB < 50 MB: A is read from HBM once.
    const fits = hbmSectors(counts(200), H100);
    expect(fits.reuseFits[1]).toBe(true);
    expect(fits.sectors).toBe(800 * 4096 + 200 * 2048);
    // gx = 400: 75 MB between two reads of the same A sector: evicted, every block reads it again.
    const evicted = hbmSectors(counts(400), H100);
    expect(evicted.reuseFits[1]).toBe(false);
    expect(evicted.sectors).toBe(1600 * 4096 + 1600 * 2048);
  });

  it('a launch whose whole footprint fits in L2 is charged its distinct sectors (the sampled 3×3 sgemm of test_profile.cc)', () => {
    // sgemm 48³ on 3×3 blocks of 16×16 (runtime/emu-test/test_profile.cc): each block reads 96 A
    // sectors shared along x, 96 B sectors shared along y, writes 32 C sectors: distinct = 3 × 288.
    const c: SharingCounts = { ...none, grid: [3, 3, 1], blocks: 9, block_sectors_private: 288, block_sectors_shared_x: 864, block_sectors_shared_y: 864 };
    expect(hbmSectors(c, H100).sectors).toBe(864);
  });

  it('the time model prices HBM at what the L2 rule leaves', () => {
    const c = { ...none, kernel: 'k', grid: [4096, 1, 1], blocks: 4096, ffma: 0, mma_tf32_m16n8k8: 0, mma_bf16_m16n8k16: 0, global_load_sectors: 4096 * 3072, global_store_sectors: 0, async_copy_sectors: 0, shared_load_wavefronts: 0, shared_store_wavefronts: 0, block_sectors_private: 4096 * 1024, block_sectors_shared_x: 4096 * 2048 };
    const p = predictKernel(c, H100, 2);
    expect(p.hbmSectors).toBe(4096 * 1024 + 2048);
    expect(p.pipeMicros.hbm).toBeCloseTo(((4096 * 1024 + 2048) * 32) / 3.35e15 * 1e9, 6);
  });

  it('a counter line without a grid (emu_test --counts) is charged its distinct sectors', () => {
    expect(hbmSectors({ ...none, blocks: 4, unique_global_sectors: 384, block_sectors_private: 999 }, H100).sectors).toBe(384);
  });
});

describe('HBM traffic of a halo', () => {
  it('a halo the block before read is charged to it: once, when the reuse along x fits in L2', () => {
    // A 5×5 conv's data gradient: 784 blocks along x, each with 4k sectors of its own and 8k it shares
    // with its predecessor (the halo of its 128 positions): the next block reads the halo one block's
    // 384 KB later, so HBM moves each block's own 4k only.
    const c: SharingCounts = { ...none, grid: [784, 1, 1], blocks: 784, block_sectors_private: 784 * 4096, block_sectors_halo_x: 784 * 8192 };
    expect(hbmSectors(c, H100).sectors).toBe(784 * 4096);
    // With an L2 smaller than one block's bytes (256 KB) the halo is gone before the next block reads it.
    expect(hbmSectors(c, { ...H100, l2Bytes: 256 * 1024 }).sectors).toBe(784 * (4096 + 8192));
  });
});
