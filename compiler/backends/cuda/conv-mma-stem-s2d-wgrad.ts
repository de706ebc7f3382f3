// The few-channels strided stem's bf16 weight gradient (NIN's 11×11/4 on 3 channels) as the valid stride-1 weight
// gradient over x space-to-depth (conv-mma-stem-s2d.ts's transform, which its forward takes): dW'[k][v][r'][s'] =
// Σ_j X'[v][p + r'][q + s']·dY'[k][j], run by the k×k wgrad path (conv-mma-grad.ts convBackwardWeightMma: the stride-1
// input halo of conv-mma-wgrad-halo.ts over X', dY' staged as before), and each dW' row written to the stem's tap of
// dW[k][c][r][s] it stands for (r = fh·r' + a, s = fw·s' + b) in the split's partial, the padded taps (r ≥ R or
// s ≥ S) dropped. So wpart keeps the stem's layout and wgrad_reduce (conv.ts) its fixed split order. Every dW element
// sums the same products in the same slices as the stem's own halo build (the same bf16 x, the same positions j), so
// the two agree bitwise (test/emu-conv-mma-stem-s2d-wgrad.test.ts).
//
// X' is made in the halo staging from the raw input, as the forward's is (no global pass; its note says why). Unlike
// the forward's tap-major halo, the wgrad halo holds one plane per channel, so X' needs no 32-channel groups: its
// channels are the live C·fh·fw in the natural order v = (c·fh + a)·fw + b (NIN: 48, M = 48·9 = 432 against the
// stem's 363). A stem with a pending input transform (BN or ReLU of a previous layer), whose form finds no halo or
// reads more a slice than the stem's own plan (s2dWgradReads: NIN's, whose extra row tiles re-read dY') keeps the
// stem's own halo (`stemS2dWgrad: false` too). docs/design.md §4.1.
import { isStem, type StemConv } from './conv-mma-stem-geometry.js';
import type { Geometry, Halo, HaloSource } from './conv-mma-wgrad-halo.js';
import { BK, type MmaTile } from './conv-mma-tile.js';
import { wgradSliceReads } from './conv-mma-kxk-wgrad-tile.js';
import { pitchedHalo } from './conv-mma-stem-wgrad-layout.js';
import { isOn, type Ablations } from '../../ablations.js';

/** The stem's space-to-depth factors (its strides) and the valid stride-1 conv over X' its weight gradient runs. */
export interface S2dWgrad {
  readonly fh: number;
  readonly fw: number;
  readonly conv: Geometry & { sh: 1; sw: 1; ph: 0; pw: 0 };
}

/** The stem's weight gradient over X', or undefined for a conv that is no stem, has a pending input transform, or with the switch off. */
export function s2dWgradForm(c: StemConv & { inBn?: boolean; inRelu?: boolean }, ablations: Ablations | undefined): S2dWgrad | undefined {
  if (!isOn(ablations, 'stemS2dWgrad') || !isStem(c) || c.inBn || c.inRelu) return undefined;
  const fh = c.sh, fw = c.sw, R = Math.ceil(c.R / fh), S = Math.ceil(c.S / fw);
  return { fh, fw, conv: { C: c.C * fh * fw, H: c.P + R - 1, W: c.Q + S - 1, P: c.P, Q: c.Q, R, S, sh: 1, sw: 1, ph: 0, pw: 0 } };
}

/** X' channel v's input channel and cell offsets: v = (c·fh + a)·fw + b. */
const cellOf = (s: S2dWgrad, v: number) => ({ c: Math.floor(v / (s.fh * s.fw)), a: Math.floor(v / s.fw) % s.fh, b: v % s.fw });

/** dW' row m = (v, r', s')'s index c·R·S + r·S + s in the stem's dW[k] (the kernel's stem_tap, term for term), or undefined for a padded tap. */
export function s2dWgradTap(s: S2dWgrad, stem: { R: number; S: number }, m: number): number | undefined {
  const RS = s.conv.R * s.conv.S, { c, a, b } = cellOf(s, Math.floor(m / RS));
  const r = s.fh * Math.floor((m % RS) / s.conv.S) + a, col = s.fw * (m % s.conv.S) + b;
  return r < stem.R && col < stem.S ? (c * stem.R + r) * stem.S + col : undefined;
}

/** The kernel's `stem_tap(m)`: s2dWgradTap in C++, −1 for a padded tap. */
export function s2dWgradTapLambda(s: S2dWgrad, stem: { R: number; S: number }): string[] {
  const RS = s.conv.R * s.conv.S;
  return [
    `// dW' row m = (v, r', s') is the stem's tap (c, r, s) = (v / ${s.fh * s.fw}, ${s.fh}·r' + v / ${s.fw} % ${s.fh}, ${s.fw}·s' + v % ${s.fw}), or none (−1) past its ${stem.R}×${stem.S} kernel (conv-mma-stem-s2d-wgrad.ts).`,
    'const auto stem_tap = [](int m) {',
    `  const int v = m / ${RS}, r = ${s.fh} * (m % ${RS} / ${s.conv.S}) + v / ${s.fw} % ${s.fh}, s = ${s.fw} * (m % ${s.conv.S}) + v % ${s.fw};`,
    `  return r < ${stem.R} && s < ${stem.S} ? (v / ${s.fh * s.fw} * ${stem.R} + r) * ${stem.S} + s : -1;`,
    '};',
  ];
}

