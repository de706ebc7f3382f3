// The input halo of a k×k (R·S > 1) bf16 weight gradient (conv-mma-grad.ts): per 32-position slice, each
// block copies the padded input rows its slice's output positions read (zeros in the padding), for its
// slice of channels, into shared memory once (coalesced, the pending BN/ReLU applied, rounded to bf16),
// then builds its A operand — X_col[c·r·s][j] for every tap — from there instead of gathering it from
// global memory R·S times over. A's values are bitwise those of the gather (the same bf16 rounding of the
// same transformed input), so the summation order and the results do not change. The layout's padding is
// chosen free of bank conflicts (conv-mma-wgrad-halo-banks.ts); a layer with no such layout, or a halo over
// HALO_MAX_BYTES, keeps the gather. docs/design.md §4.1.
import { loadFloat, type Consts } from './parts.js';
import { BK, K_OFFSET_ALONG_K, type Staging } from './conv-mma-tile.js';
import { applyPendingFrom, fromRow } from './conv-mma-channels.js';

/** The most shared memory the halo may take; a layer whose halo is larger keeps the global gather. */
export const HALO_MAX_BYTES = 16 * 1024;

export type Geometry = Pick<Consts<'conv_wgrad_fused'>, 'C' | 'H' | 'W' | 'P' | 'Q' | 'R' | 'S' | 'sh' | 'sw' | 'ph' | 'pw'>;

/**
 * Where the halo puts things, in bf16 elements. The taps read a padded image: padded row p·sh + r, column
 * q·sw + s for output (p, q), tap (r, s), input row h being padded row h + ph (likewise columns) and the
 * rows and columns outside the input zeros (Torch pads the activation), so every tap reads the halo
 * unconditionally. Padded element (image, row, column) is at image·imagePitch + row·columns + column,
 * the images `imageGap` elements apart; a slice's elements, from its first output row's tap row 0 to its
 * last one's row R − 1, are one channel plane, and the planes of a block's channels follow each other at
 * a pitch ≥ the plane whose remainder mod 64 lies in [planeResidue, planeResidue + 32] and is even.
 * The two gaps are bank-conflict padding (haloBanks.ts chooses them); both are at most 64 − 1 and 32.
 */
export interface HaloLayout {
  readonly rows: number; // padded rows of an image: (P − 1)·sh + R
  readonly columns: number; // padded columns: (Q − 1)·sw + S
  readonly imageGap: number;
  readonly planeResidue: number;
  // A few-channels stem (conv-mma-stem-wgrad-layout.ts): `columns` is a row pitch ≥ paddedColumns (the columns past
  // the padded row are never read) and every plane's pitch is ≡ planeResidue mod 64 exactly, as its 4-tap groups that
  // cross a kernel row or a channel need one residue; else the pitch lies in [planeResidue, planeResidue + 32].
  readonly exactPlane?: boolean;
}

export const paddedRows = (g: Geometry) => (g.P - 1) * g.sh + g.R;
export const paddedColumns = (g: Geometry) => (g.Q - 1) * g.sw + g.S;
export const imagePitch = (l: HaloLayout) => l.rows * l.columns + l.imageGap;

/** The padded element of (image, row, column). */
export const paddedAt = (l: HaloLayout, image: number, row: number, column: number) => image * imagePitch(l) + row * l.columns + column;

/**
 * The slice whose positions run from flattened output row `o0` to `o1` (image·P + p): its first padded
 * element and its plane's length. The kernel text (haloStaging) is this, term for term.
 */
export function slicePlane(g: Geometry, l: HaloLayout, o0: number, o1: number): { first: number; length: number } {
  const first = paddedAt(l, Math.floor(o0 / g.P), (o0 % g.P) * g.sh, 0);
  const last = paddedAt(l, Math.floor(o1 / g.P), (o1 % g.P) * g.sh + g.R - 1, l.columns - 1);
  return { first, length: last - first + 1 };
}

