// The bank-conflict count of the tap-major halo (conv-mma-taps-halo.ts): every ldmatrix phase of every block,
// warp, m16 tile, k-step and tap over a grid, and every 8-lane phase of the halo's staging stores, priced by the emulator's rule for 16-byte rows
// (runtime/include/nincc/device/emu/profile.h: a phase of 8 rows is one wavefront when its rows' 16-byte units
// fall in 8 distinct bank groups, unit mod 8; rows at one address share it).
import { BK } from './conv-mma-tile.js';
import { tapOffset, tapsBase, type TapsPlan } from './conv-mma-taps-halo.js';

/** The 16-byte unit of chunk `chunk` of halo position `z`: conv-mma-tile.ts's swizzle. */
const unit = (z: number, chunk: number) => 4 * z + (chunk ^ ((z >> 1) & 3));

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * Phases (8 rows of one ldmatrix matrix) that take more than one wavefront, over a grid for `maxBatch` images.
 * A block's rows relative to its first are those of the block lcm(rows, BM) GEMM rows later (whole images
 * later, each image's layout the same), so the blocks of one such period stand for all.
 */
export function tapsConflicts(p: TapsPlan, maxBatch: number): number {
  const { view: c, tile, rows, geometry: g } = p;
  let conflicts = 0;
  const bases = new Int32Array(8), groups = new Float64Array(8);
  const period = (rows * tile.bm) / gcd(rows, tile.bm);
  for (let m0 = 0; m0 < Math.min(maxBatch * rows, period); m0 += tile.bm) {
    const start = tapsBase(m0, rows, c, g);
    for (let row0 = 0; row0 < tile.bm; row0 += 8) {
      for (let i = 0; i < 8; i++) bases[i] = tapsBase(m0 + row0 + i, rows, c, g) - start;
      for (let tap = 0; tap < c.R * c.S; tap++) {
        const off = tapOffset(c, g.pitchW, tap);
        for (let chunk = 0; chunk < BK / 8; chunk++) {
          groups.fill(-1);
          let clash = false;
          for (let i = 0; i < 8; i++) {
            const u = unit(bases[i] + off, chunk), seen = groups[u % 8];
            if (seen === -1) groups[u % 8] = u;
            else if (seen !== u) clash = true; // two units in one bank group; rows at one address share it
          }
          if (clash) conflicts++;
        }
      }
    }
  }
  // The staging's 16-byte stores: item q is position q % window, chunk q / window; a phase is 8 consecutive items.
  for (let q0 = 0; q0 < g.window * (BK / 8); q0 += 8) {
    groups.fill(-1);
    let clash = false;
    for (let q = q0; q < q0 + 8; q++) {
      const u = unit(q % g.window, Math.floor(q / g.window)), seen = groups[u % 8];
      if (seen === -1) groups[u % 8] = u;
      else if (seen !== u) clash = true;
    }
    if (clash) conflicts++;
  }
  return conflicts;
}