/**
 * The halo staging's read of X'[img][ch][h][u] from x (haloStaging's `source`): `inside` the extra condition that the
 * cell lies in the stem's input (else the stem's padding: 0), `at` x's index, clamped into x as the stride-1 read is.
 */
export function s2dWgradSource(s: S2dWgrad, stem: StemConv): HaloSource {
  return (img, ch, h, u) => ({
    lines: [
      `const int s2d_v = min(${ch}, ${s.conv.C - 1}), s2d_h = ${h} * ${s.fh} - ${stem.ph} + s2d_v / ${s.fw} % ${s.fh}, s2d_u = ${u} * ${s.fw} - ${stem.pw} + s2d_v % ${s.fw};  // X' → x (conv-mma-stem-s2d-wgrad.ts)`,
    ],
    inside: `s2d_h >= 0 && s2d_h < ${stem.H} && s2d_u >= 0 && s2d_u < ${stem.W}`,
    at: `((long long)min(${img}, n - 1) * ${stem.C} + s2d_v / ${s.fh * s.fw}) * ${stem.H * stem.W} + min(max(s2d_h, 0), ${stem.H - 1}) * ${stem.W} + min(max(s2d_u, 0), ${stem.W - 1})`,
  });
}

/** Row pitches past the padded row the form's halo search tries (NIN's 58 columns: none conflict-free below 75). */
const S2D_PITCHES = 32;

/**
 * The form's input halo for tile `tile` (`threads` staging): the stride-1 search (conv-mma-wgrad-halo-banks.ts) over
 * row pitches from the padded row on, as the stem's own halo searches (conv-mma-stem-wgrad-layout.ts), in what static
 * shared memory the operand tiles leave. A 3×3 stride-1 A instruction's 4 taps cross a kernel row in most groups, so
 * the padded row alone rarely has a conflict-free layout (NIN's 58: none).
 * The staging reads x along its rows: the fw planes of one (c, a) (X' channels v = (c·fh + a)·fw + b) are staged
 * together, lanes on b fastest (Halo.group), so a warp reads 32/fw whole cells, 32 consecutive floats, where lanes
 * along one plane read them fw floats apart (fw× the sectors: NIN's stem wgrad then read 101.7M sectors, not 48.2M,
 * bench/logs/i15G-profile-stem-h100-b128-bf16-ab.out). Its stores then put 32/fw consecutive elements in each of fw
 * planes: the planes' pitch ≡ an odd multiple of 64/fw elements (mod 64) puts those runs in disjoint banks. Where fw
 * does not divide 32, one plane at a time.
 */
export function s2dWgradHalo(g: Geometry, tile: MmaTile, threads: number, span: boolean, fw: number): Halo | undefined {
  const planes = fw > 1 && 32 % fw === 0 ? { group: fw, residues: Array.from({ length: fw / 2 }, (_, i) => (2 * i + 1) * (64 / fw)) } : undefined;
  return pitchedHalo(g, tile, threads, span, S2D_PITCHES, planes);
}

/**
 * A weight-gradient plan's global reads a slice (wgradSliceReads, conv-mma-kxk-wgrad-tile.ts: dY' per row tile, the
 * input the halo stages), Infinity without a halo (the gather reads every tap's input). The form adds row tiles (NIN:
 * M = 432 against 363, 7 tiles of 64 against 3 of 128, or 4 of 128) and each re-reads dY', which the stem rebuilds from
 * fp32 g and y: in the emulator dY' is most of the stem's load sectors, and the form with more row tiles was slower
 * (bench/logs/i15G-profile-stem-h100-b128-bf16-ab.out), so it is taken only where it reads less.
 */
export function s2dWgradReads(c: Geometry & { K: number; gBn?: boolean; gRelu?: boolean }, plan: { tile: MmaTile; halo: Halo | undefined }): number {
  const RS = c.R * c.S;
  return plan.halo ? wgradSliceReads(plan.tile, c.C * RS, c.K, RS, c.gBn || c.gRelu ? 2 : 1, (plan.halo.plane * BK) / plan.halo.positions) : Infinity;
}

/** report.txt's words. */
export const s2dWgradWords = (s: S2dWgrad, stem: { C: number; R: number; S: number }) =>
  `stem as a stride-1 ${s.conv.R}×${s.conv.S} wgrad over x space-to-depth by ${s.fh}×${s.fw} (${s.conv.C} channels, M = ${s.conv.C * s.conv.R * s.conv.S} for ${stem.C * stem.R * stem.S} taps; padded taps dropped in the store)`;