/** The pitch of a plane of `length` elements (HaloLayout): at most 32 more. The kernel text is this, term for term. */
export function planePitch(l: HaloLayout, length: number): number {
  if (l.exactPlane) return length + ((l.planeResidue - length) & 63);
  const d = (length - l.planeResidue) & 63;
  return length + (d > 32 ? 64 - d : d & 1);
}

/**
 * A layer's halo: its layout, the output positions one staging covers (`positions`, a whole number of BK
 * slices: the slices after the first build A from the rows already staged), up to `channels` planes at a
 * pitch of at most `plane` elements, `elements` in all (the last plane runs on by up to a block's threads:
 * haloStaging's spare stores).
 */
export interface Halo {
  readonly layout: HaloLayout;
  readonly positions: number;
  readonly channels: number;
  readonly plane: number;
  readonly elements: number;
  readonly bytes: number;
  // Planes staged together (a stem over x space-to-depth, conv-mma-stem-s2d-wgrad.ts: the fw cell columns of an input
  // row): a block's planes start at a channel that is a multiple of it, whole groups of them, and the staging's lanes
  // run across a group's planes fastest. 1 where absent.
  readonly group?: number;
  // Row tiles of one channel each (a few-channels stem, switch stemWgradChannelTiles, conv-mma-stem-wgrad-layout.ts): block
  // x's GEMM rows m are channel x's taps m % BM (live below R·S), so its halo is that channel's one plane.
  readonly channelTiles?: boolean;
}

/** A block's first staged channel (the kernel's ch0): its first tap's, down to a multiple of the group. */
const firstPlane = (m0: number, RS: number, group: number) => Math.floor(Math.floor(m0 / RS) / group) * group;

/**
 * The most channels any block's BM taps span, the longest plane and the largest pitch of any staging of
 * `positions` consecutive positions (a staging may start at any position of an image, as the splits' bounds
 * fall anywhere, and may run into the next images when an image has fewer positions), and the elements the
 * halo needs for them with `threads` threads staging.
 */
export function haloSize(g: Geometry, l: HaloLayout, bm: number, threads: number, positions: number, group = 1, channelTiles = false): { channels: number; plane: number; elements: number } {
  const RS = g.R * g.S, CRS = g.C * RS, PQ = g.P * g.Q;
  let channels = channelTiles ? 1 : 0;
  for (let m0 = 0; m0 < CRS && !channelTiles; m0 += bm) channels = Math.max(channels, Math.floor((Math.min(m0 + bm, CRS) - 1) / RS) - firstPlane(m0, RS, group) + 1);
  channels = Math.ceil(channels / group) * group;
  let plane = 0, length = 0;
  for (let j0 = 0; j0 < PQ; j0++) {
    const slice = slicePlane(g, l, Math.floor(j0 / g.Q), Math.floor((j0 + positions - 1) / g.Q));
    length = Math.max(length, slice.length);
    plane = Math.max(plane, planePitch(l, slice.length));
  }
  return { channels, plane, elements: (channels - 1) * plane + length + threads };
}

/** report.txt's words for a halo. */
export const haloWords = (h: Halo) => `${h.channelTiles ? 'row tiles of one channel each; ' : ''}input halo ${h.channels} planes at a pitch ≤ ${h.plane}, ${h.positions} positions a staging, bf16 in shared (${h.bytes} B)`;

/** Where x holds the conv input's element (img, ch, h, u) (C++ names): lines that set up `at`, x's index, and `inside`, a further condition for it to be in x. */
export type HaloSource = (img: string, ch: string, h: string, u: string) => { lines: string[]; inside: string; at: string };

/**
 * Before the main loop: the halo, the block's first channel, and (for a pending BN) the block's channel
 * parameters in a shared table, read by every slice's halo staging.
 */
