// The store step of a tap-major weight gradient (issue #15, conv-mma-wgrad-taps-halo.ts): the partials through the idle
// halo as a band of fp32 columns, then out to wpart in runs along dW.
//
// The band holds dW row crs at word column·pitch + crs − crs0 (crs0: the block's first octet's first row), so its rows
// are dense only where the block owns whole octets: a block of 32 units (bm 256) starts and ends inside octets of
// R·S taps, owning a run of fewer than R·S taps of each of those octets' 8 channels. Reading the block's dW rows 32 at a
// time in dW's order (`dense`, round 17) then spans more than 32 words across those runs' gaps: bank conflicts (NIN b128
// H100: k31 40.3k, k21 118.5k). `wgradTapsAlignedReads` reads the band in aligned chunks of 32 words instead: a lane on
// a row its block does not own takes the chunk's first owned row (the same word, a broadcast, and the same value to the
// same dW place), so a read instruction's words are 32 consecutive ones (no conflict) and its store a run of one
// aligned 128-byte line of dW. docs/design.md §4.1.
import type { Consts } from './parts.js';
import { type MmaTile, warpM16 } from './conv-mma-tile.js';
import { OCTET, wgradTapsRow, type WgradTaps } from './conv-mma-wgrad-taps-halo.js';

/** How the store step reads the band: the block's dW rows 32 at a time (`dense`) or the band's aligned 32-word chunks. */
export type BandReads = 'dense' | 'aligned';

/**
 * The store's shared pitch between columns: the least ≥ the block's dW rows at which one store instruction's 8 channels
 * (R·S apart) × 4 column pairs fall on 32 distinct banks, else the least.
 */
export function storePitch(RS: number, span: number): number {
  for (let pitch = span; pitch < span + 32; pitch++) {
    const banks = new Set<number>();
    for (let ch = 0; ch < 8; ch++) for (let pair = 0; pair < 4; pair++) banks.add((ch * RS + 2 * pair * pitch) % 32);
    if (banks.size === 32) return pitch;
  }
  return span;
}

/** Aligned reads need a chunk's first owned row within it: the gap between owned rows is under R·S. */
export const alignedReadsFit = (RS: number) => RS <= 32;

/** The block of units [u0, u1): its band rows (from crs0) and ownership, as the kernel computes them. */
function blockRows(RS: number, u0: number, u1: number) {
  const crs0 = Math.floor(u0 / RS) * OCTET * RS, oLast = Math.floor((u1 - 1) / RS);
  const xLast = (OCTET * oLast + OCTET - 1) * RS + ((u1 - 1) % RS) - crs0;
  const unitOf = (x: number) => Math.floor((crs0 + x) / (OCTET * RS)) * RS + (x % RS);
  const owned = (x: number) => unitOf(x) >= u0 && unitOf(x) < u1;
  const anchor = (c: number) => {
    const tap = c % RS, u = unitOf(c), lo = Math.max(u0 - (u - tap), 0);
    return u < u0 ? c + lo - tap : u >= u1 ? c + RS - tap + lo : c;
  };
  const dwRow = (r: number) => {
    for (let o = Math.floor(u0 / RS); ; ++o) {
      const first = Math.max(u0, o * RS), taps = Math.min(u1, (o + 1) * RS) - first;
      if (r < OCTET * taps) return (OCTET * o + Math.floor(r / taps)) * RS + first - o * RS + (r % taps) - crs0;
      r -= OCTET * taps;
    }
  };
  return { xLast, owned, anchor, dwRow };
}

/** Wavefronts beyond one of a 4-byte access by 32 lanes to `words` (the emulator's rule: distinct words a bank). */
function extraWavefronts(words: number[]): number {
  const perBank = new Array<number>(32).fill(0);
  for (const w of new Set(words)) perBank[w % 32]++;
  return Math.max(...perBank) - 1;
}

/**
 * The store step's bank conflicts over every block of a layer (its band writes and reads; one n8 tile and column tile's,
 * times their counts), by the emulator's rule, as wgradTapsStore's code addresses the band.
 */
export function wgradTapsStoreConflicts(g: Pick<Consts<'conv_wgrad_fused'>, 'C' | 'K' | 'R' | 'S'>, tile: MmaTile, octets: number, reads: BandReads): { writes: number; reads: number } {
  const RS = g.R * g.S, UNITS = (g.C / OCTET) * RS, MT = warpM16(tile), columns = tile.warpsN * 8;
  const pitch = storePitch(RS, octets * OCTET * RS), spare = columns * pitch;
  let writes = 0, readCount = 0;
  for (let u0 = 0; u0 < UNITS; u0 += tile.bm / OCTET) {
    const u1 = Math.min(u0 + tile.bm / OCTET, UNITS), b = blockRows(RS, u0, u1), crs0 = Math.floor(u0 / RS) * OCTET * RS;
    for (let wm = 0; wm < tile.warpsM; wm++)
      for (let wn = 0; wn < tile.warpsN; wn++)
        for (let i = 0; i < MT * 2; i++)
          for (let half = 0; half < 2; half++) {
            const words = Array.from({ length: 32 }, (_, lane) => {
              const m = 8 * u0 + wm * 16 * MT + 16 * Math.floor(i / 2) + 8 * (i % 2) + (lane >> 2), u = m >> 3;
              const crs = (OCTET * Math.floor(u / RS) + (m % OCTET)) * RS + (u % RS);
              return u < UNITS ? (wn * 8 + 2 * (lane % 4) + half) * pitch + crs - crs0 : spare + lane;
            });
            writes += extraWavefronts(words);
          }
    const rows = reads === 'dense' ? tile.bm : (b.xLast + 32) & ~31;
    for (let q0 = 0; q0 < columns * rows; q0 += 32) {
      const words = Array.from({ length: 32 }, (_, lane) => {
        const cl = Math.floor((q0 + lane) / rows), x = (q0 + lane) % rows;
        const row = reads === 'dense' ? b.dwRow(Math.min(x, OCTET * (u1 - u0) - 1)) : b.owned(x) ? x : b.anchor(x & ~31);
        return cl * pitch + row;
      });
      readCount += extraWavefronts(words);
    }
  }
  const times = tile.nt * Math.ceil(g.K / tile.bn);
  return { writes: writes * times, reads: readCount * times };
}

