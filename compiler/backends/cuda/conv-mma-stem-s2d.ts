// The few-channels strided stem (NIN's 3→96 11×11/4) as a stride-1 conv over a space-to-depth input, so that its bf16
// forward (training and inference) takes the tap-major halo path of the stride-1 k×k convs (conv-mma-taps-halo.ts:
// A's fragments by ldmatrix from a channels-innermost shared halo) instead of the band of conv-mma-stem-band.ts,
// whose A is built 2 bytes at a time and which the model bounds by shared memory.
//
// The transform (strides fh = sh, fw = sw; the grid anchored at −pad): X'[n][v][j][i] = x[n][c][fh·j − ph + a][fw·i − pw + b]
// (0 outside the image), X' channel v standing for the cell offset (a, b) of input channel c (s2dChannel's order, below),
// and W'[k][v][r'][s'] = w[k][c][fh·r' + a][fw·s' + b] (0 where fh·r' + a ≥ R or fw·s' + b ≥ S). Output (p, q)'s tap (r, s) reads input row fh·p − ph + r = fh·(p + ⌊r/fh⌋) − ph + r % fh,
// X' row p + ⌊r/fh⌋: so y = a valid (pad 0) stride-1 conv of X' (P + R' − 1 rows × Q + S' − 1 columns, R' = ⌈R/fh⌉,
// S' = ⌈S/fw⌉) with W', for any kernel, stride and padding. Its C·fh·fw channels are padded to whole 32-channel
// groups (the tap-major halo's), zero: NIN's 48 → 64, 3×3 taps, a reduction of 576 against the gather's 363 useful
// (384 in 32-deep slices): 1.5× its MMAs, 1.59× the useful ones. Where the last group's live channels fill only the
// first of a slice's two 16-deep k-steps (NIN's 16 of 32), its slices run that one (s2dLastSteps): 432 deep, 1.125×
// the gather's slices. The transform is taken only where the fully padded
// work is at most S2D_MAX_WORK × the gather's slices (a 7×7/2 RGB stem: 12 → 32 channels, 4×4 taps, 3.2×: refused,
// the band stays).
//
// Where X' is made: in the halo staging itself, from the raw input (no global pass). A global X' (NIN at batch 128:
// 128 × 64 × 58² × 2 B = 55 MB written and read again, after 77 MB of fp32 input read) would cost at least ~45 µs of
// HBM time per forward at ~3 TB/s, about what the forward itself should save; the staging reads x through L1/L2 as
// the band does.
//
// Channel order. Within a 32-channel group, the halo's slot p of a position (its 2-byte element p: chunk p / 8; the
// k order puts channel j = p/4 + 8·(p%4) there) holds cell column b = p % fw of cell row m = p / fw, and the group's
// cell rows are (input channel, a) pairs ca = (32/fw)·g + m, c = ca / fh, a = ca % fh. So the fw columns of one cell
// row sit in adjacent slots, and the staging runs lanes over (position, b): 32 lanes read 32/fw whole cells along an
// input row, 32·4 contiguous bytes (the first ordering, lanes on positions reading x fw floats apart, cost NIN's
// forward twice the load sectors of the band and made it L2-bound: bench/RESULTS.md #15). Each lane stores its 2 bytes;
// the 32/fw positions of a warp store fall in distinct bank groups under the halo's swizzle (fw = 4: 8 positions).
// fw must divide 32 (else the form is refused).
import { STATIC_SHARED_BYTES, type HaloConv } from './conv-mma-halo.js';
import { BK, swizzled } from './conv-mma-tile.js';
import { TAPS_GROUP, tapsOrder, tapsPlan, type TapsPlan } from './conv-mma-taps-halo.js';
import { isStem, type StemConv } from './conv-mma-stem-geometry.js';
import { isOn, type Ablations } from '../../ablations.js';

/** The most padded reduction the transform takes, against the gather's whole 32-deep slices (NIN's stem: 576 / 384 = 1.5). */
export const S2D_MAX_WORK = 1.5;

/** A stem's space-to-depth form: its strides (the factors), the live channels of X', and the stride-1 conv it becomes. */
export interface S2dStem {
  readonly fh: number;
  readonly fw: number;
  readonly live: number; // C·fh·fw: X' channels that hold input (the rest, to a multiple of 32, are zero)
  readonly conv: { C: number; K: number; H: number; W: number; P: number; Q: number; R: number; S: number; sh: 1; sw: 1; ph: 0; pw: 0 };
}