export function haloPrologue(c: Consts<'conv_wgrad_fused'>, h: Halo, threads: number): string[] {
  const RS = c.R * c.S;
  return [
    `NINCC_SHARED(nincc::bf16, halo, ${h.elements});  // up to ${h.channels} channel planes at a pitch ≤ ${h.plane} padded elements`,
    h.channelTiles
      ? 'const int ch0 = int(blockIdx.x);  // the block\'s channel: row tiles of one channel each (Halo.channelTiles)'
      : `const int ch0 = int(m0) / ${RS}${h.group ? ` / ${h.group} * ${h.group}` : ''};  // the block's first channel${h.group ? ` (of its group of ${h.group})` : ''}`,
    ...(h.positions > BK ? ['int first = 0, plane = 0;  // the staged plane\'s start and pitch, kept for the slices it covers'] : []),
    ...(c.inBn
      ? [
          `NINCC_SHARED(float, h_in_scale, ${h.channels});`,
          `NINCC_SHARED(float, h_in_shift, ${h.channels});`,
          `for (int cl = t; cl < ${h.channels}; cl += ${threads}) {`,
          `  nincc::st(&h_in_scale[cl], ch0 + cl < ${c.C} ? nincc::ld(&in_scale[ch0 + cl]) : 0.0f);`,
          `  nincc::st(&h_in_shift[cl], ch0 + cl < ${c.C} ? nincc::ld(&in_shift[ch0 + cl]) : 0.0f);`,
          '}',
          '__syncthreads();',
        ]
      : []),
  ];
}

/**
 * Per slice (j0..j0 + BK − 1; A masks the positions past `hi`), before the barrier that precedes the A staging: at
 * the split's first slice and every positions/BK-th after it (splits of whole slices: at the first and at every
 * multiple of `positions`, staging the grid's staging that holds j0), the padded elements (slicePlane) of
 * `positions` positions copied into the halo, consecutive threads on consecutive elements
 * (a channel's rows are contiguous in x, so a warp reads 32 consecutive floats, and writes 64 consecutive
 * bytes, or two runs at most 31 elements apart across a plane's end); and the thread's four positions
 * ko = t % 8 + 8·e (stageAlongK's order) as the offset of their tap (0, 0) in a plane.
 * Every thread runs the copy loop equally often and makes every access in it (the spare elements of the
 * last round run on past the last plane's end, the padding loads a clamped address and keeps 0): the
 * emulator pairs a lane's k-th execution of a line with its neighbours', so a lane that skipped one would
 * be priced against other elements, in this slice and the next.
 * `source` (a stem over x space-to-depth, conv-mma-stem-s2d-wgrad.ts): where x holds element (img, ch, h, u) of the
 * conv's input, and where that is inside x; by default x itself. `kOffset`: the A staging's k order (stageAlongK's, of
 * `quarter` and `e`); `quarter`: the thread's (t % 8 in stageAlongK; conv-mma-wgrad-natural-staging.ts's own).
 */