/**
 * After wgradTapsRows, where the halo can hold a column band: each n8 tile's accumulators written, by dW row, into the
 * halo as fp32 columns (the block's warpsN·8 columns of that tile, its dW rows from crs0; rows past C·R·S into 32 spare
 * words), then copied out by `reads` (the file's note): stores in runs along dW, where the rows' own order (8 channels
 * R·S apart a store instruction) would touch a sector per element. `dense`: an edge block's lanes past its rows repeat
 * its last (the same value to the same place). Undefined where the band does not fit (the kernel then stores from the
 * accumulators).
 */
export function wgradTapsStore(c: Consts<'conv_wgrad_fused'>, tp: WgradTaps, tile: MmaTile, threads: number, reads: BandReads): string[] | undefined {
  const RS = c.R * c.S, CRS = c.C * RS, MT = warpM16(tile), WN = tile.nt * 8;
  const span = tp.octets * OCTET * RS, pitch = storePitch(RS, span), columns = tile.warpsN * 8, spare = columns * pitch;
  if ((spare + 32) * 4 > tp.bytes) return undefined;
  const column = (cl: string) => `n0 + ${cl} / 8 * ${WN} + nt * 8 + ${cl} % 8`;
  const readOut = reads === 'dense'
    ? [
        `  for (int q = t; q < ${columns * tile.bm}; q += ${threads}) {`,
        `    const int cl = q / ${tile.bm}, crs = dw_row(min(q % ${tile.bm}, ${OCTET} * (u1 - u0) - 1)), col = ${column('cl')};`,
        `    const float v = nincc::ld(&band[cl * ${pitch} + crs - crs0]);`,
        `    if (col < ${c.K}) nincc::st(&wpart[((long long)split * ${c.K} + col) * ${CRS} + crs], v);`,
        '  }',
      ]
    : [
        `  for (int q = t; q < ${columns} * band_rows; q += ${threads}) {  // a warp: one column, one aligned chunk of 32 band rows`,
        '    const int cl = q / band_rows, x = q % band_rows, row = band_owned(x) ? x : band_anchor(x & ~31), col = ' + column('cl') + ';',
        `    const float v = nincc::ld(&band[cl * ${pitch} + row]);`,
        `    if (col < ${c.K}) nincc::st(&wpart[((long long)split * ${c.K} + col) * ${CRS} + crs0 + row], v);`,
        '  }',
      ];
  return [
    `float* const band = reinterpret_cast<float*>(wtaps);  // the halo, idle after the main loop's last barrier: ${columns} columns × ${pitch} dW rows, 32 spare words`,
    ...(reads === 'aligned'
      ? [
          `// Band row x (dW row crs0 + x) is the block's where its unit (octet, tap) is in [u0, u1); chunks of 32 rows up to its last (octet ${OCTET - 1}'s channel 7).`,
          `const int band_rows = ((${OCTET} * ((u1 - 1) / ${RS}) + ${OCTET - 1}) * ${RS} + (u1 - 1) % ${RS} - crs0 + 32) & ~31;`,
          `auto band_unit = [&](int x) { return (crs0 + x) / ${OCTET * RS} * ${RS} + x % ${RS}; };`,
          'auto band_owned = [&](int x) { const int u = band_unit(x); return u >= u0 && u < u1; };',
          `// A chunk's first owned row (within R·S of its start): the octet's first owned tap of this channel, or of the next.`,
          `auto band_anchor = [&](int x) { const int tap = x % ${RS}, u = band_unit(x), lo = max(u0 - (u - tap), 0); return u < u0 ? x + lo - tap : u >= u1 ? x + ${RS} - tap + lo : x; };`,
        ]
      : []),
    'NINCC_UNROLL',
    `for (int nt = 0; nt < ${tile.nt}; ++nt) {`,
    '  NINCC_UNROLL',
    `  for (int i = 0; i < ${MT * 2}; ++i) {  // m16 tile i / 2, its rows 8·(i % 2) + lane / 4 (the m16n8k16 C layout)`,
    `    const long long m = m0 + wm * ${16 * MT} + 16 * (i / 2) + 8 * (i % 2) + lane / 4;`,
    '    NINCC_UNROLL',
    '    for (int half = 0; half < 2; ++half) {',
    `      ${wgradTapsRow(c)}`,
    `      nincc::st(&band[live_crs ? (wn * 8 + 2 * (lane % 4) + half) * ${pitch} + crs - crs0 : ${spare} + lane], acc[i / 2][nt][2 * (i % 2) + half]);`,
    '    }',
    '  }',
    '  __syncthreads();',
    ...readOut,
    '  __syncthreads();',
    '}',
  ];
}