/** Any strided conv's space-to-depth form (the transform is general: any kernel, stride and padding). */
export function s2dForm(c: StemConv & { K: number }): S2dStem {
  const fh = c.sh, fw = c.sw;
  const R = Math.ceil(c.R / fh), S = Math.ceil(c.S / fw);
  const live = c.C * fh * fw;
  const C = Math.ceil(live / TAPS_GROUP) * TAPS_GROUP;
  return { fh, fw, live, conv: { C, K: c.K, H: c.P + R - 1, W: c.Q + S - 1, P: c.P, Q: c.Q, R, S, sh: 1, sw: 1, ph: 0, pw: 0 } };
}

/** The padded reduction of the form against the gather's whole 32-deep slices (NIN's stem: 576 / 384 = 1.5). */
export const s2dWork = (s: S2dStem, c: { C: number; R: number; S: number }) => (s.conv.C * s.conv.R * s.conv.S) / (Math.ceil((c.C * c.R * c.S) / BK) * BK);

/** The stem's space-to-depth form, or undefined for a conv that is no stem, whose column stride does not divide 32, or whose padded work passes S2D_MAX_WORK. */
export function s2dStem(c: StemConv & { K: number }): S2dStem | undefined {
  if (!isStem(c) || TAPS_GROUP % c.sw !== 0) return undefined;
  const s = s2dForm(c);
  return s2dWork(s, c) <= S2D_MAX_WORK ? s : undefined;
}

/** The stem's space-to-depth form where its bf16 forward takes it: the switch on and the tap-major halo fitting for any statistics. */
export function s2dForward(c: StemConv & { K: number }, maxBatch: number, ablations: Ablations | undefined): S2dStem | undefined {
  if (!isOn(ablations, 'stemS2d')) return undefined;
  const s = s2dStem(c);
  return s && tapsOrder(s.conv, 'forward', maxBatch, ablations) ? s : undefined;
}

/** The tap-major plan of the stem's forward over X' (`stats`: rows padded to 32-row statistics tiles). */
export function s2dPlan(s: S2dStem, maxBatch: number, ablations: Ablations | undefined, stats: boolean): TapsPlan {
  const plan = tapsPlan(s.conv, 'forward', maxBatch, ablations, stats, 0);
  if (!plan || plan.geometry.bytes + plan.tile.bn * BK * 2 > STATIC_SHARED_BYTES) throw new Error('conv-mma-stem-s2d.ts: s2dForward admitted a stem whose tap-major halo does not fit');
  return plan;
}

/**
 * The k-steps (of a slice's two mma k-steps of 16) that the last 32-channel group's slices run, where its live
 * channels fill only the first 16 slots (the k-step reading chunks 0 and 1; the second reads slots 16..31): NIN's
 * 48 live channels leave group 1 16, so its 9 slices run 1 k-step and the reduction is 432 deep for 363 useful,
 * not 576. Undefined where every slice runs both: the switch off, or the last group's live slots past 16.
 * Skipping an MMA whose A and B are zero leaves every accumulator bitwise what it was (fp32 x + 0 = x, and an
 * accumulator that starts at +0 never becomes −0), so the switch's two builds agree bitwise.
 */
export function s2dLastSteps(s: S2dStem, ablations: Ablations | undefined): number | undefined {
  const lastLive = s.live - (s.conv.C / TAPS_GROUP - 1) * TAPS_GROUP;
  return isOn(ablations, 'stemS2dSteps') && lastLive <= 16 ? 1 : undefined;
}

/** The reduction the forward runs: the padded one, less the skipped k-steps (NIN: 576, or 432 with s2dLastSteps). */
export function s2dReduction(s: S2dStem, ablations: Ablations | undefined): number {
  const RS = s.conv.R * s.conv.S, padded = s.conv.C * RS, last = s2dLastSteps(s, ablations);
  return last === undefined ? padded : padded - (2 - last) * 16 * RS;
}

/** The first k0 of the last group's slices (a C++ condition on k0 is `k0 >= this`). */
const lastGroupK0 = (s: S2dStem) => (s.conv.C / TAPS_GROUP - 1) * TAPS_GROUP * s.conv.R * s.conv.S;

/** mmaSlice's `steps`: the k-steps of the slice starting at `k` (a C++ expression), or undefined where every slice runs both. */
export function s2dSteps(s: S2dStem, ablations: Ablations | undefined, k = 'k0'): string | undefined {
  const last = s2dLastSteps(s, ablations);
  return last === undefined ? undefined : `(${k} >= ${lastGroupK0(s)} ? ${last} : 2)`;
}

/** The halo slot of channel j of a 32-channel group (the inverse of j = p/4 + 8·(p%4), conv-mma-tile.ts's staged k order). */
const slotOf = (j: number) => 4 * (j % 8) + Math.floor(j / 8);