export function haloStaging(c: Consts<'conv_wgrad_fused'>, h: Halo, threads: number, source?: HaloSource, kOffset = K_OFFSET_ALONG_K, quarter = '(t % 8)', liveRows?: number): string[] {
  const PQ = c.P * c.Q, l = h.layout, Wp = l.columns, IMG = imagePitch(l);
  // A halo of one slice stages every slice (the first build's text); a longer one only every positions/BK-th
  // slice of the split, its start and pitch kept in the prologue's variables for the slices between, and
  // loads only the elements up to the split's last position's rows (`copied`): a staging cut short by `hi`
  // reads no input past the split's. Its loop and stores are still the whole staging's (the rest stores 0):
  // stores of consecutive elements that skip a plane's gap of at most 32 are conflict-free, where a loop over
  // `copied` would skip plane − copied, up to a whole plane (stagingStoreConflicts, conv-mma-wgrad-halo-banks.ts).
  const read = source?.('img', 'ch', 'h', 'u');
  const every = h.positions > BK;
  // Splits of whole slices (c.waveSplits: conv-mma-grad.ts splitRange) stage on the batch's grid of whole stagings, from
  // the staging that holds the split's first slice, so every staging is one the one-split grid has (NIN's 88 stem splits
  // started theirs mid-grid: 174 bank conflicts, bench/logs/i15d-*), loading from the split's first position's rows
  // (`skipped`, as `copied` ends at its last's); other splits start anywhere, so stage from `lo`.
  const onGrid = every && c.waveSplits === true;
  const start = onGrid ? 'js' : 'j0';
  const decl = every ? '' : 'const int ';
  const copied = every ? 'copied' : 'length';
  const copy = [
    ...(onGrid ? [`const long long js = j0 / ${h.positions} * ${h.positions};  // the grid's staging that holds j0`] : []),
    `const int o0 = int(${start} / ${c.Q}), o1 = int((${start} + ${h.positions - 1}) / ${c.Q});`,
    `${decl}first = o0 / ${c.P} * ${IMG} + o0 % ${c.P} * ${c.sh * Wp};`,
    `const int length = o1 / ${c.P} * ${IMG} + (o1 % ${c.P} * ${c.sh} + ${c.R - 1}) * ${Wp} + ${Wp - 1} - first + 1;`,
    ...(l.exactPlane
      ? [`${decl}plane = length + ((${l.planeResidue} - length) & 63);`]
      : [`const int plane_d = (length - ${l.planeResidue}) & 63;`, `${decl}plane = length + (plane_d > 32 ? 64 - plane_d : plane_d & 1);`]),
    ...(every
      ? [
          `const int o_last = int((min(${start} + ${h.positions}, hi) - 1) / ${c.Q});  // the split's last position's row, when it ends in this staging`,
          `const int copied = o_last / ${c.P} * ${IMG} + (o_last % ${c.P} * ${c.sh} + ${c.R - 1}) * ${Wp} + ${Wp - 1} - first + 1;`,
          ...(onGrid
            ? [
                `const int o_first = int(max(js, lo) / ${c.Q});  // the split's first position's row, when it starts in this staging`,
                `const int skipped = o_first / ${c.P} * ${IMG} + o_first % ${c.P} * ${c.sh * Wp} - first;  // the elements before it, which no tap of the split reads`,
              ]
            : []),
        ]
      : []),
    // `liveRows` (a tile's BM, switch stemWgradLivePlanes): only the planes of the channels the block's live taps reach (NIN's
    // stem: its last row tile's 107 taps are channel 2's alone, the plane after it was loaded, clamped, and never read).
    ...(liveRows !== undefined
      ? [
          `const int planes = min(${h.channels}, (min(int(m0) + ${liveRows}, ${c.C * c.R * c.S}) - 1) / ${c.R * c.S} - ch0 + 1);  // the planes the block's taps read`,
          `const int staged = (planes * length + ${threads - 1}) / ${threads} * ${threads};`,
        ]
      : [`const int staged = (${h.channels} * length + ${threads - 1}) / ${threads} * ${threads};`]),
    'for (int i = t; i < staged; i += ' + threads + ') {',
    ...(h.group
      ? [
          `  // Lanes across a group's ${h.group} planes fastest, then along the plane; the spares past the last plane after it.`,
          `  const bool in_planes = i < ${h.channels} * length;`,
          `  const int cl = in_planes ? i / (${h.group} * length) * ${h.group} + i % ${h.group} : ${h.channels - 1}, at = in_planes ? i / ${h.group} % length : i - ${h.channels - 1} * length;`,
        ]
      : [`  const int cl = min(i / length, ${h.channels - 1}), at = i - cl * length;`]),
    `  const int ch = ch0 + cl, f = first + ${onGrid ? 'max(min(at, copied - 1), skipped)' : every ? 'min(at, copied - 1)' : 'at'}, img = f / ${IMG}, pr = f % ${IMG} / ${Wp}, h = pr - ${c.ph}, u = f % ${IMG} % ${Wp} - ${c.pw};`,
    ...(read?.lines ?? []).map((line) => `  ${line}`),
    `  const bool inside = ch < ${c.C} && at < ${copied}${onGrid ? ' && at >= skipped' : ''} && pr < ${l.rows} && h >= 0 && h < ${c.H} && u >= 0 && u < ${c.W}${read ? ` && ${read.inside}` : ''};  // else padding, the gap after an image, or a spare: 0`,
    `  float v = ${loadFloat('x', read?.at ?? `((long long)min(img, n - 1) * ${c.C} + min(ch, ${c.C - 1})) * ${c.H * c.W} + min(max(h, 0), ${c.H - 1}) * ${c.W} + min(max(u, 0), ${c.W - 1})`, c.xBf16)};`,
    ...(c.inBn ? ['  const float r_in_scale = nincc::ld(&h_in_scale[cl]);', '  const float r_in_shift = nincc::ld(&h_in_shift[cl]);'] : []),
    ...applyPendingFrom(c, 'v', fromRow).map((line) => `  ${line}`),
    '  nincc::st(&halo[cl * plane + at], nincc::to_bf16(inside ? v : 0.0f));',
    '}',
  ];
  return [
    '// The staging\'s plane: slicePlane and planePitch (conv-mma-wgrad-halo.ts).',
    `// The pitch always of the whole ${h.positions} positions, also for a staging cut short by \`hi\`: the layout's bank-conflict check`,
    '// (conv-mma-wgrad-halo-banks.ts) saw whole stagings; a spare position\'s loads are clamped into the batch.',
    ...(every
      ? [`if (${onGrid ? `j0 == lo || j0 % ${h.positions} == 0` : `(j0 - lo) % ${h.positions} == 0`}) {  // once every ${h.positions / BK} slices${onGrid ? ' of the grid, and at the split\'s first' : ' of the split'}: the same for every thread`, ...copy.map((line) => `  ${line}`), '}']
      : copy),
    '// This thread\'s four positions of the slice: where their tap (0, 0) sits in a channel plane of the halo (inside',
    `// it also past \`hi\`: the plane covers the whole ${h.positions}), and which of them are the split's (bit e of a_live).`,
    'int a_base[4], a_live = 0;',
    'NINCC_UNROLL',
    'for (int e = 0; e < 4; ++e) {',
    `  const long long j = j0 + ${kOffset.replace(/quarter/g, quarter)};`,
    `  const int img = int(j / ${PQ}), pq = int(j % ${PQ});`,
    `  a_base[e] = img * ${IMG} + pq / ${c.Q} * ${c.sh * Wp} + pq % ${c.Q} * ${c.sw} - first;`,
    '  if (j < hi) a_live |= 1 << e;',
    '}',
  ];
}

