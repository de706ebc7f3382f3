// The tap-major A of a stride-1 k×k bf16 weight gradient (issue #15, `wgradTapsHalo`): A's fragments by ldmatrix.trans
// straight from a channels-innermost input halo, no A tile staged from the halo each slice (the pass that took about
// 0.75 of k31's 2.40 shared wavefronts a MMA: bench/RESULTS.md i15i).
//
// M order. Row m of the GEMM is (octet o, tap t, channel c % 8): m = 8·(o·R·S + t) + c % 8, channel c = 8·o + c % 8, so
// the 8 rows of one ldmatrix matrix are 8 channels of one tap — one 16-byte halo unit of one position. The epilogue
// maps row m back to dW's c·R·S + t.
//
// k order. A transposed ldmatrix phase reads 8 positions of one octet and tap. In the B tile's k order
// (K_OFFSET_ALONG_K: a phase's positions j0 + a + {0, 1, 8, 9, 16, 17, 24, 25}) no layout of the padded plane whose taps
// are a fixed offset (a row pitch, an image pitch, an XOR swizzle of the unit's bits 3–5) keeps them on 8 distinct
// 16-byte bank groups on 7×7 planes: at best 0.57 wavefronts more a phase (wgradTapsConflicts over every row pitch and
// image gap mod 8; bench/RESULTS.md i15k), as 7-position rows put j and j + 24 on one group wherever a row ends between
// them. So both operands take the positions' own order (K_OFFSET_NATURAL: a phase reads 8 consecutive positions), B staged
// in it (conv-mma-wgrad-coalesced-staging.ts), and the row pitch ≡ Q (mod 8), the image pitch making an image's last
// position and the next one's first 1 apart (mod 8) — consecutive positions then sit on consecutive groups, as the
// forwards' tap-major halo does (conv-mma-taps-halo.ts). Another summation order than the A tile's: within fp32
// summation error of it, deterministic (test/emu-conv-mma-wgrad-taps-halo.test.ts).
//
// Layout. Unit (octet o − the block's first, z) holds channels 8·o … 8·o + 7 of padded position z of the staging's
// window (z = image·pitchImage + padded row·pitchW + padded column − the window's first), at 16-byte index U = o·plane + z.
// The staging stores 8 consecutive units of one aligned group a phase (the plane is a multiple of 8): conflict-free.
// docs/design.md §4.1.
import { loadFloat, type Consts } from './parts.js';
import { BK, type MmaTile, warpM16 } from './conv-mma-tile.js';
import { applyPendingFrom, fromRow } from './conv-mma-channels.js';
import { borderZeros } from './conv-mma-wgrad-taps-border.js';

/** Channels a halo unit (one ldmatrix row) holds. */
export const OCTET = 8;
/** The slice offsets one transposed ldmatrix phase reads, after its first: K_OFFSET_ALONG_K's (`along`) or the positions' own. */
const PHASE_OFFSETS = { along: { firsts: [0, 2, 4, 6], offsets: [0, 8, 16, 24, 1, 9, 17, 25] }, natural: { firsts: [0, 8, 16, 24], offsets: [0, 1, 2, 3, 4, 5, 6, 7] } };
export type TapsOrder = keyof typeof PHASE_OFFSETS;

export type TapsShape = Pick<Consts<'conv_wgrad_fused'>, 'C' | 'K' | 'H' | 'W' | 'P' | 'Q' | 'R' | 'S' | 'sh' | 'sw' | 'ph' | 'pw'>;

/** A layer's tap-major input halo (see the file's note). */
export interface WgradTaps {
  readonly pitchW: number;
  readonly pitchImage: number;
  readonly octets: number; // the most octets a block's rows reach
  readonly plane: number; // units an octet's plane holds: the longest window, a multiple of 8
  readonly positions: number; // output positions a staging covers (a multiple of BK)
  readonly zeros: 1 | 8; // zero units past the planes: one, or one per 16-byte bank group (`wgradTapsZeroGroups`)
  readonly bytes: number; // octets·plane units and the zero units, 16 bytes each
}

const paddedRows = (g: TapsShape) => g.P + g.R - 1;
const paddedColumns = (g: TapsShape) => g.Q + g.S - 1;

/** Output position j's padded (0, 0) tap: its z before the window's first is subtracted. */
const zOf = (g: TapsShape, pitchW: number, pitchImage: number, j: number) => {
  const PQ = g.P * g.Q, pq = j % PQ;
  return Math.floor(j / PQ) * pitchImage + Math.floor(pq / g.Q) * pitchW + (pq % g.Q);
};