/** X' channel `v`'s input channel and its row and column offsets (a, b) in the fh × fw cell, or undefined for a padding channel. */
export function s2dChannel(s: S2dStem, v: number): { c: number; a: number; b: number } | undefined {
  const p = slotOf(v % TAPS_GROUP);
  const ca = (TAPS_GROUP / s.fw) * Math.floor(v / TAPS_GROUP) + Math.floor(p / s.fw);
  const c = Math.floor(ca / s.fh);
  return c < s.live / (s.fh * s.fw) ? { c, a: ca % s.fh, b: p % s.fw } : undefined;
}

/** W'[k][v][r'][s'] as an index into the stem's W[k][c][r][s] (R × S taps), or undefined where W' is zero. */
export function s2dWeightIndex(s: S2dStem, stem: { C: number; R: number; S: number }, k: number, v: number, tap: number): number | undefined {
  const ch = s2dChannel(s, v);
  if (!ch) return undefined;
  const r = s.fh * Math.floor(tap / s.conv.S) + ch.a, col = s.fw * (tap % s.conv.S) + ch.b;
  return r < stem.R && col < stem.S ? ((k * stem.C + ch.c) * stem.R + r) * stem.S + col : undefined;
}

/**
 * The weight copy's loads (conv-weight-bf16.ts): a C++ lambda `weight_at(v, tap)` of row `row` giving W'[row][v][tap],
 * W's element where s2dWeightIndex has one, else 0.
 */
export function s2dWeightLambda(s: S2dStem, stem: { C: number; R: number; S: number }, read = (index: string) => `nincc::ld(&w[${index}])`): string[] {
  const perGroup = TAPS_GROUP / s.fw;
  return [
    '// W\'[row][v][tap]: the cell of X\' channel v (conv-mma-stem-s2d.ts s2dChannel), 0 where W\' pads.',
    'const auto weight_at = [&](int v, int tap) {',
    'const int j = v % 32, p = 4 * (j % 8) + j / 8;',
    `const int ca = ${perGroup} * (v / 32) + p / ${s.fw}, c = ca / ${s.fh};`,
    `const int r = ${s.fh} * (tap / ${s.conv.S}) + ca % ${s.fh}, col = ${s.fw} * (tap % ${s.conv.S}) + p % ${s.fw};`,
    `return c < ${stem.C} && r < ${stem.R} && col < ${stem.S} ? ${read(`(((long long)row * ${stem.C} + c) * ${stem.R} + r) * ${stem.S} + col`)} : 0.0f;`,
    '};',
  ].map((line, i, all) => (i > 1 && i < all.length - 1 ? `  ${line}` : line));
}

/** Whether the staging can store its slots in bf16 pairs (stemS2dPairStores): cell rows in pairs (even fw, an even count a group) and whole warps. */
export function s2dPairs(s: S2dStem, threads: number, ablations: Ablations | undefined): boolean {
  const last = s2dLastSteps(s, ablations);
  return isOn(ablations, 'stemS2dPairStores') && s.fw % 2 === 0 && (TAPS_GROUP / s.fw) % 2 === 0 && (last === undefined || ((16 * last) / s.fw) % 2 === 0) && threads % 32 === 0;
}

/**
 * The halo staging over X' (stageTapsHalo's, each X' element read from x where the transform puts it): at the first
 * slice of each 32-channel group, consecutive lanes on consecutive (halo position, cell column b), so a warp reads
 * whole cells along an input row; each lane stores its value's 2 bytes in the slot of its channel (the file's note).
 * With s2dPairs, a lane reads two cell rows m, m + 1 (two such coalesced row reads a warp) and trades one value with
 * its neighbour b ^ 1 by shfl_xor, so that each lane stores one 4-byte pair of adjacent slots: the even lane (m, b..b+1),
 * the odd lane (m+1, b−1..b). A warp's 8 positions (fw = 4) then fill their whole 16-byte chunk m / 2, distinct bank
 * groups under the swizzle: one wavefront a 64 values, not a 32 — the same values in the same slots (bitwise).
 * `load` sets `float v` from x's index `at` (channel `ch`) with the pending transform applied; then a barrier.
 */
