// What one launch moves from HBM with an L2 of the card's size in front (docs/profile.md, "HBM
// traffic"): each block's distinct sectors, where a sector several blocks read is charged once per
// group of blocks whose reuse of it stays in L2. Pure functions over a launch's counter line.
import type { GpuSpec } from './gpus.js';

const SECTOR_BYTES = 32;

/** The counters of one launch that say what HBM moves (profile.h): the sharing split, the grid, the distinct sectors. */
export interface SharingCounts {
  /** One launch's grid; `blocks` is the grid's blocks times the launches the counters sum. */
  readonly grid?: readonly number[];
  readonly blocks: number;
  readonly unique_global_sectors: number;
  readonly block_sectors_private: number;
  readonly block_sectors_shared_x: number;
  readonly block_sectors_shared_y: number;
  readonly block_sectors_shared_xy: number;
  readonly block_sectors_shared_z: number;
  readonly block_sectors_shared_xz: number;
  readonly block_sectors_shared_yz: number;
  readonly block_sectors_shared_xyz: number;
  /** Sectors a block's predecessor along x read too (a halo): brought into L2 by the block before. */
  readonly block_sectors_halo_x: number;
}

/** The split counters by a mask of the dimensions their sectors are shared along (bit 0 x, 1 y, 2 z), as profile.h orders them. */
export const SHARED_ALONG = [
  'block_sectors_private',
  'block_sectors_shared_x',
  'block_sectors_shared_y',
  'block_sectors_shared_xy',
  'block_sectors_shared_z',
  'block_sectors_shared_xz',
  'block_sectors_shared_yz',
  'block_sectors_shared_xyz',
] as const;

export interface HbmEstimate {
  /** Sectors HBM moves for the launch. */
  readonly sectors: number;
  /** Per grid dimension (x, y, z): whether a sector the blocks along it share is still in L2 when the next of them reads it. */
  readonly reuseFits: readonly [boolean, boolean, boolean];
}

/**
 * HBM sectors of one launch. Blocks start in linear order (x fastest), one as another ends once the
 * GPU is full. A sector shared along dimension d is read next by the block stride(d) later (the
 * product of the faster dimensions' sizes), which reads it as far into its work as the first did, so
 * in between the blocks in flight move about as many bytes as stride(d) whole blocks do, however many
 * run at once: the distinct sectors of stride(d) consecutive blocks (windowBytes). When they fit in
 * L2 the sector is charged once per group of blocks along d, otherwise once per block that reads it
 * (no free reuse). A halo sector along x is charged to the block before, which read it first: nothing
 * when x's reuse fits, once per block otherwise. A launch without a grid (`emu_test --counts`'
 * micro-kernels) is charged its distinct sectors.
 */
export function hbmSectors(c: SharingCounts, gpu: GpuSpec): HbmEstimate {
  const grid = c.grid && c.grid.length === 3 && c.grid.every((g) => g > 0) ? c.grid : undefined;
  if (!grid) return { sectors: c.unique_global_sectors, reuseFits: [false, false, false] };
  const blocks = grid[0] * grid[1] * grid[2];
  const stride = [1, grid[0], grid[0] * grid[1]];
  const reuseFits = [0, 1, 2].map((d) => windowBytes(c, grid, Math.min(blocks, stride[d])) <= gpu.l2Bytes) as [boolean, boolean, boolean];
  let sectors = 0;
  SHARED_ALONG.forEach((name, mask) => {
    let sharers = 1;
    for (let d = 0; d < 3; d++) if (mask & (1 << d) && reuseFits[d]) sharers *= grid[d];
    sectors += c[name] / sharers;
  });
  if (!reuseFits[0]) sectors += c.block_sectors_halo_x;
  return { sectors, reuseFits };
}

/**
 * The distinct bytes of `window` consecutive blocks: each block's share of a split counter, times the
 * window, over how many of the window's blocks read the same sector (along d: window / stride(d)
 * blocks, between 1 and the grid's size in d); a halo once, for the window's first block (each later
 * one's was read by the block before it).
 */
export function windowBytes(c: SharingCounts, grid: readonly number[], window: number): number {
  const stride = [1, grid[0], grid[0] * grid[1]];
  let sectors = 0;
  SHARED_ALONG.forEach((name, mask) => {
    let sharers = 1;
    for (let d = 0; d < 3; d++) if (mask & (1 << d)) sharers *= Math.min(grid[d], Math.max(1, Math.floor(window / stride[d])));
    sectors += ((c[name] / c.blocks) * window) / sharers;
  });
  sectors += c.block_sectors_halo_x / c.blocks;
  return sectors * SECTOR_BYTES;
}
