// The bf16 tensor-core convolution forward (precision bf16): an implicit GEMM with the batch folded into
// M, D[m][k] = Σ_crs A[m][crs]·B[crs][k], m = (image, output position), k = output channel, crs = (input
// channel, r, s). Each block (4 warps, or 8 in a k×k layer's wide tiles) stages BM×32 of A (the input
// gathered — or, stride-1 k×k, built from a shared halo (conv-mma-halo.ts), or, a few-channels strided stem, from a
// shared band of input rows (conv-mma-stem-band.ts) or, as a stride-1 conv over x space-to-depth, from the tap-major
// halo (conv-mma-stem-s2d.ts), or a residual block's output summed from its two branch ends as it is gathered — its
// pending BN scale/shift + ReLU applied, rounded to bf16) and BN×32 of B (the fp32 weights rounded to bf16, or a k×k conv's bf16 copy: conv-weight-bf16.ts) in
// XOR-swizzled shared memory, loads fragments with ldmatrix and multiplies with mma.m16n8k16 into fp32
// accumulators. The epilogue adds the bias, applies the inference ReLU, stores fp32 NCHW (storage is
// unchanged in this slice) and, in training, writes the per-tile BN statistics partials from the
// accumulators in a fixed order. Memory is reached only through nincc::ld/st/ldmatrix (counted by
// `nincc profile`). docs/design.md §4.1 says why each choice and what comes next.
import { applyPending, inputParams, loadFloat, outputPlace, params, fusedText, storeFloat, type Consts, type CudaKernel, type OutputPlace } from './parts.js';
import { BK, CANDIDATES, WIDE_CANDIDATES, chooseMmaTile, chooseTrafficTile, mmaPrologue, mmaSlice, stageAcrossRows, stageAlongK, tileThreads, tileWords, warpM16 } from './conv-mma-tile.js';
import { stageWeightsBf16 } from './conv-weight-bf16.js';
import { kxkWarpTile } from './conv-mma-warp64-tile.js';
import { haloConv, haloGeometry, haloPrologue, haloStaging, stageHalo } from './conv-mma-halo.js';
import { stageTapsRuns, tapsRuns, tapsRunsPrologue, tapsRunsWords } from './conv-mma-taps-runs.js';
import { stageTapsHalo, tapOffsetLine, tapsAAddress, tapsFallback, tapsOrder, tapsPlan, tapsPrologue, tapsWords } from './conv-mma-taps-halo.js';
import { stageStemBand, stemBand, stemStaging, stemWords } from './conv-mma-stem-band.js';
import { s2dForward, s2dPlan, s2dSteps, s2dWords, stageS2dHalo } from './conv-mma-stem-s2d.js';
import type { KernelStep } from '../../lower/program-ir.js';
import { stagedFits, stagedKeep, stagedPiece, stagedStore, stagedWrite, type StagedTarget } from './conv-mma-store-staged.js';
import { spansBuffer, spansOf, spansStore, spanWrite, type Spans, type SpanTarget } from './conv-mma-store-spans.js';
import { directFp32StoresWaste, stagedFp32Fits, stagedFp32Piece, stagedFp32Store, stagedFp32Write } from './conv-mma-store-fp32-staged.js';
import { windowsBuffer, windowsOf, windowsStore, windowWrite, type WindowTarget } from './conv-mma-store-fp32-windows.js';
import { isOn, type Ablations } from '../../ablations.js';
import { centreTapCoversInput, inputEnds, sumInput, sumInputText, summedInput } from './conv.js';
import { asyncRing } from './conv-mma-async-1x1.js';
import { chooseBRing } from './conv-mma-b-ring.js';
import { bStagesOf, ringLoop, ringStaging, ringTop, type SliceRing } from './conv-mma-slice-ring.js';

/** GEMM rows of one image: its output positions, padded to whole 32-position statistics tiles when the epilogue writes them. */
export const rowsPerImage = (PQ: number, stats: boolean) => (stats ? Math.ceil(PQ / 32) * 32 : PQ);

