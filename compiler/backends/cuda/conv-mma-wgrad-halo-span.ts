// How many output positions a k×k weight gradient's input halo (conv-mma-wgrad-halo.ts) covers per staging.
// A staging copies the padded input rows its positions' taps read: for 32 positions on NIN's 27×27 5×5
// layer that is about 6 rows of 31 columns, 5 of them the R − 1 rows every staging repeats, so the halo
// reads each input row about 5 times. Covering 2, 4 or 8 slices per staging shares those R − 1 rows among
// more positions; the slices in between build A from the rows already in shared memory. A's values and
// the k order do not change, so the results are bitwise those of a one-slice halo (`haloSpan: false`).
import { BK } from './conv-mma-tile.js';
import { chooseHalo, type StemPitch } from './conv-mma-wgrad-halo-banks.js';
import { paddedColumns, paddedRows, slicePlane, type Geometry, type Halo, type HaloLayout } from './conv-mma-wgrad-halo.js';

/** The stagings' lengths tried, in positions: whole slices, up to eight. */
export const HALO_POSITIONS: readonly number[] = [BK, 2 * BK, 4 * BK, 8 * BK];

/** The padded elements a channel's stagings of `positions` copy per output position, averaged over every start within an image. */
export function stagedPerPosition(g: Geometry, l: HaloLayout, positions: number): number {
  const PQ = g.P * g.Q;
  let elements = 0;
  for (let j0 = 0; j0 < PQ; j0++) elements += slicePlane(g, l, Math.floor(j0 / g.Q), Math.floor((j0 + positions - 1) / g.Q)).length;
  return elements / PQ / positions;
}

/**
 * The layer's halo: of the staging lengths in order of the elements they copy per position (unpadded; the
 * shorter on a tie), the first whose halo is free of bank conflicts and fits (chooseHalo; the longer ones
 * search fewer layouts, to keep the compile short); only one slice with `span` off.
 */
export function chooseHaloSpan(g: Geometry, bm: number, threads: number, span: boolean, stem?: StemPitch): Halo | undefined {
  if (!span) return chooseHalo(g, bm, threads, BK, true, stem);
  const unpadded = { rows: paddedRows(g), columns: paddedColumns(g), imageGap: 0, planeResidue: 0 };
  const byCost = HALO_POSITIONS.map((positions) => ({ positions, cost: stagedPerPosition(g, unpadded, positions) })).sort((a, b) => a.cost - b.cost || a.positions - b.positions);
  for (const { positions } of byCost) {
    const halo = chooseHalo(g, bm, threads, positions, positions === BK, stem);
    if (halo) return halo;
  }
  return undefined;
}