/**
 * The A staging (stageAlongK: rows are taps crs = (c, r, s), lane t % 8 on positions t % 8 + 8·e) from the
 * halo: the tap reads its channel's plane at padded row r, column s from the position's (0, 0).
 */
export function haloOperand(c: Consts<'conv_wgrad_fused'>, h: Halo): Staging {
  const RS = c.R * c.S, CRS = c.C * RS;
  if (h.channelTiles)
    return {
      perRow: [
        `const bool live_row = row < ${RS};  // row tiles of one channel each: rows past its ${RS} taps keep 0`,
        `const int rs = min(row, ${RS - 1});  // a row past them reads the last tap's elements (a broadcast)`,
        `const int tap = rs / ${c.S} * ${h.layout.columns} + rs % ${c.S};  // the tap's offset from a position's (0, 0) in the block's one plane`,
      ],
      perElement: ['const float hv = nincc::bf16_to_float(nincc::ld(&halo[tap + a_base[e]]));', 'if (live_row && (a_live >> e & 1)) v = hv;'],
    };
  return {
    perRow: [
      `const bool live_row = int(m0) + row < ${CRS};`,
      `const int crs = min(int(m0) + row, ${CRS - 1});  // a row past C·R·S reads the last tap's elements (a broadcast) and keeps 0`,
      `const int tap = (crs / ${RS} - ch0) * plane + crs / ${c.S} % ${c.R} * ${h.layout.columns} + crs % ${c.S};  // the tap's offset from a position's (0, 0)`,
    ],
    // Every lane reads, also for a row or position it keeps 0: the emulator pairs a lane's k-th execution of a line with its
    // neighbours', and a row past C·R·S in some lanes of a warp would otherwise put them a slice behind the others.
    perElement: ['const float hv = nincc::bf16_to_float(nincc::ld(&halo[tap + a_base[e]]));', 'if (live_row && (a_live >> e & 1)) v = hv;'],
  };
}
