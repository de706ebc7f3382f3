// The tap-major halo's zeros on its border units only (issue #15, `wgradTapsBorderZeros`): where the halo is staged
// along input rows (conv-mma-wgrad-taps-halo.ts, `wgradTapsRowLoads`), every staging zeroed all of its octets' planes
// (NIN's k31: 5 × 432 units, 270 shared wavefronts, a quarter of its halo's) before a barrier and the real positions over
// them. A's fragments read only the window's real units and the padding ring around each image (rows p − 1 … p + 1,
// columns q − 1 … q + 1 of a position): the row pitch's gap and the image gap are never read. So each staging zeroes only
// the padding ring of each image the window touches, 4 sides a frame (top from column 1, bottom up to its next-to-last
// column, left up to its next-to-last row, right from row 1: each unit once), a side's lanes in whole 8-lane phases
// (lanes past its end repeat its last unit). A phase along a row takes 8 consecutive units; along a column 8 rows a
// pitch apart, distinct 16-byte bank groups where the pitch is odd (NIN's 7×7: 15); where it is 2 mod 4 (NIN's 14×14:
// 22), 4 rows of the left column (even groups apart) and 4 of the right (an odd column: the odd ones), the two column
// sides paired in one run of phases. A unit outside the window's plane
// (rows before its first, past its last) goes to the zero unit of its own bank group, which stays 0. The ring and the
// real positions are disjoint, so no barrier between them. For a 3×3 (or any k×k with one unit of padding a side) at
// stride 1 with same padding. The halo's contents A reads are the same: bitwise the switch off. docs/design.md §4.1.
import type { Consts } from './parts.js';
import type { WgradTaps } from './conv-mma-wgrad-taps-halo.js';

/** The column sides' phases: each side 8 rows a phase (an odd pitch), or both sides 4 rows each a phase (see the file's note). */
const columnPhases = (c: Consts<'conv_wgrad_fused'>, tp: WgradTaps): 'apart' | 'paired' | undefined =>
  tp.pitchW % 2 === 1 ? 'apart' : tp.pitchW % 4 === 2 && (c.Q + c.S - 2) % 2 === 1 ? 'paired' : undefined;

/** Whether the ring is the whole padding A reads and its phases are conflict-free (see the file's note). */
export const bordersFit = (c: Consts<'conv_wgrad_fused'>, tp: WgradTaps) =>
  c.ph === 1 && c.pw === 1 && c.H + 2 === c.P + c.R - 1 && c.W + 2 === c.Q + c.S - 1 && tp.zeros === 8 && columnPhases(c, tp) !== undefined;

const whole = (lanes: number) => Math.ceil(lanes / 8) * 8;

/**
 * At a staging (o0, o1 its first and last output rows, w_first its first z): zero the padding ring of every image frame
 * from o0's to o1's, every octet, a thread a unit (every lane as often: a spare repeats the last).
 */
export function borderZeros(c: Consts<'conv_wgrad_fused'>, tp: WgradTaps, threads: number, zeroUnit: number): string[] {
  const rows = c.P + c.R - 1, cols = c.Q + c.S - 1, lw = whole(cols - 1), lh = whole(rows - 1);
  const paired = columnPhases(c, tp) === 'paired', lp = 2 * Math.ceil((rows - 1) / 4) * 4, per = 2 * lw + (paired ? lp : 2 * lh);
  // The column sides: left rows 0 … rows − 2, right rows 1 … rows − 1; paired, lanes 8p … 8p + 3 the left's rows 4p …
  // 4p + 3 and lanes 8p + 4 … 8p + 7 the right's.
  const [pr, pc] = paired
    ? [`min(k / 8 * 4 + k % 4, ${rows - 2}) + k % 8 / 4`, `k % 8 / 4 * ${cols - 1}`].map((e) => e.replace(/k/g, `(k - ${2 * lw})`))
    : [`k < ${2 * lw + lh} ? min(k - ${2 * lw}, ${rows - 2}) : 1 + min(k - ${2 * lw + lh}, ${rows - 2})`, `k < ${2 * lw + lh} ? 0 : ${cols - 1}`];
  return [
    `  const int f0 = o0 / ${c.P}, frames = o1 / ${c.P} - f0 + 1, rings = ${tp.octets} * frames * ${per};  // the window's images' padding rings (${per} lanes a frame), every octet`,
    `  for (int i = t; i < (rings + ${threads - 1}) / ${threads} * ${threads}; i += ${threads}) {  // every lane as often`,
    `    const int ii = min(i, rings - 1), ol = ii / (frames * ${per}), img = f0 + ii / ${per} % frames, k = ii % ${per};`,
    `    const int pr = k < ${lw} ? 0 : k < ${2 * lw} ? ${rows - 1} : ${pr};  // top, bottom, then the column sides${paired ? ' (paired)' : ''}`,
    `    const int pc = k < ${lw} ? 1 + min(k, ${cols - 2}) : k < ${2 * lw} ? min(k - ${lw}, ${cols - 2}) : ${pc};`,
    `    const int z = img * ${tp.pitchImage} + pr * ${tp.pitchW} + pc - w_first, u = ol * ${tp.plane} + z;`,
    `    nincc::st(&wtaps[z >= 0 && z < ${tp.plane} ? u : ${zeroUnit} + (u & 7)], int4{0, 0, 0, 0});  // outside the plane: the zero unit of its group`,
    '  }',
  ];
}