/** The 16-byte bank group of unit U under an XOR swizzle of its bits 3–5 by `swizzle` (0: none; the kernel's layout). */
const groupOf = (U: number, swizzle: number) => (U & 7) ^ ((((U >> 3) & 7) * swizzle) & 7);

/**
 * The extra wavefronts (beyond one a phase) of every transposed ldmatrix phase, over every slice start within an image
 * (crossing into the next adds pitchImage, whatever the image) and every offset mod 64 (octet, tap, window first):
 * `stopAt` ends the count early (the search wants none).
 */
export function wgradTapsConflicts(g: TapsShape, pitchW: number, pitchImage: number, swizzle: number, order: TapsOrder, stopAt = Infinity): number {
  const PQ = g.P * g.Q, counts = new Int32Array(8), units = new Int32Array(8), { firsts, offsets } = PHASE_OFFSETS[order];
  let extra = 0;
  for (let j0 = 0; j0 < PQ; j0++)
    for (const a of firsts)
      for (let D = 0; D < (swizzle ? 64 : 8); D++) {
        counts.fill(0);
        let distinct = 0;
        for (const x of offsets) {
          const U = zOf(g, pitchW, pitchImage, j0 + a + x) + D;
          if (units.subarray(0, distinct).includes(U)) continue; // lanes on one unit share it
          units[distinct++] = U;
          counts[groupOf(U, swizzle)]++;
        }
        extra += Math.max(...counts) - 1;
        if (extra >= stopAt) return extra;
      }
  return extra;
}

/** The units a staging of `positions` from output position `js` spans: its first row's (0, 0) to its last row's last tap row and column. */
function windowLength(g: TapsShape, pitchW: number, pitchImage: number, js: number, positions: number): number {
  const rowZ = (o: number) => Math.floor(o / g.P) * pitchImage + (o % g.P) * pitchW;
  const o0 = Math.floor(js / g.Q), o1 = Math.floor((js + positions - 1) / g.Q);
  return rowZ(o1) + (g.R - 1) * pitchW + pitchW - 1 - rowZ(o0) + 1;
}

/** The most octets the rows of a block of `bm` reach (the last octet's rows past C·R·S read it again). */
function octetsReached(g: TapsShape, bm: number): number {
  const RS = g.R * g.S, units = (g.C / OCTET) * RS;
  let most = 0;
  for (let u0 = 0; u0 < units; u0 += bm / OCTET) {
    const last = Math.min(u0 + bm / OCTET, units) - 1;
    most = Math.max(most, Math.floor(last / RS) - Math.floor(u0 / RS) + 1);
  }
  return most;
}

/**
 * The layer's tap-major halo for a tile, within `budget` bytes of shared memory, or undefined: a stride-1 k×k conv of whole
 * octets (C a multiple of 8), whose tile's warps have 64 rows or 32, and a conflict-free layout within 24 row pitches and 16
 * image gaps; the longest staging (4, 2 or 1 slices) that fits.
 */
export function chooseWgradTaps(g: TapsShape, tile: MmaTile, budget: number, zeros: 1 | 8 = 8): WgradTaps | undefined {
  if (g.R * g.S === 1 || g.sh !== 1 || g.sw !== 1 || g.C % OCTET !== 0 || tile.bm % 16 !== 0) return undefined;
  const layout = searchLayout(g);
  if (!layout) return undefined;
  const octets = octetsReached(g, tile.bm);
  for (const positions of [4 * BK, 2 * BK, BK]) {
    let longest = 0;
    for (let js = 0; js < g.P * g.Q; js++) longest = Math.max(longest, windowLength(g, layout.pitchW, layout.pitchImage, js, positions));
    const plane = Math.ceil(longest / 8) * 8;
    const bytes = (octets * plane + zeros) * 16;
    if (bytes <= budget) return { ...layout, octets, plane, positions, zeros, bytes };
  }
  return undefined;
}

/** The least pitches (row pitch, then image gap) with no conflicted phase in the positions' own order (no swizzle needed). */
function searchLayout(g: TapsShape): { pitchW: number; pitchImage: number } | undefined {
  const Wmin = paddedColumns(g);
  for (let pitchW = Wmin; pitchW < Wmin + 8; pitchW++)
    for (let gap = 0; gap < 8; gap++) {
      const pitchImage = paddedRows(g) * pitchW + gap;
      if (wgradTapsConflicts(g, pitchW, pitchImage, 0, 'natural', 1) === 0) return { pitchW, pitchImage };
    }
  return undefined;
}

