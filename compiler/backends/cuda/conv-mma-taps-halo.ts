// The tap-major halo of a stride-1 k×k bf16 forward (training or inference) or data gradient: the halo (conv-mma-halo.ts's
// window of the padded source plane) stored channels innermost, 32 channels a position in four swizzled
// 16-byte chunks, so that one ldmatrix row — 8 channels of one position — is a row of A for one tap, and the
// main loop loads A's fragments straight from the halo: no A tile, no per-tap pass through shared memory
// (the pass that made k11's forward and data gradient shared-bound, bench/RESULTS.md #15).
//
// k order. The reduction runs tap-major within each group of 32 channels: k = 32·(g·R·S + tap) + j, channel
// 32·g + j, tap = r·S + s; slice k0 (32 deep) is one tap of one group. Within a slice the shared position p
// of a row holds j = p/4 + 8·(p%4), conv-mma-tile.ts's staged order, so B's staging (conv-weight-bf16.ts's
// copy, written in this order where tapsOrder says so) is unchanged but for which weight each k is. A's
// summation order differs from the channel-major build, so results are not bitwise those (test: float64
// bounds, test/emu-conv-mma-taps.test.ts). Channels not a multiple of 32 keep the channel-major halo.
//
// Layout. Halo position z (relative to the block's first row's base) is 64 bytes: chunk c at 16-byte unit
// 4·z + (c XOR ((z >> 1) & 3)). ldmatrix reads 8 rows of one chunk; they are 8 consecutive GEMM rows, whose
// positions are conflict-free when distinct mod 8 (the units then fall in 8 bank groups). So the padded plane's
// row pitch is ≡ the row width (mod 8) and the images' pitch makes crossing an image a step of 1 mod 8: each
// row's position is then its GEMM row + a constant (mod 8), or a repeat (a padded statistics row reads its
// image's last position: the same address, shared). conv-mma-taps-banks.ts counts it.
import { BK, CANDIDATES, WIDE_CANDIDATES, chooseMmaTile, stageAcrossRows, swizzled, warpM16, warpRows, type MmaTile } from './conv-mma-tile.js';
import { STATIC_SHARED_BYTES, haloConv, type HaloConv } from './conv-mma-halo.js';
import { kxkWarpTile } from './conv-mma-warp64-tile.js';
import { isOn, type Ablations } from '../../ablations.js';

/** Channels per staged group: one 32-deep slice of one tap. */
export const TAPS_GROUP = BK;

/** Where the halo puts positions: padded source plane Z with row pitch `pitchW` and image pitch `pitchImage`. */
export interface TapsGeometry {
  readonly pitchW: number;
  readonly pitchImage: number;
  readonly window: number; // positions a block's rows and taps reach, the most over the grid's blocks
  readonly bytes: number; // window × 64
}

/** A layer's tap-major halo: its view, tile and geometry. */
export interface TapsPlan {
  readonly view: HaloConv;
  readonly tile: MmaTile;
  readonly rows: number; // GEMM rows per image
  readonly geometry: TapsGeometry;
}

/** The shape a plan needs (a conv_fwd_fused, conv_infer, conv_dgrad_fused or conv_weight_bf16's constants); gBn: a data gradient that rebuilds dY' itself. */
type Shape = { C: number; K: number; H: number; W: number; P: number; Q: number; R: number; S: number; sh: number; sw: number; ph: number; pw: number; gBn?: boolean };

/** Row pitch ≡ the row width (mod 8), image pitch making an image's last position and the next's first 1 apart (mod 8). */
export function tapsPitches(c: HaloConv): { pitchW: number; pitchImage: number } {
  const pitchW = c.rowsW + 8 * Math.ceil((c.S - 1) / 8);
  const gap = (((-(c.R - 1) * pitchW) % 8) + 8) % 8;
  return { pitchW, pitchImage: (c.rowsH + c.R - 1) * pitchW + gap };
}

/** The base Z index of GEMM row m (as the kernel's baseOf computes it). */
export function tapsBase(m: number, rows: number, c: HaloConv, p: { pitchW: number; pitchImage: number }): number {
  const pos = Math.min(m % rows, c.rowsH * c.rowsW - 1);
  return Math.floor(m / rows) * p.pitchImage + Math.floor(pos / c.rowsW) * p.pitchW + (pos % c.rowsW);
}

/** The Z offset of tap `tap` (r·S + s of the weights) from a row's base: (r', s') flipped for the data gradient. */
export const tapOffset = (c: HaloConv, pitchW: number, tap: number) =>
  (c.flip ? c.R - 1 - Math.floor(tap / c.S) : Math.floor(tap / c.S)) * pitchW + (c.flip ? c.S - 1 - (tap % c.S) : tap % c.S);