export function stageS2dHalo(s: S2dStem, stem: StemConv, p: TapsPlan, threads: number, load: (at: string, ch: string) => string[], ablations: Ablations | undefined): string[] {
  const view: HaloConv = p.view, g = p.geometry;
  const RS = view.R * view.S, perGroup = TAPS_GROUP / s.fw;
  // Where the last group's slices skip their second k-step (s2dLastSteps), its slots 16·steps… are never read: not staged.
  const last = s2dLastSteps(s, ablations), pairs = s2dPairs(s, threads, ablations), per = pairs ? 2 : 1;
  const items = last === undefined ? `${(g.window * TAPS_GROUP) / per}` : `(k0 >= ${lastGroupK0(s)} ? ${(g.window * 16 * last) / per} : ${(g.window * TAPS_GROUP) / per})`;
  const halo = `reinterpret_cast<nincc::bf16*>(taps_halo) + (${swizzled('zq', 'slot / 8')}) * 8 + slot % 8`;
  // X' element (cell row `m`, column b) of halo position zq into `float <into>` (0 outside x or past the live items).
  const element = (m: string, into: string, guard: string) => [
    `{`,
    `  const int ca = ca0 + ${m}, ch = ca / ${s.fh};`,
    `  const int h = i * ${s.fh} - ${stem.ph} + ca % ${s.fh}, u = j * ${s.fw} - ${stem.pw} + b;`,
    '  float v = 0.0f;',
    `  if (${guard}img < n && i < ${view.srcH} && j < ${view.srcW} && ch < ${stem.C} && h >= 0 && h < ${stem.H} && u >= 0 && u < ${stem.W}) {`,
    `    const long long at = ((long long)img * ${stem.C} + ch) * ${stem.H * stem.W} + h * ${stem.W} + u;`,
    ...load('at', 'ch').map((line) => `    ${line}`),
    '  }',
    `  ${into} = v;`,
    '}',
  ];
  const position = (zq: string) => [
    `const long long z = halo_start + ${zq};`,
    `const int img = int(z / ${g.pitchImage}), i = int(z % ${g.pitchImage}) / ${g.pitchW}, j = int(z % ${g.pitchImage}) % ${g.pitchW};`,
  ];
  const body = pairs
    ? [
        '// A whole warp each trip (the trade below takes every lane); lanes past the items load nothing and store nothing.',
        `for (int q = t; q < (${items} + 31) / 32 * 32; q += ${threads}) {`,
        `  const int b = q % ${s.fw}, zq = q / ${s.fw} % ${g.window}, m = q / ${s.fw * g.window} * 2;`,
        ...position('zq').map((line) => `  ${line}`),
        '  float v0, v1;',
        ...element('m', 'v0', `q < ${items} && `).map((line) => `  ${line}`),
        ...element('m + 1', 'v1', `q < ${items} && `).map((line) => `  ${line}`),
        '  // The even lane keeps (m, b) and takes (m, b+1); the odd lane keeps (m+1, b) and takes (m+1, b−1).',
        '  const float traded = nincc::shfl_xor(b % 2 == 0 ? v1 : v0, 1);',
        `  const int slot = b % 2 == 0 ? m * ${s.fw} + b : (m + 1) * ${s.fw} + b - 1;  // even: the pair's low slot`,
        `  if (q < ${items}) nincc::st(reinterpret_cast<uint32_t*>(${halo}), b % 2 == 0 ? nincc::to_bf16x2(traded, v0) : nincc::to_bf16x2(v1, traded));`,
        '}',
      ]
    : [
        `for (int q = t; q < ${items}; q += ${threads}) {`,
        `  const int b = q % ${s.fw}, zq = q / ${s.fw} % ${g.window}, m = q / ${s.fw * g.window};`,
        ...position('zq').map((line) => `  ${line}`),
        '  float x_v;',
        ...element('m', 'x_v', '').map((line) => `  ${line}`),
        `  const int slot = m * ${s.fw} + b;  // channel slot / 4 + 8·(slot % 4) of the group, in chunk slot / 8`,
        `  nincc::st(${halo}, nincc::to_bf16(x_v));`,
        '}',
      ];
  return [
    `if (k0 % ${TAPS_GROUP * RS} == 0) {`,
    `  // Stage the halo of X' (x space-to-depth by ${s.fh}×${s.fw}): group k0 / ${TAPS_GROUP * RS}'s ${perGroup} cell rows × ${s.fw} columns, rounded to bf16 once (padding stays 0).`,
    `  const int ca0 = k0 / ${TAPS_GROUP * RS} * ${perGroup};`,
    ...body.map((line) => `  ${line}`),
    '  __syncthreads();',
    '}',
  ];
}

/** report.txt's words. */
export const s2dWords = (s: S2dStem, stem: StemConv, p: TapsPlan, ablations: Ablations | undefined) =>
  `stem as a stride-1 ${s.conv.R}×${s.conv.S} conv over x space-to-depth by ${s.fh}×${s.fw} (${s.live} channels, padded to ${s.conv.C}; reduction ${s2dReduction(s, ablations)} for ${stem.C * stem.R * stem.S} useful` +
  `${s2dLastSteps(s, ablations) === undefined ? '' : `, the last group's k-steps of padding skipped (of ${s.conv.C * s.conv.R * s.conv.S})`}), ` +
  `staged from x once per ${TAPS_GROUP} channels, channels innermost, in a swizzled shared halo of ${p.geometry.window} positions (bf16); A's fragments by ldmatrix from it for every tap`;