/**
 * The zero unit, past the octets' planes: what a position past the split reads (A is 0 there, as in the A tile). With 8
 * (`wgradTapsZeroGroups`), such a lane reads the one on its own unit's bank group, so that a phase that crosses the
 * split's end keeps its 8 groups distinct (one zero unit shared a group with a live lane's: bank conflicts at split tails).
 */
const zeroUnit = (t: WgradTaps) => t.octets * t.plane;

/** Before the main loop: the halo, its zero unit, the pending BN's table and each lane's unit offset for its m16 tiles. */
export function wgradTapsPrologue(c: Consts<'conv_wgrad_fused'>, tp: WgradTaps, tile: MmaTile, threads: number): string[] {
  const RS = c.R * c.S, MT = warpM16(tile);
  return [
    `NINCC_SHARED(int4, wtaps, ${tp.octets * tp.plane + tp.zeros});  // ${tp.octets} octets × ${tp.plane} positions of 8 channels (bf16), and ${tp.zeros === 1 ? 'a zero unit' : `${tp.zeros} zero units (one a bank group)`}`,
    `const int oct0 = int(m0) / ${OCTET * RS};  // the block's first octet`,
    'int w_first = 0;  // the staged window\'s first z, kept for the slices it covers',
    tp.zeros === 1
      ? `if (t == 0) nincc::st(&wtaps[${zeroUnit(tp)}], int4{0, 0, 0, 0});  // seen after the first staging's barrier`
      : `if (t < ${tp.zeros}) nincc::st(&wtaps[${zeroUnit(tp)} + t], int4{0, 0, 0, 0});  // seen after the first staging's barrier`,
    `int a_off[${MT}];  // per m16 tile: this lane's unit (its ldmatrix matrix's octet and tap) as an offset from a position's (0, 0)`,
    'NINCC_UNROLL',
    `for (int mt = 0; mt < ${MT}; ++mt) {`,
    `  const int u = int(m0) / ${OCTET} + wm * ${2 * MT} + 2 * mt + lane / 8 % 2, o = min(u / ${RS}, ${c.C / OCTET - 1}), tap = u % ${RS};`,
    `  a_off[mt] = (o - oct0) * ${tp.plane} + tap / ${c.S} * ${tp.pitchW} + tap % ${c.S};`,
    '}',
    ...(c.inBn
      ? [
          `NINCC_SHARED(float, h_in_scale, ${tp.octets * OCTET});`,
          `NINCC_SHARED(float, h_in_shift, ${tp.octets * OCTET});`,
          `for (int cl = t; cl < ${tp.octets * OCTET}; cl += ${threads}) {`,
          `  const int ch = ${OCTET} * oct0 + cl;`,
          `  nincc::st(&h_in_scale[cl], ch < ${c.C} ? nincc::ld(&in_scale[ch]) : 0.0f);`,
          `  nincc::st(&h_in_shift[cl], ch < ${c.C} ? nincc::ld(&in_shift[ch]) : 0.0f);`,
          '}',
          '__syncthreads();',
        ]
      : []),
  ];
}

/**
 * Per slice, before the barrier that follows B's staging: at the split's first slice and every positions/BK-th after, the
 * window copied in (a thread a unit: 8 channel loads, each a warp instruction along a padded row, the pending BN/ReLU
 * applied, rounded to bf16, one 16-byte store; every lane loads, clamped, and stores, the padding and spares 0; with
 * `rowLoads`, every unit 0, then a thread a real position of the window's input rows, image-major: a load instruction
 * along 32 consecutive positions of one channel; with `borders`, only the padding rings zeroed, no barrier); then this lane's two ldmatrix rows of the slice (k-steps 0 and 1) as
 * z offsets, −1 past the split.
 */
