// The A staging of a weight gradient whose B fragments come straight from its dY' ring (conv-mma-wgrad-ring-fragments.ts):
// A from the input halo in the positions' own k order, free of bank conflicts. stageAlongK in that order (4 taps × the
// slice's 32 positions a load instruction) meets them on every halo layout (NIN's k11: ≥ 1.13 wavefronts an instruction,
// test/profile-conv-mma's 3×3: ≥ 1.33; bench/RESULTS.md i15h): each tap's 32 positions span 16 words and more, so the taps
// of two channels, or two output rows of a slice, land on banks the others use. Here a load instruction reads 16
// consecutive taps × one 16-byte chunk (8 positions): warp w stages chunk w % 4 of rows 16·(w / 4 + warps/4 · i) + lane / 2,
// lane % 2 the chunk's half (4 positions, one 8-byte store). A tap's 8 positions lie within a few words, so the 16 taps'
// footprints fit in 32 banks where the halo's row pitch spreads its kernel rows apart: the layout (row pitch ≥ the padded
// row, image gap, plane residue) is searched for that (chooseNaturalHalo; NIN's k11: rows of 47). The stores: a 16-lane
// phase is 8 rows × one chunk, on 4 swizzled 128-byte lines of two rows each: conflict-free. A's values are those of
// stageAlongK in the same order (the same taps, positions and rounding); only which thread stages them changes.
import { BK, K_OFFSET_NATURAL, swizzled, unrolled, type Staging } from './conv-mma-tile.js';
import { haloSize, paddedAt, paddedColumns, paddedRows, planePitch, slicePlane, type Geometry, type Halo, type HaloLayout } from './conv-mma-wgrad-halo.js';
import { HALO_POSITIONS, stagedPerPosition } from './conv-mma-wgrad-halo-span.js';

/** The thread's half-chunk of the slice (its four positions 4·quarter..4·quarter + 3): chunk warp % 4, half lane % 2. */
export const NATURAL_QUARTER = '(2 * (t / 32 % 4) + t % 2)';

/** Whether a tile of `bm` rows and `threads` threads stages this way: warps in fours (one a chunk), 16-row groups shared evenly. */
export const naturalStagingFits = (bm: number, threads: number) => {
  const warps = threads / 32;
  return warps % 4 === 0 && bm % (4 * warps) === 0;
};

/** The A tile `as` of `rows` rows staged as the file's note says; `s` as for stageAlongK (conv-mma-tile.ts), in K_OFFSET_NATURAL's order. */
export function stageNatural(rows: number, s: Staging, threads: number): string[] {
  const groups = threads / 128; // the warps on one chunk
  return [
    'NINCC_UNROLL',
    `for (int i = 0; i < ${rows / 16 / groups}; ++i) {`,
    `  const int row = 16 * (warp / 4 + ${groups} * i) + lane / 2, quarter = ${NATURAL_QUARTER};`,
    ...s.perRow.map((line) => `  ${line}`),
    '  float vs[4];',
    ...unrolled(4, K_OFFSET_NATURAL, s.perElement),
    `  nincc::st(reinterpret_cast<int2*>(&as[${swizzled('row', 'quarter / 2')}]) + quarter % 2, int2{int(nincc::to_bf16x2(vs[1], vs[0])), int(nincc::to_bf16x2(vs[3], vs[2]))});`,
    '}',
  ];
}

/**
 * Whether any load instruction of this staging meets a bank conflict in layout `l` (the emulator's rule: 32 banks of 4 bytes,
 * lanes on one word share it): over every staging start (a multiple of 8: the splits fall on the ring's chunks), slice,
 * chunk, element and first tap's place in its channel. `witnesses`: conflicts found in other layouts, checked first.
 */
export function naturalStagingConflicts(g: Geometry, l: HaloLayout, positions: number, witnesses: [number, number][] = []): boolean {
  const RS = g.R * g.S, PQ = g.P * g.Q;
  const at = new Int32Array(positions), taps = new Int32Array(16), bankWord = new Int32Array(32);
  const conflictAt = (j0: number, crs0: number) => {
    const { first, length } = slicePlane(g, l, Math.floor(j0 / g.Q), Math.floor((j0 + positions - 1) / g.Q));
    const pitch = planePitch(l, length);
    for (let k = 0; k < positions; k++) {
      const pq = (j0 + k) % PQ;
      at[k] = paddedAt(l, Math.floor((j0 + k) / PQ), Math.floor(pq / g.Q) * g.sh, (pq % g.Q) * g.sw) - first;
    }
    for (let i = 0; i < 16; i++) taps[i] = Math.floor((crs0 + i) / RS) * pitch + (Math.floor((crs0 + i) / g.S) % g.R) * l.columns + ((crs0 + i) % g.S);
    for (let chunk = 0; chunk < positions / 8; chunk++)
      for (let e = 0; e < 4; e++) {
        bankWord.fill(-1);
        for (let lane = 0; lane < 32; lane++) {
          const word = (taps[lane >> 1] + at[8 * chunk + 4 * (lane & 1) + e]) >> 1, bank = word & 31;
          if (bankWord[bank] === -1) bankWord[bank] = word;
          else if (bankWord[bank] !== word) return true;
        }
      }
    return false;
  };
  for (const [j0, crs0] of witnesses) if (conflictAt(j0, crs0)) return true;
  for (let j0 = 0; j0 < PQ; j0 += 8)
    for (let crs0 = 0; crs0 < RS; crs0++)
      if (conflictAt(j0, crs0)) {
        witnesses.push([j0, crs0]);
        return true;
      }
  return false;
}

/**
 * A stride-1 layer's halo for this staging, or undefined where none is free of conflicts within `maxBytes` (the static shared
 * memory the tiles leave: the wider rows need more than HALO_MAX_BYTES for the longer stagings, NIN's k11 23.1 KB for 256
 * positions): of the staging lengths in order of the elements they copy a position (conv-mma-wgrad-halo-span.ts; one slice
 * with `span` off), the first layout found over row pitches from the padded row to 32 more, image gaps 0..63 and even plane
 * residues from 16.
 */
export function chooseNaturalHalo(g: Geometry, bm: number, threads: number, span: boolean, maxBytes: number): Halo | undefined {
  const rows = paddedRows(g), padded = paddedColumns(g);
  const unpadded = { rows, columns: padded, imageGap: 0, planeResidue: 0 };
  const lengths = span ? [...HALO_POSITIONS].sort((a, b) => stagedPerPosition(g, unpadded, a) - stagedPerPosition(g, unpadded, b) || a - b) : [BK];
  for (const positions of lengths) {
    const witnesses: [number, number][] = [];
    for (let columns = padded; columns <= padded + 32; columns++) {
      if (haloSize(g, { rows, columns, imageGap: 0, planeResidue: 0 }, bm, threads, positions).elements * 2 > maxBytes) break;
      for (let imageGap = 0; imageGap < 64; imageGap++)
        for (let r = 0; r < 32; r++) {
          const layout = { rows, columns, imageGap, planeResidue: (16 + 2 * r) % 64 };
          if (naturalStagingConflicts(g, layout, positions, witnesses)) continue;
          const { channels, plane, elements } = haloSize(g, layout, bm, threads, positions);
          if (elements * 2 <= maxBytes) return { layout, positions, channels, plane, elements, bytes: elements * 2 };
        }
    }
  }
  return undefined;
}
