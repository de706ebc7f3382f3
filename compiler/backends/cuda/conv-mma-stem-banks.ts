// The bank-conflict count of the stem's band (conv-mma-stem-band.ts): every 2-byte read that builds A from the band
// (stageAlongK: a warp is 4 rows × 8 lanes along k, one instruction per element e) for every block, warp and slice
// over a grid, and the band's staging stores, priced by the emulator's rule (runtime/include/nincc/device/emu/profile.h:
// accesses of ≤ 4 bytes are one phase of 32 lanes; lanes on one 4-byte word share it; distinct words in one bank
// each take a wavefront).
import { BK, type MmaTile } from './conv-mma-tile.js';
import { stemBase, type StemBand, type StemConv } from './conv-mma-stem-geometry.js';

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** Wavefronts beyond one of a 32-lane access to the 4-byte words words[0..count) (sorted here, in place). */
function extraWavefronts(words: Float64Array, count: number): number {
  if (count === 0) return 0;
  const sorted = words.subarray(0, count).sort();
  const perBank = new Int32Array(32);
  let most = 0;
  for (let i = 0; i < count; i++) {
    if (i > 0 && sorted[i] === sorted[i - 1]) continue; // lanes on one word share it
    most = Math.max(most, ++perBank[sorted[i] % 32]);
  }
  return most - 1;
}

/**
 * Wavefronts beyond the ideal over a grid for `maxBatch` images. Blocks lcm(rows, BM) GEMM rows apart read the
 * band alike (whole images later, each image's layout the same), so the blocks of one such period stand for all.
 */
export function stemConflicts(c: StemConv, b: StemBand, tile: MmaTile, maxBatch: number): number {
  const RS = c.R * c.S, CRS = c.C * RS;
  const period = (b.rows * tile.bm) / gcd(b.rows, tile.bm);
  const words = new Float64Array(32);
  let conflicts = 0;
  for (let m0 = 0; m0 < Math.min(maxBatch * b.rows, period); m0 += tile.bm) {
    const start = stemBase(m0, b.rows, c, b.zw, b.zhw);
    const bases = Array.from({ length: tile.bm }, (_, row) => stemBase(m0 + row, b.rows, c, b.zw, b.zhw) - start);
    for (let q0 = 0; q0 < tile.bm * 8; q0 += 32) {  // each warp's 32 consecutive items of stageAlongK's loop
      for (let k0 = 0; k0 < CRS; k0 += BK) {
        for (let e = 0; e < 4; e++) {
          let count = 0;
          for (let q = q0; q < q0 + 32; q++) {
            const row = Math.floor(q / 8), crs = k0 + (q % 8) + 8 * e;
            if (crs >= CRS) continue;
            const rs = crs % RS;
            const at = Math.floor(crs / RS) * b.window + bases[row] + Math.floor(rs / c.S) * b.zw + (rs % c.S);
            words[count++] = Math.floor((2 * at) / 4);
          }
          conflicts += extraWavefronts(words, count);
        }
      }
    }
  }
  // The staging's 2-byte stores: a warp's 32 lanes on 32 consecutive band elements.
  for (let q0 = 0; q0 < c.C * b.window; q0 += 32) {
    let count = 0;
    for (let q = q0; q < Math.min(q0 + 32, c.C * b.window); q++) words[count++] = Math.floor((2 * q) / 4);
    conflicts += extraWavefronts(words, count);
  }
  return conflicts;
}