export function tapsGeometry(c: HaloConv, tile: MmaTile, rows: number, maxBatch: number): TapsGeometry {
  const pitches = tapsPitches(c);
  const reach = tapOffset({ ...c, flip: false }, pitches.pitchW, c.R * c.S - 1);
  let window = 0;
  for (let m0 = 0; m0 < maxBatch * rows; m0 += tile.bm) window = Math.max(window, tapsBase(m0 + tile.bm - 1, rows, c, pitches) - tapsBase(m0, rows, c, pitches) + reach + 1);
  // A multiple of 8 positions, so that the staging's 8-lane phases (q = position + window·chunk) never straddle
  // two chunks: 8 consecutive positions of one chunk, conflict-free (a straddling phase met 2-way conflicts).
  window = Math.ceil(window / 8) * 8;
  return { ...pitches, window, bytes: window * TAPS_GROUP * 2 };
}

/** The tile a k×k forward (columns K) or data gradient (columns C) takes: the rule of conv-mma.ts and conv-mma-grad.ts. */
const kxkTile = (c: Shape, rows: number, cols: number, ablations: Ablations | undefined) =>
  kxkWarpTile(chooseMmaTile(rows, cols, isOn(ablations, 'wideTiles') ? WIDE_CANDIDATES : CANDIDATES), c, ablations);

/**
 * The most other shared memory a data gradient declares: the rebuild's table of at most 7 fields (conv-mma-channels.ts),
 * fp32, where it rebuilds dY' itself; none after a grad_rebuild pass (NIN's k31: its 28 KiB table had kept it channel-major).
 */
const worstTable = (c: Shape, pass: 'forward' | 'dgrad') => (pass === 'dgrad' && c.gBn === true ? 7 * c.K * 4 : 0);

/**
 * The layer's tap-major halo, or undefined where it does not apply: a switch off (tapsHalo, haloTiles, or
 * bf16Weights — B must come from a copy in this k order), not a stride-1 k×k conv, channels not a multiple of
 * 32, or the halo, B's tile and `otherShared` past the static shared-memory limit.
 */
export function tapsPlan(c: Shape, pass: 'forward' | 'dgrad', maxBatch: number, ablations: Ablations | undefined, stats: boolean, otherShared: number): TapsPlan | undefined {
  if (!isOn(ablations, 'tapsHalo') || !isOn(ablations, 'haloTiles') || !isOn(ablations, 'bf16Weights')) return undefined;
  const view = haloConv(c, pass);
  if (!view || view.channels % TAPS_GROUP !== 0) return undefined;
  const positions = view.rowsH * view.rowsW;
  const rows = stats ? Math.ceil(positions / 32) * 32 : positions; // conv-mma.ts rowsPerImage
  const tile = kxkTile(c, maxBatch * rows, pass === 'forward' ? c.K : c.C, ablations);
  const geometry = tapsGeometry(view, tile, rows, maxBatch);
  const bShared = tile.bn * BK * 2;
  return geometry.bytes + bShared + otherShared <= STATIC_SHARED_BYTES ? { view, tile, rows, geometry } : undefined;
}

/**
 * Whether the layer's `pass` runs tap-major whatever its statistics and rebuild table: what its bf16 weight
 * copy (conv-weight-bf16.ts) and its kernel both ask, so that the copy's k order is the kernel's.
 */
export const tapsOrder = (c: Shape, pass: 'forward' | 'dgrad', maxBatch: number, ablations: Ablations | undefined): boolean =>
  [false, true].every((stats) => tapsPlan(c, pass, maxBatch, ablations, stats, worstTable(c, pass)) !== undefined);

/**
 * Why a k×k layer with a bf16 copy and a halo keeps the channel-major halo (report.txt's words), or
 * undefined where it runs tap-major or a switch turned the layout off.
 */
export function tapsFallback(c: Shape, pass: 'forward' | 'dgrad', maxBatch: number, ablations: Ablations | undefined): string | undefined {
  const view = haloConv(c, pass);
  if (!view || !isOn(ablations, 'tapsHalo') || tapsOrder(c, pass, maxBatch, ablations)) return undefined;
  return view.channels % TAPS_GROUP !== 0
    ? `channel-major: ${view.channels} channels, not a multiple of ${TAPS_GROUP}`
    : `channel-major: a tap-major halo with B${c.gBn === true ? ' and the rebuild table' : ''} would pass 48 KiB of shared memory`;
}

/** The base Z index of GEMM row `m` (a C++ expression). */
const baseOf = (m: string, p: TapsPlan) => {
  const { view: c, rows } = p;
  const pos = `min(int((${m}) % ${rows}), ${c.rowsH * c.rowsW - 1})`;
  return `(${m}) / ${rows} * ${p.geometry.pitchImage} + ${pos} / ${c.rowsW} * ${p.geometry.pitchW} + ${pos} % ${c.rowsW}`;
};

