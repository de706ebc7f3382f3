// The split partials of a stem weight gradient on row tiles of one channel each (Halo.channelTiles, NIN's 11×11/4: 121
// taps in 128 rows) stored through the halo, idle after the main loop, in runs along dW (switch stemWgradBandStores).
// From the accumulators a store instruction writes 8 taps × 4 column pairs, 8 floats of a dW row each, at a place 363
// floats a column apart that the sector grid cuts in two: NIN's stem stored 880.9k sectors for 387.5k needed (44 %).
// Here each n8 tile's accumulators go into a band of the block's warpsN·8 columns × BM rows at a pitch ≡ 4 (mod 16)
// (the 4 column pairs of a write 8 banks apart: conflict-free), then each warp copies whole columns out, 32 taps a store
// instruction (its last 25 of 121), one column at a time so that no read wraps into the next column's banks. The values
// and their places are the accumulator stores' (bitwise).
import type { Consts } from './parts.js';
import { warpM16, type MmaTile } from './conv-mma-tile.js';

/** The band's pitch between columns: the least ≥ BM that is 4 mod 16. */
const bandPitch = (bm: number) => bm + ((4 - bm) & 15);

/** The band's floats (its columns × pitch), for the halo's size check. */
export const bandFloats = (tile: MmaTile) => tile.warpsN * 8 * bandPitch(tile.bm);

/**
 * The epilogue's lines (after the main loop's last barrier), or undefined where the band does not fit in `haloBytes` or the
 * columns do not split evenly across the warps (the kernel then stores from the accumulators).
 */
export function stemWgradBandStore(c: Consts<'conv_wgrad_fused'>, tile: MmaTile, threads: number, haloBytes: number): string[] | undefined {
  const RS = c.R * c.S, CRS = c.C * RS, MT = warpM16(tile), WN = tile.nt * 8, pitch = bandPitch(tile.bm);
  const columns = tile.warpsN * 8, warps = threads / 32, chunks = Math.ceil(RS / 32);
  if (bandFloats(tile) * 4 > haloBytes || columns % warps !== 0) return undefined;
  return [
    `float* const band = reinterpret_cast<float*>(halo);  // the halo, idle after the main loop's last barrier: ${columns} columns × ${pitch} rows`,
    'NINCC_UNROLL',
    `for (int nt = 0; nt < ${tile.nt}; ++nt) {`,
    '  NINCC_UNROLL',
    `  for (int i = 0; i < ${MT * 2}; ++i) {  // m16 tile i / 2, its rows 8·(i % 2) + lane / 4 (the m16n8k16 C layout)`,
    `    const int row = wm * ${16 * MT} + 16 * (i / 2) + 8 * (i % 2) + lane / 4;`,
    '    NINCC_UNROLL',
    '    for (int half = 0; half < 2; ++half) nincc::st(&band[(wn * 8 + 2 * (lane % 4) + half) * ' + pitch + ' + row], acc[i / 2][nt][2 * (i % 2) + half]);',
    '  }',
    '  __syncthreads();',
    `  // Warp w copies columns w, w + ${warps}, …: ${chunks} store instructions a column, 32 consecutive taps each.`,
    `  for (int k = 0; k < ${(columns / warps) * chunks}; ++k) {`,
    // Lanes past the last tap repeat it (the same value to the same place): every lane makes every access, as the emulator
    // pairs a lane's k-th execution of a line with its neighbours' (lanes that skipped one were priced as bank conflicts).
    `    const int cl = k / ${chunks} * ${warps} + warp, rs = min(k % ${chunks} * 32 + lane, ${RS - 1}), col = n0 + cl / 8 * ${WN} + nt * 8 + cl % 8;`,
    `    const float v = nincc::ld(&band[cl * ${pitch} + rs]);`,
    `    if (col < ${c.K}) nincc::st(&wpart[((long long)split * ${c.K} + col) * ${CRS} + int(m0) / ${tile.bm} * ${RS} + rs], v);`,
    '  }',
    '  __syncthreads();',
    '}',
  ];
}