export function wgradTapsStaging(c: Consts<'conv_wgrad_fused'>, tp: WgradTaps, threads: number, rowLoads = false, borders = false): string[] {
  const PQ = c.P * c.Q, HW = c.H * c.W, Wp = tp.pitchW, IMG = tp.pitchImage;
  const units = tp.octets * tp.plane, rounds = Math.ceil(units / threads) * threads;
  const element = (e: number, inside: string) => [
    `  {  // channel ${e} of the octet`,
    `    const int ch = c8 + ${e};`,
    ...(c.inBn ? [`    const int cl = min(ch - ${OCTET} * oct0, ${tp.octets * OCTET - 1});  // a spare's past the table: its value is not kept`] : []),
    `    float v = ${loadFloat('x', `((long long)min(img, n - 1) * ${c.C} + min(ch, ${c.C - 1})) * ${HW} + hw`, c.xBf16)};`,
    ...(c.inBn ? [`    const float r_in_scale = nincc::ld(&h_in_scale[cl]), r_in_shift = nincc::ld(&h_in_shift[cl]);`] : []),
    ...applyPendingFrom(c, 'v', fromRow).map((line) => `    ${line}`),
    `    vs[${e}] = ${inside}ch < ${c.C} ? v : 0.0f;`,
    '  }',
  ];
  const pack = `int4{int(nincc::to_bf16x2(vs[1], vs[0])), int(nincc::to_bf16x2(vs[3], vs[2])), int(nincc::to_bf16x2(vs[5], vs[4])), int(nincc::to_bf16x2(vs[7], vs[6]))}`;
  // wgradTapsRowLoads: every unit 0, then the window's real positions (its input rows, image-major: whole rows of one
  // channel a load instruction). Each octet's run is padded to whole 8-lane phases (a 16-byte store's), so a phase's
  // positions are consecutive, on consecutive bank groups by the layout; lanes past a run, or past the last round,
  // repeat its last position (the same value to the same unit).
  // wgradTapsBorderZeros: only the padding rings A reads, disjoint from the real positions (conv-mma-wgrad-taps-border.ts).
  const byRows = [
    ...(borders ? borderZeros(c, tp, threads, zeroUnit(tp)) : [
    `  for (int i = t; i < ${rounds}; i += ${threads}) nincc::st(&wtaps[i < ${units} ? i : ${zeroUnit(tp)}], int4{0, 0, 0, 0});  // the padding's and gaps' zeros (a spare: the zero unit)`,
    '  __syncthreads();  // the zeros before the positions over them',
    ]),
    `  const int row0 = o0 / ${c.P} * ${c.H} + min(max(o0 % ${c.P} - ${c.ph}, 0), ${c.H});  // the window's first input row (image·H + h)`,
    `  const int row1 = min(o1 / ${c.P} * ${c.H} + min(max(o1 % ${c.P} + ${c.R - c.ph}, 0), ${c.H}), n * ${c.H});  // past its last (within the batch)`,
    `  const int live = (row1 - row0) * ${c.W}, run = (live + 7) & ~7, total = ${tp.octets} * run;  // an octet's positions, in whole 8-lane phases`,
    `  for (int i = t; i < (total + ${threads - 1}) / ${threads} * ${threads}; i += ${threads}) {  // every lane as often`,
    `    const int ii = min(i, total - 1), ol = ii / run, g = row0 * ${c.W} + min(ii % run, live - 1), img = g / ${HW}, hw = g % ${HW}, c8 = ${OCTET} * (oct0 + ol);`,
    '    float vs[8];',
    ...Array.from({ length: OCTET }, (_, e) => element(e, '')).flat(),
    `    nincc::st(&wtaps[ol * ${tp.plane} + img * ${IMG} + (hw / ${c.W} + ${c.ph}) * ${Wp} + hw % ${c.W} + ${c.pw} - w_first], ${pack});`,
    '  }',
  ];
  const z = `int(j / ${PQ}) * ${IMG} + int(j % ${PQ}) / ${c.Q} * ${Wp} + int(j % ${PQ}) % ${c.Q} - w_first`;
  return [
    `if ((j0 - lo) % ${tp.positions} == 0) {  // the window of this and the next ${tp.positions / BK - 1} slices: the same for every thread`,
    `  const int o0 = int(j0 / ${c.Q}), o1 = int((j0 + ${tp.positions - 1}) / ${c.Q});  // its first and last output rows (image·P + p)`,
    `  w_first = o0 / ${c.P} * ${IMG} + o0 % ${c.P} * ${Wp};`,
    ...(rowLoads ? byRows : [
    `  const int length = o1 / ${c.P} * ${IMG} + (o1 % ${c.P} + ${c.R - 1}) * ${Wp} + ${Wp} - w_first;`,
    `  for (int i = t; i < ${rounds}; i += ${threads}) {  // every lane as often (the emulator pairs a lane's k-th access with its neighbours'): a spare stores 0 to the zero unit`,
    `    const int ol = i / ${tp.plane}, z = i % ${tp.plane}, f = w_first + min(z, length - 1), c8 = ${OCTET} * (oct0 + ol);  // past the window: its last row's loads again`,
    `    const int img = f / ${IMG}, pr = f % ${IMG} / ${Wp}, pc = f % ${IMG} % ${Wp}, h = pr - ${c.ph}, u = pc - ${c.pw};`,
    `    const bool inside = i < ${units} && z < length && img < n && pr < ${paddedRows(c)} && h >= 0 && h < ${c.H} && u >= 0 && u < ${c.W};  // else padding, a gap or a spare: 0`,
    `    const int hw = min(max(h, 0), ${c.H - 1}) * ${c.W} + min(max(u, 0), ${c.W - 1});`,
    '    float vs[8];',
    ...Array.from({ length: OCTET }, (_, e) => element(e, 'inside && ')).flat(),
    `    nincc::st(&wtaps[i < ${units} ? i : ${zeroUnit(tp)}], ${pack});`,
    '  }',
    ]),
    '}',
    '// This lane\'s ldmatrix row of k-step ks: slice offset (its own order) 16·ks + 8·(lane / 16) + lane % 8.',
    'int a_z[2];',
    'NINCC_UNROLL',
    'for (int ks = 0; ks < 2; ++ks) {',
    '  const long long j = j0 + 16 * ks + 8 * (lane / 16) + lane % 8;',
    ...(tp.zeros === 1
      ? [`  a_z[ks] = j < hi ? ${z} : -1;`]
      : [`  const int z = ${z};`, "  a_z[ks] = j < hi ? z : -1 - z;  // past the split: its unit's group kept"]),
    '}',
  ];
}