/** Before the main loop: the halo, the block's window start and each lane's ldmatrix row of A's m16 tiles. */
export function tapsPrologue(p: TapsPlan): string[] {
  const MT = warpM16(p.tile);
  return [
    `NINCC_SHARED(int4, taps_halo, ${p.geometry.window * 4});  // ${TAPS_GROUP} channels (4 swizzled 16-byte chunks) × the ${p.geometry.window} padded positions this block's taps reach`,
    `const long long halo_start = ${baseOf('m0', p)};`,
    `int taps_row[${MT}];  // this lane's ldmatrix row (tap 0) for m16 tiles 0..${MT - 1}: lane l gives row l % 8 + 8·(l / 8 % 2)`,
    'NINCC_UNROLL',
    `for (int mt = 0; mt < ${MT}; ++mt) {`,
    `  const long long m = m0 + wm * ${warpRows(p.tile)} + mt * 16 + lane % 8 + 8 * (lane / 8 % 2);`,
    `  taps_row[mt] = int(${baseOf('m', p)} - halo_start);`,
    '}',
  ];
}

/**
 * At the first slice of each group: stage the group's 32 channels over the window, a thread per position and
 * 16-byte chunk (consecutive lanes on consecutive positions: coalesced along the source's rows, conflict-free
 * 16-byte stores), `load` setting `float v` from `at` (channel `ch`, both C++ expressions) with the pending
 * transform or rebuild applied, `perChannel` (of the channel) run per element before it (every lane, so a shared table read is a broadcast); then a
 * barrier. Channel j of the group sits where the slice's k order puts it. The previous group's last reads
 * ended at the main loop's closing barrier.
 */
export function stageTapsHalo(p: TapsPlan, threads: number, load: (at: string, ch: string) => string[], perChannel: (ch: string) => string[]): string[] {
  const { view: c, geometry: g } = p;
  const RS = c.R * c.S, srcHW = c.srcH * c.srcW;
  return [
    `if (k0 % ${TAPS_GROUP * RS} == 0) {`,
    `  // Stage the halo: channels k0 / ${RS} … + ${TAPS_GROUP - 1}, channels innermost, rounded to bf16 once (padding stays 0).`,
    `  const int c0 = k0 / ${RS};`,
    ...stageAcrossRows('taps_halo', g.window, {
      perRow: [
        'const long long z = halo_start + row;',
        `const int img = int(z / ${g.pitchImage}), i = int(z % ${g.pitchImage}) / ${g.pitchW}, j = int(z % ${g.pitchImage}) % ${g.pitchW};`,
        `const int sp = i - ${c.oh}, su = j - ${c.ow};`,
        `const bool live = img < n && sp >= 0 && sp < ${c.srcH} && su >= 0 && su < ${c.srcW};`,
        '// A padding position loads its nearest live one (its row\'s end, or the plane\'s first or last row) and keeps 0: every lane',
        '// loads, so each load is one warp instruction per pass as on a GPU (the emulator pairs a warp\'s k-th executions of a site).',
        `const long long at0 = ((long long)min(img, n - 1) * ${c.channels} + c0) * ${srcHW} + min(max(sp, 0), ${c.srcH - 1}) * ${c.srcW} + min(max(su, 0), ${c.srcW - 1});`,
      ],
      perElement: [
        ...perChannel('c0 + ko'),
        `const long long at = at0 + (long long)ko * ${srcHW};`,
        ...load('at', '(c0 + ko)'),
        'if (!live) v = 0.0f;',
      ],
    }, threads).map((s) => `  ${s}`),
    '  __syncthreads();',
    '}',
  ];
}

/** Per slice: the Z offset of its tap (a C++ statement declaring `tap_off`). */
export function tapOffsetLine(p: TapsPlan): string {
  const { view: c, geometry: g } = p;
  const tap = `(k0 / ${BK} % ${c.R * c.S})`;
  const r = c.flip ? `(${c.R - 1} - ${tap} / ${c.S})` : `(${tap} / ${c.S})`;
  const s = c.flip ? `(${c.S - 1} - ${tap} % ${c.S})` : `(${tap} % ${c.S})`;
  return `const int tap_off = ${r} * ${g.pitchW} + ${s};  // this slice's tap (r, s)${c.flip ? ', flipped,' : ''} as a Z offset`;
}

/** mmaSlice's A address: lane's row of m16 tile `mt` at this slice's tap, chunk `chunk`. */
export const tapsAAddress = `&taps_halo[${swizzled('taps_row[mt] + tap_off', 'chunk')}]`;

/** report.txt's words. */
export const tapsWords = (p: TapsPlan, what: string) =>
  `${what} staged once per ${TAPS_GROUP} channels, channels innermost, in a swizzled shared halo of ${p.geometry.window} padded positions (bf16); A's fragments by ldmatrix from it for every tap (k tap-major per group)`;