/**
 * Whether the forward stages A along k rather than across rows: the estimate of 32-byte sectors per warp
 * load that is smaller. Across rows, 32 lanes read one tap at 32 consecutive output positions, sw floats
 * apart: about 4·sw sectors plus one for alignment. Along k, each 8 lanes read 8 consecutive taps of one
 * position: runs along a kernel row of S contiguous floats, about 1 + 7/S runs of 8 floats in all, each
 * run a sector more than its floats fill (one). Only a wide, strided kernel gains: NIN's 11×11/4 stem
 * (17 against about 10.5); a 3×3 or 7×7 at stride 2 (9 against 17 or 12) stays across rows.
 */
export function gatherAlongK(c: { R: number; S: number; sw: number }): boolean {
  if (c.R * c.S === 1) return false;
  const acrossRows = 4 * c.sw + 1;
  const alongK = 4 * (1 + (1 + 7 / c.S));
  return alongK < acrossRows;
}

export function convForwardMma(k: KernelStep, c: Consts<'conv_fwd_fused' | 'conv_infer'>, maxBatch: number, ablations?: Ablations): CudaKernel {
  const wideTiles = isOn(ablations, 'wideTiles');
  const stats = Boolean(c.stats);
  // A few-channels strided stem from a bf16 weight copy runs as a stride-1 conv over x space-to-depth (conv-mma-stem-s2d.ts): its reduction is X''s.
  const s2d = 'bf16w' in c && c.bf16w === true ? s2dForward(c, maxBatch, ablations) : undefined;
  const PQ = c.P * c.Q, CRS = s2d ? s2d.conv.C * s2d.conv.R * s2d.conv.S : c.C * c.R * c.S, RS = c.R * c.S, CHW = c.C * c.H * c.W;
  const statRows = rowsPerImage(PQ, stats);
  // A 1×1 layer streams x once per column tile: the tile with the least of that traffic (one 128×96 tile for
  // 96 channels, so x is read and its pending BN/ReLU applied once); a k×k kernel takes the least padded work.
  // (wideTiles false: every conv keeps the 4-warp tile of least padded work, the kernels before the wide tiles, for A/B checks.)
  // A stride-1 k×k kernel then takes the tile's 64-row warp twin (conv-mma-warp64-tile.ts).
  const tile = !wideTiles ? chooseMmaTile(maxBatch * statRows, c.K, CANDIDATES) : RS === 1 ? chooseTrafficTile(maxBatch * statRows, c.K, 1, 1, WIDE_CANDIDATES) : kxkWarpTile(chooseMmaTile(maxBatch * statRows, c.K, WIDE_CANDIDATES), s2d?.conv ?? c, ablations);
  // A forward (training, or inference: lower/infer.ts) from a bf16 weight copy in the tap-major k order loads A's fragments from a channels-innermost halo (conv-mma-taps-halo.ts).
  const taps = s2d ? s2dPlan(s2d, maxBatch, ablations, stats) : 'bf16w' in c && c.bf16w === true && tapsOrder(c, 'forward', maxBatch, ablations) ? tapsPlan(c, 'forward', maxBatch, ablations, stats, 0) : undefined;
  // Its slices' live k-steps, where the last 32-channel group holds padding only past its first 16 k (conv-mma-stem-s2d.ts s2dSteps).
  const steps = s2d && s2dSteps(s2d, ablations);
  if (taps && tileWords(taps.tile) !== tileWords(tile)) throw new Error(`conv-mma.ts: the tap-major halo's tile differs from the forward's (${tileWords(taps.tile)} against ${tileWords(tile)})`);
  // A few-channels strided stem stages its input band once per block and builds A from it (conv-mma-stem-band.ts);
  // its rows per image may be padded to whole blocks.
  const band = isOn(ablations, 'stemBand') && !taps ? stemBand(c, tile, statRows, maxBatch) : undefined;
  const rows = band?.rows ?? statRows;
  const { bm: BM, bn: BN, nt: NT } = tile;
  const threads = tileThreads(tile);
  const WN = NT * 8; // the warp's columns
  const alongK = gatherAlongK(c);
  // A k×k forward may stage its weights from a bf16 copy (conv-weight-bf16.ts): training's of the parameters, inference's of the folded ones.
  const bf16w = 'bf16w' in c && c.bf16w === true;
  // A training forward may read a max pool's output stored in bf16 (lower/train-fused.ts bf16Pooled).
  const xBf16 = 'xBf16' in c && c.xBf16 === true;
  const yBf16 = storesBf16(c);
  // A stride-1 k×k kernel stages x once per group of channels into a shared halo and builds A for every tap from there (conv-mma-halo.ts).
  const view = isOn(ablations, 'haloTiles') && !taps ? haloConv(c, 'forward') : undefined;
  const halo = view && haloGeometry(view, tile, rows, maxBatch, 0);
  // A residual block's output computed as it loads (lower/train-fused.ts addInNextPointwiseConv) is gathered: the cp.async
  // ring copies one raw input, not two ends, and a halo or band would need the sum staged (docs/design.md §4).
  const summed = summedInput(c);
  if (summed && (taps || view || band || !centreTapCoversInput(c))) throw new Error(`internal error: ${k.kernel} adds its input as it loads, which the bf16 forward does in its per-slice gather only (a stride-1, same-size conv without a halo)`);
  // Each element stored once to x_out: by the blocks of the first output-channel tile, at the tap (ph, pw).
  const firstTap = `n0 == 0${RS > 1 ? ` && crs % ${RS} == ${c.ph * c.S + c.pw}` : ''}`;
  /** Stage A by gathering x per tap from global memory (strided convs, and where a halo would not fit). */
  const gatherA = () => [
    ...(alongK
      ? ['  // Stage A: rows are output positions, eight lanes along each row\'s taps (contiguous along a kernel row), the pending transform applied.']
      : ['  // Stage A: rows are output positions (consecutive lanes on consecutive positions of a plane), the pending transform applied.']),
    ...(alongK ? stageAlongK : stageAcrossRows)('as', BM, {
      perRow: [
        'const long long m = m0 + row;',
        `const int img = int(m / ${rows}), pq = int(m % ${rows});`,
        `const bool live = img < n && pq < ${PQ};`,
        `const int h0 = pq / ${c.Q} * ${c.sh} - ${c.ph}, u0 = pq % ${c.Q} * ${c.sw} - ${c.pw};`,
        ...(summed ? [] : [`const ${xBf16 ? 'nincc::bf16' : 'float'}* xi = x + (long long)img * ${CHW};`]),
      ],
      perElement: [
        'const int crs = k0 + ko;',
        `if (live && crs < ${CRS}) {`,
        `  const int ch = crs / ${RS}, h = h0 + crs / ${c.S} % ${c.R}, u = u0 + crs % ${c.S};`,
        `  if (h >= 0 && h < ${c.H} && u >= 0 && u < ${c.W}) {  // padding stays 0: Torch pads the activation`,
        ...(summed ? sumInput(c, firstTap) : [`v = ${loadFloat('xi', `(ch * ${c.H} + h) * ${c.W} + u`, xBf16)};`]).map((s) => `    ${s}`),
        ...applyPending(c, 'v', 'ch').map((s) => `    ${s}`),
        '  }',
        '}',
      ],
    }, threads).map((s) => `  ${s}`),
  ];
  // An inference conv closing a block (lower/infer.ts): a residual shortcut `r` added before the ReLU, or its
  // output written at channels yOffset… of the yTotal-channel concat buffer.
  const out = outputPlace(c);
  const names = [...inputEnds(c, 'x').map((name) => ({ name, bf16: xBf16 })), ...inputParams(c), 'w', ...(bf16w ? ['wb'] : []), ...(c.bias ? ['b'] : []), ...(out.residual ? ['r'] : []), { name: 'y', out: true, bf16: yBf16 }, ...(summed ? [{ name: 'x_out', out: true }] : []), ...(stats ? [{ name: 'st_mean', out: true }, { name: 'st_m2', out: true }] : [])];
  const statTiles = Math.ceil(PQ / 32);
  // The tap-major halo staged from sector-aligned runs of x's planes through B's tile (conv-mma-taps-runs.ts).
  const runs = taps && !s2d ? tapsRuns(taps, BN * BK * 2, xBf16 ? 2 : 4, ablations) : undefined;
  // y is staged through the dead operand tiles (the taps halo, where there is no A tile) and stored in contiguous runs:
  // a bf16 y (conv-mma-store-staged.ts), an fp32 one (conv-mma-store-fp32-staged.ts: inference's) where its direct stores waste sectors.
  const [stageBuffer, stageBytes] = taps ? ['taps_halo', taps.geometry.bytes] : ['as', BM * 64];
  // At most one operand goes through a cp.async ring, S − 1 slices ahead of the one multiplied (conv-mma-slice-ring.ts):
  // a 1×1 forward's x (conv-mma-async-1x1.ts); a tap-major forward's B from the bf16 copy (conv-mma-b-ring.ts), not over
  // the runs (they stage through B's tile); a space-to-depth stem's (switch stemS2dBRing) without its skipped k-steps' chunks.
  const bRing = isOn(ablations, 'kxkBRing') && taps && !runs && (!s2d || isOn(ablations, 'stemS2dBRing'));
  const ring: SliceRing | undefined =
    (isOn(ablations, 'asyncPipeline') && !taps && !view && !band && !summed ? asyncRing(c, tile, rows, xBf16, threads) : undefined) ??
    (bRing ? chooseBRing(BN, taps.geometry.bytes, c.K, CRS, threads, undefined, s2d && steps ? (k) => s2dSteps(s2d, ablations, k)! : undefined) : undefined);
  const aFromRing = ringStaging(ring, 'A');
  // A bf16 y on blocks of whole images goes out in whole spans of 8 planes (conv-mma-store-spans.ts), not a plane's 32 rows a store.
  const spanTarget: SpanTarget = { dst: 'y', plane: yPlane(out), columns: c.K, positions: PQ, rows, blockRows: BM, warpsN: BN / WN, warpCols: WN, threads };
  const spansAligned = (out.total * PQ) % 8 === 0 && (out.offset * PQ) % 8 === 0;
  const spans = yBf16 && isOn(ablations, 'stagedStores') && isOn(ablations, 'spanStores') ? spansOf(spanTarget, stageBytes, spansAligned, isOn(ablations, 'swizzledSpans')) : undefined;
  const staged: Staged | undefined = yBf16
    ? isOn(ablations, 'stagedStores') && (spans || stagedFits(stageBytes, threads / 32)) ? { buffer: stageBuffer, fp32: false, spans } : undefined
    : isOn(ablations, 'stagedFp32Stores') && directFp32StoresWaste(PQ) && stagedFp32Fits(stageBytes, threads / 32)
    ? { buffer: stageBuffer, fp32: true, windows: isOn(ablations, 'fp32StoreWindows') ? windowsOf({ ...spanTarget, dst: 'y' }, stageBytes) : undefined }
    : undefined;
  const body = [
    ...mmaPrologue(tile, !taps, bStagesOf(ring)),
    `const long long m0 = (long long)blockIdx.x * ${BM};`,
    `const int n0 = int(blockIdx.y) * ${BN};`,
    `if (m0 >= (long long)n * ${rows}) return;  // the grid is sized for the largest batch: whole blocks past this one's leave`,
    ...(ring?.prologue ?? []),
    ...(view && halo ? haloPrologue(view, halo, rows) : []),
    ...(taps ? tapsPrologue(taps) : []),
    ...(taps && runs ? tapsRunsPrologue(taps, threads) : []),
    ...(band ? stageStemBand(c, band, threads, (at) => [`v = ${loadFloat('x', at, xBf16)};`, ...applyPending(c, 'v', 'ch')]) : []),
    ringLoop(ring, CRS),
    ...ringTop(ring).map((s) => `  ${s}`),
    ...(taps
      ? [
          ...(s2d
            ? stageS2dHalo(s2d, c, taps, threads, (at, ch) => [`v = ${loadFloat('x', at, xBf16)};`, ...applyPending(c, 'v', ch)], ablations)
            : runs
            ? stageTapsRuns(taps, runs, threads, 'x', (ch) => applyPending(c, 'v', ch), () => [])
            : stageTapsHalo(taps, threads, (at, ch) => [`v = ${loadFloat('x', at, xBf16)};`, ...applyPending(c, 'v', ch)], () => [])),
          tapOffsetLine(taps),
        ].map((s) => `  ${s}`)
      : view && halo
      ? [
          ...stageHalo(view, halo, tile, (at) => [`v = ${loadFloat('x', at, xBf16)};`, ...applyPending(c, 'v', 'ch')], []),
          '// Stage A from the halo: rows are output positions (consecutive lanes on consecutive positions), each position a tap (c, r, s).',
          ...stageAcrossRows('as', BM, haloStaging(view, halo, rows), threads),
        ].map((s) => `  ${s}`)
      : aFromRing
      ? aFromRing.map((s) => `  ${s}`)
      : band
      ? ['  // Stage A from the band: rows are output positions, eight lanes along each row\'s taps (c, r, s).', ...stageAlongK('as', BM, stemStaging(c, band), threads).map((s) => `  ${s}`)]
      : gatherA()),
    ...(ringStaging(ring, 'B') ??
      (bf16w
      ? stageWeightsBf16(c.K, BN, threads, steps)
      : [
          '// Stage B: W[k][crs] rows, eight lanes along each row\'s contiguous crs.',
          ...stageAlongK('bs', BN, {
            perRow: ['const int kout = n0 + row;'],
            perElement: [
              'const int crs = k0 + ko;',
              `if (kout < ${c.K} && crs < ${CRS}) v = nincc::ld(&w[(long long)kout * ${CRS} + crs]);`,
            ],
          }, threads),
        ])).map((s) => `  ${s}`),
    '  __syncthreads();',
    ...mmaSlice(tile, taps ? tapsAAddress : undefined, steps, ring?.slot).map((s) => `  ${s}`),
    '  __syncthreads();',
    '}',
    ...(ring?.drain ?? []),
    ...epilogue(c, { rows, PQ, NT, WN, MT: warpM16(tile), statTiles }, out, staged),
  ];
  const fused = fusedText([
    'bf16 tensor-core implicit-GEMM conv (mma.m16n8k16, fp32 accumulate)',
    sumInputText(c),
    c.inBn && 'prologue: previous BN scale/shift',
    c.inRelu && 'prologue: ReLU',
    halo && `x staged once per ${halo.group} channels in a shared halo of ${halo.window} padded positions (bf16), A built from it for every tap`,
    taps && (s2d ? s2dWords(s2d, c, taps, ablations) : tapsWords(taps, 'x')),
    runs && tapsRunsWords(runs),
    band && stemWords(c, band, PQ, stats),
    ring?.words,
    halo && bf16w && tapsFallback(c, 'forward', maxBatch, ablations),
    c.bias && 'bias',
    out.residual && 'epilogue: residual add',
    out.total !== c.K && 'epilogue: concat slice in place',
    c.relu && 'epilogue: ReLU',
    stats && 'epilogue: per-tile BN statistics (mean, M2) from the accumulators',
    staged && (staged.spans ? 'y staged in shared memory, stored in whole spans of 8 planes' : staged.windows ? 'y staged in shared memory (fp32), the block\'s n8 tile stored in sector-aligned windows' : `y staged in shared memory${staged.fp32 ? ' (fp32)' : ''}, stored in contiguous runs`),
    !yBf16 && !directFp32StoresWaste(PQ) && `y stored from the accumulators, not staged: a plane of ${PQ} positions, a multiple of 8, starts every 8-position run on a sector`,
  ]);
  const tileText = `${tileWords(tile)}, M = N·${rows}${rows !== PQ ? ` (each image's ${PQ} positions padded to whole ${rows !== statRows ? `${BM}-row blocks` : '32-row statistics tiles'})` : ''}, N = ${c.K}, K = ${CRS}`;
  return {
    params: params(k, names),
    body,
    launch: { grid: [Math.ceil((maxBatch * rows) / BM), Math.ceil(c.K / BN), 1], block: [threads, 1, 1], shared: 0 },
    fused,
    tile: tileText,
  };
}

/**
 * Accumulator element i of tile (mt, nt) of lane l is D[row][col], row = WM·wm + 16·mt + l/4 + 8·(i/2),
 * col = WN·wn + 8·nt + 2·(l%4) + i%2 (the m16n8k16 C layout), WM = 16·MT the warp's rows. Each 32 rows of
 * a warp (`sub`: m16 tiles 2·sub and 2·sub + 1) are one statistics tile of one image (rows are padded per
 * image to multiples of 32), so a column's 32 values sit in the 8 lanes of equal l%4, 4 each: summed in
 * registers, then across those lanes with shfl_xor 4, 8, 16 — a fixed order, no atomics, the same for
 * 32- and 64-row warps.
 */
/** A training forward may store y in bf16, its statistics taken from the rounded values (lower/train-fused.ts bf16ConvOut). */
const storesBf16 = (c: Consts<'conv_fwd_fused' | 'conv_infer'>) => 'yBf16' in c && c.yBf16 === true;

/** Where and in which format the epilogue stages y (undefined: stored from the accumulators directly). */
interface Staged {
  readonly buffer: string;
  readonly fp32: boolean;
  /** Stored in whole spans of 8 planes once the block wrote each n8 tile, not per warp part (conv-mma-store-spans.ts). */
  readonly spans?: Spans;
  /** fp32: stored in sector-aligned windows once the block wrote each n8 tile, not per warp part (conv-mma-store-fp32-windows.ts). */
  readonly windows?: WindowTarget;
}

/** y's plane of image `img`, channel `col`: in the concat buffer, where an inference conv writes a slice of it. */
const yPlane = (o: OutputPlace) => (img: string, col: string) => `(long long)${img} * ${o.total} + ${o.offset ? `${o.offset} + ` : ''}${col}`;

function epilogue(c: Consts<'conv_fwd_fused' | 'conv_infer'>, g: { rows: number; PQ: number; NT: number; WN: number; MT: number; statTiles: number }, o: OutputPlace, staged?: Staged): string[] {
  const { rows, PQ, NT, WN, MT, statTiles } = g;
  // Staged per warp part: the 32-row parts outside the column halves, so that a part's 8 columns are in the warp's piece before it is stored.
  const spans = staged?.spans;
  const windows = staged?.windows;
  const loops = staged && !spans && !windows
    ? ['    NINCC_UNROLL', `    for (int sub = 0; sub < ${MT / 2}; ++sub) {  // the warp's 32-row statistics tiles`, `    ${stagedKeep}`, '    NINCC_UNROLL', '    for (int half = 0; half < 2; ++half) {']
    : ['    NINCC_UNROLL', '    for (int half = 0; half < 2; ++half) {', '    NINCC_UNROLL', `    for (int sub = 0; sub < ${MT / 2}; ++sub) {  // the warp's 32-row statistics tiles`];
  const target: StagedTarget = { dst: 'y', plane: yPlane(o), columns: c.K, positions: PQ, rows };
  const rows8 = `wm * ${16 * MT} + 32 * sub + 16 * (j / 2) + 8 * (j % 2)`; // the first of the accumulator's 8 rows in the block
  const warpRow = `${rows8} + lane / 4`; // the accumulator's row in the block
  const out = [
    ...(spans ? [spansBuffer(staged.buffer)] : windows ? [windowsBuffer(staged.buffer)] : staged ? [(staged.fp32 ? stagedFp32Piece : stagedPiece)(staged.buffer)] : []),
    'NINCC_UNROLL',
    `for (int nt = 0; nt < ${NT}; ++nt) {`,
    ...loops,
    `    const int kout = n0 + wn * ${WN} + nt * 8 + 2 * (lane % 4) + half;`,
    ...(c.bias ? [`    const float bias = kout < ${c.K} ? nincc::ld(&b[kout]) : 0.0f;`] : []),
    '    float v[4];',
    '    bool valid[4];',
    '    NINCC_UNROLL',
    '    for (int j = 0; j < 4; ++j) {  // j = 2·(mt − 2·sub) + i/2: rows 32·sub + 16·(j/2) + 8·(i/2) + l/4 of the warp',
    `      const long long m = m0 + ${warpRow};`,
    `      const int img = int(m / ${rows}), pq = int(m % ${rows});`,
    `      valid[j] = img < n && pq < ${PQ};`,
    `      float d = acc[2 * sub + j / 2][nt][2 * (j % 2) + half]${c.bias ? ' + bias' : ''};`,
    ...(o.residual ? [`      if (valid[j] && kout < ${c.K}) d += nincc::ld(&r[((long long)img * ${c.K} + kout) * ${PQ} + pq]);  // the residual block's shortcut`] : []),
    ...(c.relu ? [`      d = d > 0.0f ? d : 0.0f;  // inference: the ReLU after a folded BN${o.residual ? ' (the block\'s, after the add)' : ''}`] : []),
    ...(storesBf16(c) ? ['      d = nincc::bf16_to_float(nincc::to_bf16(d));  // y is stored in bf16: its statistics and every reader see the rounded value'] : []),
    '      v[j] = d;',
    spans
      ? `      ${spanWrite(spans, warpRow, rows8, 'd')}  // stored below, with the block's other rows and columns of this n8 tile`
      : windows
      ? `      ${windowWrite(windows, warpRow, 'd')}  // stored below, with the block's other rows and columns of this n8 tile`
      : staged
      ? `      ${(staged.fp32 ? stagedFp32Write : stagedWrite)('d')}  // stored below, with the part's other channels`
      : `      if (valid[j] && kout < ${c.K}) ${storeFloat('y', `((long long)img * ${o.total} + ${o.offset ? `${o.offset} + ` : ''}kout) * ${PQ} + pq`, 'd', storesBf16(c))}`,
    '    }',
  ];
  if (c.stats) {
    out.push(
      '    // These 32 rows: statistics tile `tile` of image `img` (the same [n][tile][K] partials as the fp32 kernel).',
      `    const long long first = m0 + wm * ${16 * MT} + 32 * sub;`,
      `    const int img = int(first / ${rows}), tile = int(first % ${rows}) / 32;`,
      `    const float count = float(min(32, ${PQ} - tile * 32));`,
      '    float s = 0.0f;',
      '    NINCC_UNROLL',
      '    for (int j = 0; j < 4; ++j) s += valid[j] ? v[j] : 0.0f;',
      '    s += nincc::shfl_xor(s, 4); s += nincc::shfl_xor(s, 8); s += nincc::shfl_xor(s, 16);',
      '    const float tile_mean = s / count;',
      '    float q = 0.0f;',
      '    NINCC_UNROLL',
      '    for (int j = 0; j < 4; ++j) { const float dev = valid[j] ? v[j] - tile_mean : 0.0f; q += dev * dev; }',
      '    q += nincc::shfl_xor(q, 4); q += nincc::shfl_xor(q, 8); q += nincc::shfl_xor(q, 16);',
      `    if (lane < 4 && img < n && tile < ${statTiles} && kout < ${c.K}) {`,
      `      const long long slot = ((long long)img * ${statTiles} + tile) * ${c.K} + kout;`,
      '      nincc::st(&st_mean[slot], tile_mean);',
      '      nincc::st(&st_m2[slot], q);',
      '    }',
    );
  }
  out.push('    }');
  if (spans || windows) {
    out.push('  }', ...(spans ? spansStore(spans) : windowsStore(windows!)).map((s) => `  ${s}`), '}');
    return out;
  }
  if (staged) out.push(...(staged.fp32 ? stagedFp32Store : stagedStore)(target, `m0 + wm * ${16 * MT} + 32 * sub`, `n0 + wn * ${WN} + nt * 8`).map((s) => `    ${s}`));
  out.push('  }', '}');
  return out;
}