/** mmaSlice's A address (transposed): lane's unit of m16 tile `mt` at k-step `ks`, the zero unit past the split. */
export const wgradTapsAAddress = (tp: WgradTaps) =>
  `&wtaps[a_z[ks] < 0 ? ${zeroUnit(tp)}${tp.zeros === 1 ? '' : ' + ((a_off[mt] - 1 - a_z[ks]) & 7)'} : a_z[ks] + a_off[mt]]`;

/** The epilogue's dW row of GEMM row `m` (a C++ statement declaring `crs`, and `live_crs`: a row of a real channel). */
export function wgradTapsRow(c: Consts<'conv_wgrad_fused'>): string {
  const RS = c.R * c.S;
  return `const int u_m = int(m / ${OCTET}), live_crs = u_m < ${(c.C / OCTET) * RS}, crs = (${OCTET} * (u_m / ${RS}) + int(m % ${OCTET})) * ${RS} + u_m % ${RS};  // row (octet, tap, channel % 8) → dW's c·R·S + tap`;
}

/** report.txt's words for the tile (haloWords' counterpart). */
export const wgradTapsHaloWords = (tp: WgradTaps) =>
  `input halo channels innermost, ${tp.octets} octets × ${tp.plane} positions, ${tp.positions} positions a staging, bf16 in shared (${tp.bytes} B), rows tap-major within octets`;

/** report.txt's words. */
export const wgradTapsWords = (tp: WgradTaps, ringB = false) =>
  `A's fragments by ldmatrix.trans from a channels-innermost input halo (${tp.octets} octets × ${tp.plane} positions, ${tp.positions} a staging, ${tp.bytes} B; rows tap-major within octets of channels, mapped back to dW's c·R·S in the store), no A tile; k in the positions' own order, ${ringB ? "B's fragments in it from the ring" : 'B staged in it'}`;


/**
 * After the main loop: the block's units [u0, u1), its first octet's dW row crs0, and `dw_row(r)`: the block's r-th dW row in
 * dW's order (octet, channel, tap; r < 8·(u1 − u0)), so that loops over the block's dW rows give consecutive threads
 * consecutive rows with every lane on an owned one (the emulator pairs a lane's k-th access with its neighbours': a lane
 * that skipped a row would be priced against another iteration's).
 */
export function wgradTapsRows(c: Consts<'conv_wgrad_fused'>, tile: MmaTile): string[] {
  const RS = c.R * c.S;
  return [
    `const int u0 = int(m0) / ${OCTET}, u1 = min(u0 + ${tile.bm / OCTET}, ${(c.C / OCTET) * RS}), crs0 = u0 / ${RS} * ${OCTET * RS};  // the block's units (octet, tap), its first octet's dW row`,
    'auto dw_row = [&](int r) {  // the block\'s r-th dW row: octet by octet, each 8 channels × its taps in the block',
    `  for (int o = u0 / ${RS};; ++o) {`,
    `    const int first = max(u0, o * ${RS}), taps = min(u1, (o + 1) * ${RS}) - first;`,
    `    if (r < ${OCTET} * taps) return (${OCTET} * o + r / taps) * ${RS} + first - o * ${RS} + r % taps;`,
    `    r -= ${OCTET} * taps;`,
    '  }',
    '};',
  ];
}
