// The bf16 tensor-core convolution gradients (precision bf16), implicit GEMMs staged and multiplied as
// the forward (conv-mma-tile.ts: bf16 operands in XOR-swizzled shared memory, ldmatrix, mma.m16n8k16,
// fp32 accumulators). Data gradient: dX[m][c] = Σ_e dY'[m][e]·W[e][c] with the batch folded into M =
// (image, input position), N = C, e = (k, r, s) over the taps that reach the position; dY' is the raw
// gradient rebuilt from the incoming one (dReLU·dBN) while it is staged (a stride-1 k×k kernel: once per
// element into a shared halo, conv-mma-halo.ts; its W from a bf16 copy, conv-weight-bf16.ts), and the epilogue writes the
// Σdz, Σdz·x̂ partials of the input's pending BN from the accumulators. Weight gradient: dWᵀ[crs][k] =
// Σ_j X_col[crs][j]·dY'[k][j] over j = (image, output position) of this CTA's split of the batch's
// positions, into that split's fp32 partial; wgrad_reduce (conv.ts) adds the splits in order — no
// atomics, so training is bitwise repeatable. M = C·R·S and N = K (the transpose of dW, so that K = 96
// channels take a 32-wide N tile rather than padding a 64-row M tile). docs/design.md §4.1.
import { inputParams, loadFloat, storeFloat, params, fusedText, rebuildGradient, rebuildParams, statsParams, type Consts, type CudaKernel } from './parts.js';
import { BK, CANDIDATES, K_OFFSET_ALONG_K, K_OFFSET_NATURAL, WIDE_CANDIDATES, type MmaTile, chooseMmaTile, chooseTrafficTile, mmaPrologue, mmaSlice, stageAcrossRows, stageAlongK, tileThreads, tileWords, warpM16 } from './conv-mma-tile.js';
import { rowsPerImage } from './conv-mma.js';
import { applyPendingFrom, fromRow, pendingFields, rebuildFields, rebuildGradientFrom, rebuildTable, rebuildTableBytes, rowPendingLoads, rowRebuildLoads, tableLoads } from './conv-mma-channels.js';
import { biasPerValue, biasStore, hoistRowParams, rowsPerWarp, stageAlongPositions, type CoalescedRows } from './conv-mma-wgrad-coalesced-staging.js';
import { haloConv, haloGeometry, haloPrologue, haloStaging, stageHalo } from './conv-mma-halo.js';
import { stageWeightsBf16 } from './conv-weight-bf16.js';
import { chooseBRing } from './conv-mma-b-ring.js';
import { bStagesOf, ringLoop, ringStaging, ringTop } from './conv-mma-slice-ring.js';
import { stageTapsRuns, tapsRuns, tapsRunsPrologue, tapsRunsWords } from './conv-mma-taps-runs.js';
import { TAPS_GROUP, stageTapsHalo, tapOffsetLine, tapsAAddress, tapsFallback, tapsOrder, tapsPlan, tapsPrologue, tapsWords } from './conv-mma-taps-halo.js';
import { dgradSplitAccumulator, dgradSplitRange, dgradSplitSum, dgradSplitWords, type DgradGrid } from './conv-mma-dgrad-splits.js';
import { haloOperand, haloPrologue as wgradHaloPrologue, haloStaging as wgradHaloStaging, haloWords, type Halo } from './conv-mma-wgrad-halo.js';
import { chooseHaloSpan } from './conv-mma-wgrad-halo-span.js';
import { stemWgradHalo, stemWgradResidentBlocks } from './conv-mma-stem-wgrad-layout.js';
import { stemWgradBandStore } from './conv-mma-stem-wgrad-store.js';
import { wgradTicketsBound } from '../../lower/ops.js';
import { s2dWgradForm, s2dWgradHalo, s2dWgradReads, s2dWgradSource, s2dWgradTapLambda, s2dWgradWords, type S2dWgrad } from './conv-mma-stem-s2d-wgrad.js';
import { chooseKxkWgradTile } from './conv-mma-kxk-wgrad-tile.js';
import { kxkWarpTile } from './conv-mma-warp64-tile.js';
import { waveWgradTile } from './conv-mma-wgrad-wave-tiles.js';
import type { KernelStep } from '../../lower/program-ir.js';
import { spansBuffer, spansOf, spansStore, spanWrite, type SpanTarget } from './conv-mma-store-spans.js';
import { stagedFits, stagedKeep, stagedPiece, stagedStore, stagedWrite, type StagedTarget } from './conv-mma-store-staged.js';
import { isOn, isOptedIn, type Ablations } from '../../ablations.js';
import { lastSplitParams, lastSplitReduce } from './conv-mma-last-cta-wgrad.js';
import { chooseImageRing, ringCopy, ringElement, ringPrologue } from './conv-mma-wgrad-image-ring.js';
import { asyncImageRingBytes, asyncImageRingElement, asyncImageRingIssue, asyncImageRingLand, asyncImageRingPrologue, asyncImageRingWords, chooseAsyncImageRing, chooseImageRings, imageRingsBytes, imageRingsPrologue, imageRingsValue, imageRingsWords, ringDyCopyOut, ringDyStore, type ImageOperand } from './conv-mma-wgrad-async-image-ring.js';
import { asyncRingDynamicBytes, asyncRingElement, asyncRingIssue, asyncRingLand, asyncRingPrologue, asyncRingWords, chooseAsyncRing } from './conv-mma-wgrad-async-ring.js';
import { offSectorGrid, windowBytes, windowElement, windowLoad, windowPrologue, type SectorWindow } from './conv-mma-wgrad-sector-window.js';
import { STATIC_SHARED_BYTES } from './conv-mma-halo.js';
import { statsRunsFit, statsRunsLoad, statsRunsValue } from './conv-mma-dgrad-stats-runs.js';
import { addBackwardOfDgrad, addBackwardParams, addBackwardText } from './residual.js';
import { addBwdAccumulator, addBwdPartClose, addBwdPartOpen } from './conv-mma-add-bwd.js';
import { biasRowStore, biasRowTile, chunkSplitRange, onesRow, ringBAddress, ringFragmentsFit } from './conv-mma-wgrad-ring-fragments.js';
import { tapsRingBiasSums, tapsRingOf, tapsRingWords } from './conv-mma-wgrad-taps-ring.js';
import { bordersFit } from './conv-mma-wgrad-taps-border.js';
import { NATURAL_QUARTER, chooseNaturalHalo, naturalStagingFits, stageNatural } from './conv-mma-wgrad-natural-staging.js';
import { alignedReadsFit, wgradTapsStore } from './conv-mma-wgrad-taps-store.js';
import { chooseWgradTaps, wgradTapsAAddress, wgradTapsPrologue, wgradTapsRow, wgradTapsRows, wgradTapsStaging, wgradTapsHaloWords, wgradTapsWords } from './conv-mma-wgrad-taps-halo.js';

/**
 * The epilogue's walk over the warp's accumulators: element j (0..3) of n8 tile `nt`, column half
 * `half`, 32-row part `sub` of the warp (m16 tiles 2·sub, 2·sub + 1) is D[row][col], row = 16·MT·wm +
 * 32·sub + 16·(j/2) + 8·(j%2) + l/4, col = WN·wn + 8·nt + 2·(l%4) + half (the m16n8k16 C layout);
 * `inner` sees `m` (the global row), `col` and `d`; `perRows` opens and `afterRows` closes each 32 rows
 * (one statistics tile). `stagedAfter` (a staged bf16 output, conv-mma-store-staged.ts): the 32-row parts
 * run outside the column halves, and these lines store each part's 8 columns once both halves wrote them.
 * `perPart` (e_y's runs, conv-mma-dgrad-stats-runs.ts): lines at the top of each part, the parts then outside the halves too.
 * `afterTile` (the span stores, conv-mma-store-spans.ts): lines after each n8 tile's parts.
 * `read` declares `d` from acc[mt][nt][e] (C++ index expressions); a split data gradient's reads its splits' partials.
 */
function eachAccumulator(nt: number, WN: number, MT: number, perRows: string[], inner: string[], afterRows: string[], stagedAfter?: string[], perPart: readonly string[] = [], afterTile: string[] = [], read = (mt: string, nt: string, e: string) => [`const float d = acc[${mt}][${nt}][${e}];`]): string[] {
  const halves = ['for (int half = 0; half < 2; ++half) {', `  const int col = n0 + wn * ${WN} + nt * 8 + 2 * (lane % 4) + half;`];
  const parts = [`for (int sub = 0; sub < ${MT / 2}; ++sub) {`, ...(stagedAfter ? [stagedKeep] : []), ...perPart].map((s, i) => (i ? `  ${s}` : s));
  const [outer, innerLoop] = stagedAfter || perPart.length > 0 ? [parts, halves] : [halves, parts];
  return [
    'NINCC_UNROLL',
    `for (int nt = 0; nt < ${nt}; ++nt) {`,
    '  NINCC_UNROLL',
    ...outer.map((s) => `  ${s}`),
    '    NINCC_UNROLL',
    ...innerLoop.map((s) => `    ${s}`),
    ...perRows.map((s) => `      ${s}`),
    '      NINCC_UNROLL',
    '      for (int j = 0; j < 4; ++j) {',
    `        const long long m = m0 + wm * ${16 * MT} + 32 * sub + 16 * (j / 2) + 8 * (j % 2) + lane / 4;`,
    ...read('2 * sub + j / 2', 'nt', '2 * (j % 2) + half').map((s) => `        ${s}`),
    ...inner.map((s) => `        ${s}`),
    '      }',
    ...afterRows.map((s) => `      ${s}`),
    '    }',
    ...(stagedAfter ?? []).map((s) => `    ${s}`),
    '  }',
    ...afterTile.map((s) => `  ${s}`),
    '}',
  ];
}

/**
 * The data gradient's B: rows are input channels c, k runs over the taps e = (k, r, s) of W[k][c][r][s].
 * A 1×1 kernel's channels are contiguous (lanes across rows); a larger one's taps run R·S contiguous
 * floats per k (eight lanes along each row).
 */
function weightStaging(c: Consts<'conv_dgrad_fused'>, BN: number, KRS: number, RS: number, threads: number): string[] {
  if (c.bf16w) return stageWeightsBf16(c.C, BN, threads);
  const staging = {
    perRow: ['const int ch = n0 + row;'],
    perElement: ['const int kk = k0 + ko;', `if (ch < ${c.C} && kk < ${KRS}) v = nincc::ld(&w[((long long)(kk / ${RS}) * ${c.C} + ch) * ${RS} + kk % ${RS}]);`],
  };
  return RS === 1
    ? ['// Stage B: rows are input channels, each position a k: W[k][c] (consecutive lanes on consecutive channels).', ...stageAcrossRows('bs', BN, staging, threads)]
    : ['// Stage B: rows are input channels, eight lanes along each row\'s taps (k, r, s): W[k][c][r][s].', ...stageAlongK('bs', BN, staging, threads)];
}

/** A data gradient's tile, rows an image, and its tap-major halo and the halo's runs where it takes them: what the kernel and its split choice share. */
function dgradPlan(c: Consts<'conv_dgrad_fused'>, maxBatch: number, ablations: Ablations | undefined) {
  const HW = c.H * c.W, RS = c.R * c.S;
  const stats = Boolean(c.outStats);
  // A residual add's backward (addBwd) writes partials too, its ends' over the same 32-position tiles.
  const padded = stats || c.addBwd === true;
  const rows = rowsPerImage(HW, padded);
  // A 1×1 layer streams dY (and y, for a fused rebuild) once per column tile: the tile with the least of that
  // traffic (the wide ones too: 128×96 for 96 channels, W staged by half the blocks of 64×128); a k×k
  // kernel may take the wide tiles (conv-mma-tile.ts).
  const candidates = isOn(ablations, 'wideTiles') ? WIDE_CANDIDATES : CANDIDATES;
  const tile = RS === 1
    ? chooseTrafficTile(maxBatch * rows, c.C, c.gBn || c.gRelu ? 2 : 1, 1, candidates)
    : kxkWarpTile(chooseMmaTile(maxBatch * rows, c.C, candidates), c, ablations); // a stride-1 layer's 64-row warp twin (conv-mma-warp64-tile.ts)
  // A k×k kernel's rebuild reads its channel parameters from a shared table (every element of a staged row may be another
  // channel k); a 1×1 kernel's from global memory per element (the table's broadcast reads from shared memory cost more
  // in the profile model than the sectors they save: bench/RESULTS.md i15X).
  const useTable = RS > 1;
  // A stride-1 k×k kernel stages dY' once per group of channels into a shared halo and builds A for every tap from there (conv-mma-halo.ts).
  // A data gradient from a bf16 weight copy in the tap-major k order loads A's fragments from a channels-innermost halo (conv-mma-taps-halo.ts).
  const taps = c.bf16w && tapsOrder(c, 'dgrad', maxBatch, ablations) ? tapsPlan(c, 'dgrad', maxBatch, ablations, padded, useTable && c.gBn ? rebuildTableBytes(c, c.K) : 0) : undefined;
  if (taps && tileWords(taps.tile) !== tileWords(tile)) throw new Error(`conv-mma-grad.ts: the tap-major halo's tile differs from the data gradient's (${tileWords(taps.tile)} against ${tileWords(tile)})`);
  // The tap-major halo staged from sector-aligned runs of dY's planes through B's tile (conv-mma-taps-runs.ts), where
  // staging an element reads dY alone (a rebuild reads y at the same place: it keeps the per-position staging).
  const runs = taps && rebuildGradientFrom(c, 'v', 'at', fromRow).length === 0 ? tapsRuns(taps, tile.bn * BK * 2, c.gBf16 ? 2 : 4, ablations) : undefined;
  return { stats, padded, rows, tile, useTable, taps, runs };
}

/**
 * One split's grid of a tap-major data gradient that may split its reduction (conv-mma-dgrad-splits.ts), for the
 * lowering's split choice; undefined where it may not (no tap-major halo, or the halo staged from runs).
 */
export function dgradSplitGrid(c: Consts<'conv_dgrad_fused'>, maxBatch: number, ablations?: Ablations): DgradGrid | undefined {
  const { rows, tile, taps, runs } = dgradPlan(c, maxBatch, ablations);
  if (!taps || runs || !isOn(ablations, 'dgradTapSplits')) return undefined;
  return { tiles: Math.ceil((maxBatch * rows) / tile.bm) * Math.ceil(c.C / tile.bn), area: tile.bm * tile.bn, groups: c.K / TAPS_GROUP };
}

export function convBackwardDataMma(k: KernelStep, c: Consts<'conv_dgrad_fused'>, maxBatch: number, ablations?: Ablations): CudaKernel {
  const HW = c.H * c.W, PQ = c.P * c.Q, KRS = c.K * c.R * c.S, RS = c.R * c.S;
  const { stats, padded, rows, tile, useTable, taps, runs } = dgradPlan(c, maxBatch, ablations);
  // The residual add whose output this conv reads first: its backward in this epilogue (conv-mma-add-bwd.ts), dx stored as dz.
  const add = addBackwardOfDgrad(c);
  if (add && (stats || c.dxBf16)) throw new Error(`internal error: ${k.kernel} does a residual add's backward and ${stats ? "writes its input BN's partials" : 'stores dx in bf16'}`);
  const { bm: BM, bn: BN, nt: NT } = tile;
  const MT = warpM16(tile);
  const threads = tileThreads(tile);
  const WN = NT * 8;
  const statTiles = Math.ceil(HW / 32);
  // addend (i17c's residual fusion, when lower/ops.ts has it): dx also sums another reader's gradient of the same input.
  const addend = 'addend' in c && c.addend === true;
  // The epilogue's input-BN parameters depend on the column alone: once per 32-row part and column, not per accumulator.
  const hoistStats = stats && isOn(ablations, 'dgradStatsOnce');
  // The epilogue's e_y in whole sectors, one 16-byte run a lane transposed across lanes (conv-mma-dgrad-stats-runs.ts).
  const statsRuns = stats && isOn(ablations, 'dgradStatsRuns') && statsRunsFit(c, HW, rows);
  // The reduction over K's channel groups in the lowering's splits (conv-mma-dgrad-splits.ts).
  const splits = c.splits ?? 1;
  const grid: [number, number, number] = [Math.ceil((maxBatch * rows) / BM), Math.ceil(c.C / BN), splits];
  if (splits > 1) {
    const own = dgradSplitGrid(c, maxBatch, ablations);
    if (!own || own.tiles !== c.splitTiles || own.area !== c.splitArea) throw new Error(`internal error: a data gradient in ${splits} splits of ${c.splitTiles} tiles of ${c.splitArea}, its kernel's ${own ? `${own.tiles} of ${own.area}` : 'none'}`);
  }
  const span = splits > 1 ? { lo: 'k_lo', hi: 'k_hi' } : undefined;
  const view = isOn(ablations, 'haloTiles') && !taps ? haloConv(c, 'dgrad') : undefined;
  const halo = view && haloGeometry(view, tile, rows, maxBatch, useTable && c.gBn ? rebuildTableBytes(c, c.K) : 0);
  const names = [{ name: 'g', bf16: c.gBf16 }, ...rebuildParams(c), 'w', ...(c.bf16w ? ['wb'] : []), ...(addend ? ['g_add'] : []), { name: 'dx', out: true, bf16: c.dxBf16 }, ...statsParams(c), ...(add ? addBackwardParams(add) : []), ...(splits > 1 ? [{ name: 'dpart', out: true }, { name: 'dtickets', out: true }] : [])];
  // A bf16 dx is staged through the dead operand tiles (the taps halo, where there is no A tile) and stored in contiguous runs (conv-mma-store-staged.ts).
  const [stageBuffer, stageBytes] = taps ? ['taps_halo', taps.geometry.bytes] : ['as', BM * 64];
  // A tap-major data gradient copies B's slices from the bf16 copy through a cp.async ring, S − 1 slices ahead (conv-mma-b-ring.ts), not over the runs (they stage through B's tile).
  const bRing = isOn(ablations, 'kxkBRing') && taps && !runs ? chooseBRing(BN, taps.geometry.bytes + (useTable && c.gBn ? rebuildTableBytes(c, c.K) : 0), c.C, KRS, threads, span) : undefined;
  const target: StagedTarget = { dst: 'dx', plane: (img, col) => `(long long)${img} * ${c.C} + ${col}`, columns: c.C, positions: HW, rows };
  // On blocks of whole images, in whole spans of 8 planes once the block wrote each n8 tile (conv-mma-store-spans.ts).
  const spanTarget: SpanTarget = { ...target, blockRows: BM, warpsN: BN / WN, warpCols: WN, threads };
  const spans = c.dxBf16 === true && isOn(ablations, 'stagedStores') && isOn(ablations, 'spanStores') ? spansOf(spanTarget, stageBytes, (c.C * HW) % 8 === 0, isOn(ablations, 'swizzledSpans')) : undefined;
  const staged = c.dxBf16 === true && isOn(ablations, 'stagedStores') && (spans || stagedFits(stageBytes, threads / 32)) ? stageBuffer : undefined;
  // The splits' sum read by the epilogue accumulator by accumulator, not summed into acc before it (conv-mma-dgrad-splits.ts).
  const sumInEpilogue = isOn(ablations, 'dgradSumInEpilogue');
  const readSum = span && sumInEpilogue ? (mt: string, nt: string, e: string) => dgradSplitAccumulator(splits, MT, NT, threads, mt, nt, e) : undefined;
  const rows8 = `wm * ${16 * MT} + 32 * sub + 16 * (j / 2) + 8 * (j % 2)`; // the first of the accumulator's 8 rows in the block
  const warpRow = `${rows8} + lane / 4`; // the accumulator's row in the block (eachAccumulator's m − m0)
  const perRow = [
    `const int img = int(m / ${rows}), pos = int(m % ${rows});`,
    `const bool valid = img < n && pos < ${HW} && col < ${c.C};`,
    `const long long at = ((long long)img * ${c.C} + col) * ${HW} + pos;`,
    'float dv = d;',
    ...(addend ? ["if (valid) dv += nincc::ld(&g_add[at]);  // another reader's gradient of the same input"] : []),
    // The stats below take dv unrounded; the stored dx is rounded to bf16 when the reader's rebuild allows (lower/train-fused.ts bf16Gradients).
    ...(add
      ? addBwdAccumulator(add, c.C)
      : [
          spans
            ? `${spanWrite(spans, warpRow, rows8, 'dv')}  // stored after the n8 tile, with the block's other rows and columns`
            : staged ? `${stagedWrite('dv')}  // stored after the part, with its other channels` : `if (valid) ${storeFloat('dx', 'at', 'dv', c.dxBf16)}`,
        ]),
  ];
  const statFields = [...(c.outRelu ? ['e_scale', 'e_shift'] : []), 'e_mean', 'e_invstd'];
  const statParam = (field: string) => (hoistStats ? `s_${field}` : `nincc::ld(&${field}[col])`);
  const statLoads = hoistStats ? statFields.map((field) => `const float s_${field} = col < ${c.C} ? nincc::ld(&${field}[col]) : 0.0f;`) : [];
  const rowStats = stats
    ? [
        'if (valid) {  // the gradient of the input\'s pending value, rebuilt as the BN backward reads it',
        `  const float yv = ${statsRuns ? statsRunsValue : loadFloat('e_y', 'at', c.eyBf16)};`,
        `  const float dz = ${c.outRelu ? `nincc::ffma(yv, ${statParam('e_scale')}, ${statParam('e_shift')}) > 0.0f ? dv : 0.0f` : 'dv'};`,
        '  dz_sum += dz;',
        `  dzx_sum += dz * ((yv - ${statParam('e_mean')}) * ${statParam('e_invstd')});`,
        '}',
      ]
    : [];
  const columnStats = stats
    ? [
        '// These 32 rows of the warp are statistics tile `tile` of image `img` (rows padded per image to whole tiles):',
        '// the column\'s 32 values sit in the 8 lanes of equal l % 4, summed across them in a fixed order.',
        'dz_sum += nincc::shfl_xor(dz_sum, 4); dz_sum += nincc::shfl_xor(dz_sum, 8); dz_sum += nincc::shfl_xor(dz_sum, 16);',
        'dzx_sum += nincc::shfl_xor(dzx_sum, 4); dzx_sum += nincc::shfl_xor(dzx_sum, 8); dzx_sum += nincc::shfl_xor(dzx_sum, 16);',
        `const long long first = m0 + wm * ${16 * MT} + 32 * sub;`,
        `const int img = int(first / ${rows}), tile = int(first % ${rows}) / 32;`,
        `if (lane < 4 && img < n && tile < ${statTiles} && col < ${c.C}) {`,
        `  const long long slot = ((long long)img * ${statTiles} + tile) * ${c.C} + col;`,
        '  nincc::st(&e_dz[slot], dz_sum);',
        '  nincc::st(&e_dzx[slot], dzx_sum);',
        '}',
      ]
    : [];
  // A 32-row part's first global row and its n8 tile's first column, in the epilogue's walk.
  const [part, partCol] = [`m0 + wm * ${16 * MT} + 32 * sub`, `n0 + wn * ${WN} + nt * 8`];
  const body = [
    ...mmaPrologue(tile, !taps, bStagesOf(bRing)),
    `const long long m0 = (long long)blockIdx.x * ${BM};`,
    `const int n0 = int(blockIdx.y) * ${BN};`,
    `if (m0 >= (long long)n * ${rows}) return;  // the grid is sized for the largest batch: whole blocks past this one's leave`,
    ...(span ? dgradSplitRange(splits, c.K / TAPS_GROUP, TAPS_GROUP * RS) : []),
    ...(bRing?.prologue ?? []),
    ...(c.gBn ? [`const float inv_m = 1.0f / float((long long)n * ${PQ});`] : []),
    ...(useTable && c.gBn ? ['// The rebuild\'s channel parameters: every element of a staged row may be another channel k.', ...rebuildTable(c, c.K, threads)] : []),
    ...(view && halo ? haloPrologue(view, halo, rows) : []),
    ...(taps ? tapsPrologue(taps) : []),
    ...(taps && runs ? tapsRunsPrologue(taps, threads) : []),
    ringLoop(bRing, KRS, span),
    ...ringTop(bRing).map((s) => `  ${s}`),
    ...(taps
      ? [...(runs ? stageTapsRuns(taps, runs, threads, 'g', () => [], (ch) => tableLoads(c, ch)) : stageTapsHalo(taps, threads, (at) => [`v = ${loadFloat('g', at, c.gBf16)};`, ...rebuildGradientFrom(c, 'v', at, fromRow)], (ch) => tableLoads(c, ch))), tapOffsetLine(taps)]
      : view && halo
      ? [
          ...stageHalo(view, halo, tile, (at) => [`v = ${loadFloat('g', at, c.gBf16)};`, ...rebuildGradientFrom(c, 'v', at, fromRow)], tableLoads(c, `(ch < ${c.K} ? ch : 0)`)),
          '// Stage A from the halo: rows are input positions (consecutive lanes on consecutive positions), each position a tap e = (k, r, s).',
          ...stageAcrossRows('as', BM, haloStaging(view, halo, rows), threads),
        ]
      : [
          '// Stage A: rows are input positions (consecutive lanes on consecutive positions), each position a tap e = (k, r, s): dY\' at the output position the tap reaches from here.',
          ...stageAcrossRows('as', BM, {
            perRow: [
              'const long long m = m0 + row;',
              `const int img = int(m / ${rows}), pos = int(m % ${rows});`,
              `const bool live = img < n && pos < ${HW};`,
              `const int hp0 = pos / ${c.W} + ${c.ph}, up0 = pos % ${c.W} + ${c.pw};`,
            ],
            perElement: [
              'const int kk = k0 + ko;',
              ...(useTable ? tableLoads(c, `(kk < ${KRS} ? kk / ${RS} : 0)`) : []),
              `if (live && kk < ${KRS}) {`,
              `  const int kout = kk / ${RS}, hp = hp0 - kk / ${c.S} % ${c.R}, up = up0 - kk % ${c.S};`,
              '  // Only the taps whose distance is a whole number of strides inside the output reach this position.',
              `  if (hp >= 0 && up >= 0 && hp % ${c.sh} == 0 && up % ${c.sw} == 0 && hp / ${c.sh} < ${c.P} && up / ${c.sw} < ${c.Q}) {`,
              `    const long long at = ((long long)img * ${c.K} + kout) * ${PQ} + (hp / ${c.sh}) * ${c.Q} + up / ${c.sw};`,
              `    v = ${loadFloat('g', 'at', c.gBf16)};`,
              ...(useTable ? rebuildGradientFrom(c, 'v', 'at', fromRow) : rebuildGradient(c, 'v', 'at', 'kout')).map((s) => `    ${s}`),
              '  }',
              '}',
            ],
          }, threads),
        ]).map((s) => `  ${s}`),
    ...(ringStaging(bRing, 'B') ?? weightStaging(c, BN, KRS, RS, threads)).map((s) => `  ${s}`),
    '  __syncthreads();',
    ...mmaSlice(tile, taps ? tapsAAddress : undefined, undefined, bRing?.slot).map((s) => `  ${s}`),
    '  __syncthreads();',
    '}',
    ...(bRing?.drain ?? []),
    ...(span ? dgradSplitSum(splits, MT, NT, threads, 'bs', sumInEpilogue) : []),
    ...(spans ? [spansBuffer(stageBuffer)] : staged ? [stagedPiece(staged)] : []),
    ...eachAccumulator(NT, WN, MT, stats ? ['float dz_sum = 0.0f, dzx_sum = 0.0f;', ...statLoads] : add ? addBwdPartOpen(add) : [], [...perRow, ...rowStats], add ? addBwdPartClose(add, c.C, statTiles, rows, part) : columnStats, staged && !spans ? stagedStore(target, part, partCol) : undefined, statsRuns ? statsRunsLoad(c, part, partCol, HW, rows) : [], spans ? spansStore(spans) : [], readSum),
  ];
  const fused = fusedText([
    'bf16 tensor-core implicit-GEMM dgrad (mma.m16n8k16, fp32 accumulate)',
    c.gRelu && 'prologue: dReLU',
    c.gBn && 'prologue: dBN (dy rebuilt from y, dγ, dβ)',
    halo && `dY' staged once per ${halo.group} channels in a shared halo of ${halo.window} padded positions (bf16), A built from it for every tap`,
    taps && tapsWords(taps, "dY'"),
    runs && tapsRunsWords(runs),
    bRing?.words,
    halo && c.bf16w && tapsFallback(c, 'dgrad', maxBatch, ablations),
    addend && "epilogue: + another reader's gradient",
    stats && 'epilogue: Σdz, Σdz·x̂ partials of the input BN from the accumulators',
    add && `epilogue: the ${addBackwardText(add)} of the block before (add_bwd_fused's sums in its order)`,
    hoistStats && "the input BN's parameters loaded once a column and 32-row part",
    statsRuns && "the input BN's y loaded in 16-byte runs, transposed across lanes",
    c.dxBf16 && (spans ? 'dx stored bf16, staged in shared memory into whole spans of 8 planes' : staged ? 'dx stored bf16, staged in shared memory into contiguous runs' : 'dx stored bf16'),
    span && dgradSplitWords(splits),
  ]);
  const tileText = `${tileWords(tile)}, M = N·${rows}${padded && rows !== HW ? ` (each image's ${HW} positions padded to whole 32-row statistics tiles)` : ''}, N = ${c.C}, K = ${KRS}`;
  return {
    params: params(k, names),
    body,
    launch: { grid, block: [threads, 1, 1], shared: 0 },
    fused,
    tile: tileText,
  };
}

/** A weight gradient's tile and input halo (none for a 1×1 kernel, or where no layout fits). */
function wgradPlan(c: Consts<'conv_wgrad_fused'>, ablations: Ablations | undefined, s2d: S2dWgrad | undefined): { tile: MmaTile; halo: Halo | undefined } {
  const wideTiles = isOn(ablations, 'wideTiles');
  const CRS = c.C * c.R * c.S, RS = c.R * c.S;
  // Any kernel size may take the wide tiles: each block re-reads its BM taps of x for every ⌈K/BN⌉ column
  // tile and its BN channels of dY' (with y, for a rebuild) for every ⌈C·R·S/BM⌉ row tile (conv-mma-tile.ts).
  // A 1×1 kernel whose grid is too small for the GPU may take a smaller tile (conv-mma-wgrad-wave-tiles.ts, chosen by the lowering).
  const wide = waveWgradTile(c) ?? chooseMmaTile(CRS, c.K, wideTiles ? WIDE_CANDIDATES : CANDIDATES);
  // A k×k kernel stages its input rows once per slice in shared memory and builds A from there (conv-mma-wgrad-halo.ts);
  // a 1×1 kernel's A is x itself, read once.
  // A staging may cover several slices' positions, which shares the rows their taps overlap on (conv-mma-wgrad-halo-span.ts).
  const span = isOn(ablations, 'haloSpan');
  // A few-channels strided stem's halo has a pitch of its own and may take what shared memory the tiles leave (conv-mma-stem-wgrad-layout.ts).
  // So does a stem's stride-1 form over x space-to-depth (conv-mma-stem-s2d-wgrad.ts).
  // Its row tiles may be one channel each (conv-mma-stem-wgrad-layout.ts channelTilesFit), not with the last split's fold (sized by C·R·S).
  const channelTiles = isOn(ablations, 'stemWgradChannelTiles') && !c.lastSplit;
  const stemHalo = s2d ? s2dWgradHalo(c, wide, tileThreads(wide), span, s2d.fw) : isOn(ablations, 'stemWgradHalo') ? stemWgradHalo(c, wide, tileThreads(wide), span, channelTiles, isOn(ablations, 'stemWgradLongStagings')) : undefined;
  const wideHalo = isOn(ablations, 'inputHalo') && RS > 1 ? stemHalo ?? chooseHaloSpan(c, wide.bm, tileThreads(wide), span) : undefined;
  // With the halo, a k×k kernel may take the 256-tall tile, which halves dY''s re-reads (conv-mma-kxk-wgrad-tile.ts).
  const tall = wideTiles && isOn(ablations, 'tallTiles') && wideHalo ? chooseKxkWgradTile(CRS, c.K, RS, c.gBn || c.gRelu ? 2 : 1, (wideHalo.plane * BK) / wideHalo.positions, WIDE_CANDIDATES) : wide;
  const tallHalo = tall !== wide ? chooseHaloSpan(c, tall.bm, tileThreads(tall), span) : undefined;
  // A stride-1 layer then takes the tile's 64-row warp twin (conv-mma-warp64-tile.ts), with the halo chosen for its own threads
  // where that stages a different length: fewer elements copied a position (chooseHaloSpan's order), which the 32-row warps'
  // spare stores left no room for (NIN's 7×7 3×3: 128 positions, not 32). Else the 32-row tile's halo, as before.
  const [tile32, halo32] = tallHalo ? [tall, tallHalo] : [wide, wideHalo];
  // A strided stem on its own halo (not a gather) builds A from shared memory as a stride-1 layer does, and is as bound by
  // shared memory: it takes the twin too (NIN's stem wgrad, predicted: 23.80M → 20.16M wavefronts, 96.1 → 92.5 µs).
  const aFromHalo = stemHalo && !s2d && isOn(ablations, 'stemWgradWarp64') ? { sh: 1, sw: 1 } : {};
  const tile = kxkWarpTile(tile32, { ...c, ...aFromHalo }, ablations);
  if (halo32?.channelTiles && tile.bm !== wide.bm) throw new Error(`wgradPlan: row tiles of one channel were sized for BM ${wide.bm}, the tile has ${tile.bm}`);
  const twinHalo = tile !== tile32 && halo32 && !stemHalo && isOn(ablations, 'twinHalo') ? chooseHaloSpan(c, tile.bm, tileThreads(tile), span) : undefined;
  return { tile, halo: twinHalo && twinHalo.positions !== halo32?.positions ? twinHalo : halo32 };
}

/**
 * The conv a layer's weight gradient runs as and its plan. A few-channels strided stem runs as the stride-1 weight
 * gradient over x space-to-depth where that form finds an input halo and reads less a slice than the stem's own plan
 * (conv-mma-stem-s2d-wgrad.ts s2dWgradReads); `c` is the conv the kernel runs, `stem` the layer (its dW layout, x's
 * shape). Neither depends on the split count.
 */
function wgradForm(stem: Consts<'conv_wgrad_fused'>, ablations: Ablations | undefined): { c: Consts<'conv_wgrad_fused'>; s2d: S2dWgrad | undefined; tile: MmaTile; halo: Halo | undefined } {
  const own = wgradPlan(stem, ablations, undefined);
  const form = s2dWgradForm(stem, ablations);
  const formPlan = form && wgradPlan({ ...stem, ...form.conv }, ablations, form);
  // With the last split's fold (conv-mma-last-cta-wgrad.ts) its tiles must also fit the tickets lowering sized by the stem's C·R·S.
  const formTiles = formPlan && form ? Math.ceil((form.conv.C * form.conv.R * form.conv.S) / formPlan.tile.bm) * Math.ceil(stem.K / formPlan.tile.bn) : Infinity;
  const ticketsFit = !stem.lastSplit || formTiles <= wgradTicketsBound(stem.C * stem.R * stem.S, stem.K);
  const s2d = form && formPlan?.halo && ticketsFit && s2dWgradReads({ ...stem, ...form.conv }, formPlan) < s2dWgradReads(stem, own) ? form : undefined;
  return { c: s2d ? { ...stem, ...s2d.conv } : stem, s2d, ...(s2d && formPlan ? formPlan : own) };
}

/**
 * The kernel's `lo`, `hi`: its split's positions. A stem's wave-chosen split count (lower/train-fused.ts stemWaveSplits:
 * NIN's 88 of 401,408 positions) need not divide them into whole slices, and a share starting off the 32-position grid
 * puts every slice's dY' rows across one more sector (the stem's load efficiency 90 % → 80 %) and its input halo off its
 * conflict-free layout (115.1k bank conflicts, bench/logs/i15a-profile-stem-h100-b128-bf16-ab.out): so those splits take
 * whole slices (the last one short), as wgrad-splits-waves.ts counts them. The others keep their even shares (their bits).
 */
function splitRange(c: Consts<'conv_wgrad_fused'>): string[] {
  if (!c.waveSplits) return [`const long long lo = total * split / ${c.splits}, hi = total * (split + 1) / ${c.splits};`];
  return [
    `const long long slices = (total + ${BK - 1}) / ${BK};  // whole slices a split (a wave-split stem: conv-mma-grad.ts splitRange)`,
    `const long long lo_slice = slices * split / ${c.splits} * ${BK}, hi_slice = slices * (split + 1) / ${c.splits} * ${BK};`,
    'const long long lo = lo_slice < total ? lo_slice : total, hi = hi_slice < total ? hi_slice : total;',
  ];
}

/** The blocks of one split of a bf16 weight gradient's grid (its output tiles) and a block's BM·BN: the lowering's split and tile choice (wgrad-tile-waves.ts). */
export function wgradSplitGrid(stem: Consts<'conv_wgrad_fused'>, ablations?: Ablations): { tiles: number; area: number } {
  const { c, tile } = wgradForm(stem, ablations);
  return { tiles: Math.ceil((c.C * c.R * c.S) / tile.bm) * Math.ceil(c.K / tile.bn), area: tile.bm * tile.bn };
}

export function convBackwardWeightMma(k: KernelStep, stem: Consts<'conv_wgrad_fused'>, ablations?: Ablations): CudaKernel {
  const { c, s2d, tile, halo: formHalo } = wgradForm(stem, ablations);
  const PQ = c.P * c.Q, CRS = c.C * c.R * c.S, RS = c.R * c.S, stemCRS = stem.C * stem.R * stem.S;
  const { bm: BM, bn: BN, nt: NT } = tile;
  const threads = tileThreads(tile);
  const WN = NT * 8;
  const bsums = Math.ceil((BN * 8) / threads); // the B items (row, quarter) a thread stages per slice: its bias-gradient partials
  const names = [{ name: 'g', bf16: c.gBf16 }, ...rebuildParams(c), ...(c.dyOut ? [{ name: 'dy_raw', out: true, bf16: true }] : []), { name: 'x', bf16: c.xBf16 }, ...inputParams(c), { name: 'wpart', out: true }, { name: 'bpart', out: true }, ...lastSplitParams(c)];
  // One row a warp instruction, lanes along positions (conv-mma-wgrad-coalesced-staging.ts), where the tile's rows split evenly into warps.
  const coalesced = isOn(ablations, 'wgradCoalesced');
  const aPerWarp = rowsPerWarp(BM, threads), bPerWarp = rowsPerWarp(BN, threads);
  const aRows: CoalescedRows | undefined = coalesced && !formHalo && aPerWarp
    ? { rows: BM, perWarp: aPerWarp, fields: pendingFields(c), channel: (row) => `(int(m0) + ${row}) / ${RS}`, live: (row) => `int(m0) + ${row} < ${CRS}` }
    : undefined;
  const bRows: CoalescedRows | undefined = coalesced && bPerWarp
    ? { rows: BN, perWarp: bPerWarp, fields: rebuildFields(c), channel: (row) => `n0 + ${row}`, live: (row) => `n0 + ${row} < ${c.K}` }
    : undefined;
  // Rows off the sector grid through per-row windows loaded in whole sectors (conv-mma-wgrad-sector-window.ts), opted into by
  // `wgradSectorWindows: true` (their shared traffic outweighed the sectors saved on NIN): x of a 1×1 stride-1 unpadded
  // conv, and a plain bf16 dY' where the whole-image ring below does not fit beside A's window.
  // The static shared memory already declared: the A and B tiles, an input halo and its pending BN's scale/shift tables (wgradHaloPrologue).
  const bytesWith = (h: Halo | undefined) => (BM + BN) * BK * 2 + (h ? h.bytes + (c.inBn ? h.channels * 2 * 4 : 0) : 0);
  const plainB = bRows && c.gBf16 && !c.gBn && !c.gRelu;
  // Plain bf16 dY' on planes of whole 4-byte copies: a cp.async ring of slice windows, S − 1 slices in flight (conv-mma-wgrad-async-ring.ts),
  // in dynamic shared memory where it does not fit beside the static (the k×k kernels' input halos).
  const ringBeside = (beside: number) => (plainB && isOn(ablations, 'wgradAsyncRing') ? chooseAsyncRing(PQ, BN, beside, isOn(ablations, 'wgradDynamicRing')) : undefined);
  // B's fragments by ldmatrix from the ring itself, no B tile staged from it; A in the positions' own k order from a halo laid out
  // for that order (conv-mma-wgrad-natural-staging.ts), the splits on the ring's chunks (conv-mma-wgrad-ring-fragments.ts).
  const naturalHalo = isOn(ablations, 'wgradRingFragments') && formHalo && !s2d && !formHalo.layout.exactPlane && !formHalo.group && naturalStagingFits(BM, threads) && ringFragmentsFit(c, ringBeside(bytesWith(formHalo)), BM)
    ? chooseNaturalHalo(c, BM, threads, isOn(ablations, 'haloSpan'), STATIC_SHARED_BYTES - bytesWith(undefined) - (c.inBn ? 1024 : 0))
    : undefined;
  const halo = naturalHalo && ringFragmentsFit(c, ringBeside(bytesWith(naturalHalo)), BM) ? naturalHalo : formHalo;
  // A's fragments by ldmatrix.trans from a channels-innermost halo, rows tap-major within octets of channels, no A tile
  // (conv-mma-wgrad-taps-halo.ts): where the channel-major halo would build an A tile in the staged k order.
  const wtaps = isOn(ablations, 'wgradTapsHalo') && halo && halo !== naturalHalo && !s2d && !halo.group && !halo.layout.exactPlane
    ? chooseWgradTaps(c, tile, STATIC_SHARED_BYTES - BN * BK * 2 - (c.inBn ? 1024 : 0), isOn(ablations, 'wgradTapsZeroGroups') ? 8 : 1)
    : undefined;
  const aHalo = wtaps ? undefined : halo;
  // Its rows' dW places are 8 channels R·S apart a store instruction: the partials go through the idle halo into runs along dW,
  // read in the band's aligned 32-word chunks (conv-mma-wgrad-taps-store.ts).
  const tapsStore = wtaps && wgradTapsStore(c, wtaps, tile, threads, isOn(ablations, 'wgradTapsAlignedReads') && alignedReadsFit(RS) ? 'aligned' : 'dense');
  const tileBytes = wtaps ? BN * BK * 2 + wtaps.bytes + (c.inBn ? wtaps.octets * 8 * 2 * 4 : 0) : bytesWith(halo);
  const windows = isOptedIn(ablations, 'wgradSectorWindows') && offSectorGrid(PQ);
  const aWindow: SectorWindow | undefined = windows && aRows && RS === 1 && c.sh === 1 && c.sw === 1 && c.ph === 0 && c.pw === 0 && c.xBf16 && tileBytes + windowBytes(BM) <= STATIC_SHARED_BYTES
    ? { name: 'awin', source: 'x', channels: c.C, positions: PQ, rows: aRows }
    : undefined;
  const besideB = tileBytes + (aWindow ? windowBytes(BM) : 0);
  // Beside the tap-major halo, B's fragments by ldmatrix from the ring's windows, no B tile (conv-mma-wgrad-taps-ring.ts).
  const tapsRing = wtaps && isOn(ablations, 'wgradTapsRingFragments') ? tapsRingOf(c, ringBeside(besideB), bRows, besideB) : undefined;
  const asyncRing = tapsRing ?? ringBeside(besideB);
  // Else a k×k one (an input halo) on planes no 4-byte copy divides: whole images by cp.async into dynamic shared memory (conv-mma-wgrad-async-image-ring.ts).
  const imageAsync = plainB && halo && !asyncRing && isOn(ablations, 'wgradAsyncImageRing') ? chooseAsyncImageRing(PQ, BN, c.K) : undefined;
  // Else, on short planes: whole images of the block's channels copied into a shared ring, B staged from there (conv-mma-wgrad-image-ring.ts).
  const ring = plainB && !asyncRing && !imageAsync && isOn(ablations, 'wgradImageRing') ? chooseImageRing(PQ, BN, besideB) : undefined;
  const ringB = halo && halo === naturalHalo && ringFragmentsFit(c, asyncRing, BM) ? asyncRing : undefined;
  // A stem's own halo (one plane per channel, no groups) stages only the planes its block's taps read (conv-mma-wgrad-halo.ts haloStaging).
  const livePlanes = halo && !s2d && halo.layout.exactPlane === true && !halo.group && !halo.channelTiles && isOn(ablations, 'stemWgradLivePlanes');
  // Row tiles of one channel each (Halo.channelTiles): GEMM row m is tap m % BM of channel m / BM, a tap only below R·S.
  const channelRows = aHalo?.channelTiles === true;
  // Opted into: its partials through the idle halo into runs along dW (conv-mma-stem-wgrad-store.ts).
  const bandStore = channelRows && isOptedIn(ablations, 'stemWgradBandStores') ? stemWgradBandStore(c, tile, threads, aHalo.bytes) : undefined;
  // Held to 3 resident blocks a SM by its launch bounds, its dY' rebuild and A staging rolled (conv-mma-stem-wgrad-layout.ts stemWgradResidentBlocks).
  const heldBlocks = channelRows ? stemWgradResidentBlocks(ablations) : undefined;
  const kOrder = ringB ? K_OFFSET_NATURAL : K_OFFSET_ALONG_K;
  const bWindow: SectorWindow | undefined = plainB && bRows && !ring && !asyncRing && !imageAsync && windows && besideB + windowBytes(BN) <= STATIC_SHARED_BYTES
    ? { name: 'bwin', source: 'g', channels: c.K, positions: PQ, rows: bRows }
    : undefined;
  // Else a 1×1 stride-1 unpadded kernel on odd planes (NIN's 7×7 k34/k37: a row's slice is 64 bytes off the sector grid):
  // its bf16 operands (x; the rebuild's g and y) whole images by cp.async into one ring's image slots, staged from there.
  const ringOperands: { operand: ImageOperand; words: string }[] = [
    ...(c.xBf16 ? [{ operand: { source: 'x', channels: c.C, rows: BM, first: 'int(m0)' }, words: 'x' }] : []),
    ...(c.gBf16 ? [{ operand: { source: 'g', channels: c.K, rows: BN, first: 'n0' }, words: 'g' }] : []),
    ...((c.gBn || c.gRelu) && c.gyBf16 ? [{ operand: { source: 'g_y', channels: c.K, rows: BN, first: 'n0' }, words: 'y' }] : []),
  ];
  const imageRings = aRows && bRows && !ring && !asyncRing && !imageAsync && !aWindow && !bWindow && RS === 1 && c.sh === 1 && c.sw === 1 && c.ph === 0 && c.pw === 0 && PQ % 2 === 1 && isOn(ablations, 'wgradImageRings')
    ? chooseImageRings(PQ, ringOperands.map((o) => o.operand))
    : undefined;
  const ringValue = (source: string) => {
    const o = imageRings?.operands.find((q) => q.source === source);
    return imageRings && o ? imageRingsValue(imageRings, o, 'row', 'jr') : undefined;
  };
  const [xRing, gRing, yRing] = [ringValue('x'), ringValue('g'), ringValue('g_y')];
  // Opted into: dY' for the data gradient stored over g (or, an fp32 g outside the ring, y) in its slots, whole images by
  // 16-byte stores (conv-mma-wgrad-async-image-ring.ts ringDyStore; their shared traffic costs a shared-bound kernel more than it saves).
  const readOnce = imageRings?.operands.find((o) => o.source === 'g') ?? imageRings?.operands.find((o) => o.source === 'g_y');
  const dyThroughSlots = c.dyOut && imageRings && readOnce && isOptedIn(ablations, 'wgradRingDyStores') ? readOnce : undefined;
  const ringJ = 'const long long j = j0 + ko, jr = min(j, hi - 1);  // every lane reads its slots (past hi: the split\'s last position)';
  const gatherElement = [
    'const long long j = j0 + ko;',
    `if (crs < ${CRS} && j < hi) {`,
    `  const int img = int(j / ${PQ}), pq = int(j % ${PQ});`,
    `  const int h = pq / ${c.Q} * ${c.sh} - ${c.ph} + r, u = pq % ${c.Q} * ${c.sw} - ${c.pw} + s;`,
    `  if (h >= 0 && h < ${c.H} && u >= 0 && u < ${c.W}) {  // padding stays 0: Torch pads the activation`,
    `    v = ${loadFloat('x', `(((long long)img * ${c.C} + ch) * ${c.H} + h) * ${c.W} + u`, c.xBf16)};`,
    ...applyPendingFrom(c, 'v', fromRow).map((line) => `    ${line}`),
    '  }',
    '}',
  ];
  // x from its image slots (a 1×1 stride-1 unpadded conv: the input under the tap is x at the position itself).
  const ringGather = xRing && [ringJ, `const float rv = ${xRing};`, `if (crs < ${CRS} && j < hi) {`, '  v = rv;', ...applyPendingFrom(c, 'v', fromRow).map((line) => `  ${line}`), '}'];
  const gatherRow = ['const int crs = int(m0) + row;', `const int ch = crs / ${RS}, r = crs / ${c.S} % ${c.R}, s = crs % ${c.S};`];
  // Without a halo, A gathers each tap's input from global memory. A k×k tap's gather, its 16 pairs of rows unrolled
  // whole, lets ptxas keep every row's tap (c, r, s) and bounds across the slice loop beside the 128 accumulators: vgg-16's
  // 3×3 k8/k11/k13/k15 took 255 registers and spilled 128–268 B; 4 pairs at a time, none (bench/RESULTS.md i15v).
  const gatherUnroll = RS > 1 && !aWindow && !ringGather && isOn(ablations, 'wgradGatherUnrollBy4') ? 4 : undefined;
  const stageGathered = aRows
    ? [
        ...(aWindow ? windowLoad(aWindow).map((s) => `  ${s}`) : []),
        '  // Stage A: rows are taps crs = (c, r, s), one a warp instruction, the lanes along its positions j: the input under the tap, its pending transform applied.',
        ...stageAlongPositions('as', aRows, gatherRow, aWindow ? windowElement(aWindow, `crs < ${CRS}`, applyPendingFrom(c, 'v', fromRow)) : ringGather || gatherElement, undefined, false, gatherUnroll).map((s) => `  ${s}`),
      ]
    : [
    '  // Stage A: rows are taps crs = (c, r, s), eight lanes along each row\'s positions j: the input under the tap, its pending transform applied.',
    ...stageAlongK('as', BM, {
      perRow: [...gatherRow, ...rowPendingLoads(c, 'ch', `crs < ${CRS}`)],
      perElement: gatherElement,
    }, threads).map((s) => `  ${s}`),
  ];
  const gradientElement = [
    ...(imageRings ? [ringJ, ...(gRing ? [`const float rg = ${gRing};`] : []), ...(yRing ? [`const float ry = ${yRing};`] : [])] : ['const long long j = j0 + ko;']),
    `if (kout < ${c.K} && j < hi) {`,
    `  const long long at = (j / ${PQ} * ${c.K} + kout) * ${PQ} + j % ${PQ};`,
    `  v = ${gRing ? 'rg' : loadFloat('g', 'at', c.gBf16)};`,
    ...rebuildGradientFrom(c, 'v', 'at', fromRow, yRing ? 'ry' : undefined).map((s) => `  ${s}`),
    // dyOut: the first row tile's blocks hold every (k, j) once between them; they store dY' for the data gradient.
    ...(c.dyOut ? [`  ${imageRings && dyThroughSlots ? ringDyStore(imageRings, dyThroughSlots, 'dy_raw', 'v') : `if (blockIdx.x == 0) ${storeFloat('dy_raw', 'at', 'v', true)}`}`] : []),
    '}',
  ];
  const biasSum = c.bias && bRows
    ? biasStore(bRows, c.K)
    : c.bias
    ? [
        '// The bias gradient in fp32 from the staged dY\' (before rounding): each thread sums its item\'s positions,',
        '// then the 8 lanes of a row add theirs by shfl_xor 1, 2, 4 (a fixed order) — the blocks of column 0 write it to this split\'s partial.',
        'NINCC_UNROLL',
        `for (int i = 0; i < ${bsums}; ++i) {`,
        `  const int row = (t + i * ${threads}) / 8;`,
        '  float s = bsum[i];',
        '  s += nincc::shfl_xor(s, 1); s += nincc::shfl_xor(s, 2); s += nincc::shfl_xor(s, 4);',
        `  if (blockIdx.x == 0 && lane % 8 == 0 && row < ${BN} && n0 + row < ${c.K}) nincc::st(&bpart[split * ${c.K} + n0 + row], s);`,
        '}',
      ]
    : [];
  const body = [
    ...mmaPrologue(tile, !wtaps),
    `const long long m0 = (long long)blockIdx.x * ${BM};`,
    `const int n0 = int(blockIdx.y) * ${BN}, split = int(blockIdx.z);`,
    `// This split's share of the batch's n·${PQ} output positions j = (image, p, q), in order.`,
    `const long long total = (long long)n * ${PQ};`,
    ...(ringB || tapsRing ? chunkSplitRange(c, (ringB ?? tapsRing)!) : splitRange(c)),
    ...(c.gBn ? [`const float inv_m = 1.0f / float(total);`] : []),
    ...(c.bias && !ringB ? [bRows ? 'float bsum = 0.0f;  // lane l: the bias gradient of the warp\'s row l of B' : `float bsum[${bsums}] = {${Array(bsums).fill('0.0f').join(', ')}};`] : []),
    ...(aRows ? hoistRowParams(aRows) : []),
    ...(bRows ? hoistRowParams(bRows) : []),
    ...(wtaps ? wgradTapsPrologue(c, wtaps, tile, threads) : aHalo ? wgradHaloPrologue(c, aHalo, threads) : []),
    ...(ring ? ringPrologue(ring) : []),
    ...(asyncRing ? asyncRingPrologue(asyncRing, c.K, PQ, threads, ringB !== undefined || tapsRing !== undefined) : []),
    ...(imageAsync ? asyncImageRingPrologue(imageAsync, c.K, threads) : []),
    ...(imageRings ? imageRingsPrologue(imageRings, threads) : []),
    ...[aWindow, bWindow].flatMap((w) => (w ? windowPrologue(w) : [])),
    `for (long long j0 = lo; j0 < hi; j0 += ${BK}) {`,
    ...(asyncRing ? [`  const int it = int((j0 - lo) / ${BK});  // the slice's iteration: its ring stage`, ...asyncRingIssue(asyncRing).map((s) => `  ${s}`)] : []),
    ...(imageAsync || imageRings ? asyncImageRingIssue(imageAsync ?? imageRings!).map((s) => `  ${s}`) : []),
    ...(wtaps || aHalo ? (wtaps ? wgradTapsStaging(c, wtaps, threads, isOn(ablations, 'wgradTapsRowLoads'), isOn(ablations, 'wgradTapsRowLoads') && isOn(ablations, 'wgradTapsBorderZeros') && bordersFit(c, wtaps)) : wgradHaloStaging(c, aHalo!, threads, s2d && s2dWgradSource(s2d, stem), kOrder, ringB && NATURAL_QUARTER, livePlanes ? BM : undefined)).map((s) => `  ${s}`) : stageGathered),
    ...(ringB ? [] : tapsRing ? (c.bias ? tapsRingBiasSums(tapsRing, bRows!, c.K) : []) : bRows
      ? [
          '  // Stage B: rows are output channels k, one a warp instruction, the lanes along its positions j: dY\' rebuilt from the incoming gradient.',
          ...(ring ? ringCopy(ring, c.K, threads) : []),
          ...(bWindow ? windowLoad(bWindow) : []),
          ...stageAlongPositions('bs', bRows, ['const int kout = n0 + row;'], asyncRing ? asyncRingElement(asyncRing, c.K) : imageAsync ? asyncImageRingElement(imageAsync, c.K) : ring ? ringElement(ring, c.K) : bWindow ? windowElement(bWindow, `kout < ${c.K}`) : gradientElement, c.bias ? biasPerValue : undefined, wtaps !== undefined, heldBlocks === undefined ? undefined : 1),
        ]
      : [
          '  // Stage B: rows are output channels k, eight lanes along each row\'s positions j: dY\' rebuilt from the incoming gradient.',
          ...stageAlongK('bs', BN, {
            perRow: ['const int kout = n0 + row;', ...rowRebuildLoads(c, 'kout', `kout < ${c.K}`)],
            perElement: [...gradientElement, ...(c.bias ? [`bsum[q / ${threads}] += v;`] : [])],
          }, threads, wtaps ? K_OFFSET_NATURAL : K_OFFSET_ALONG_K),
        ]).map((s) => `  ${s}`),
    '  __syncthreads();',
    ...(aHalo
      ? [
          ringB
            ? '  // Stage A from the halo: rows are taps crs = (c, r, s), 16 of them × one 16-byte chunk of positions j a load instruction.'
            : '  // Stage A from the halo: rows are taps crs = (c, r, s), eight lanes along each row\'s positions j (as the gather would).',
          ...(ringB
            ? stageNatural(BM, c.bias ? { ...haloOperand(c, aHalo), perElement: [...haloOperand(c, aHalo).perElement, ...onesRow(c)] } : haloOperand(c, aHalo), threads)
            : stageAlongK('as', BM, haloOperand(c, aHalo), threads, kOrder, heldBlocks === undefined ? undefined : 1)
          ).map((s) => `  ${s}`),
          '  __syncthreads();',
        ]
      : []),
    ...mmaSlice(tile, wtaps && wgradTapsAAddress(wtaps), undefined, undefined, (ringB || tapsRing) && ringBAddress((ringB ?? tapsRing)!), wtaps !== undefined).map((s) => `  ${s}`),
    ...(imageRings && dyThroughSlots ? ringDyCopyOut(imageRings, dyThroughSlots, 'dy_raw', threads).map((s) => `  ${s}`) : []),
    ...(asyncRing ? asyncRingLand(asyncRing).map((s) => `  ${s}`) : []),
    ...(imageAsync || imageRings ? asyncImageRingLand(imageAsync ?? imageRings!).map((s) => `  ${s}`) : []),
    '  __syncthreads();',
    '}',
    ...(s2d ? s2dWgradTapLambda(s2d, stem) : []),
    ...(wtaps ? wgradTapsRows(c, tile) : []),
    ...(tapsStore ?? bandStore ?? eachAccumulator(NT, WN, warpM16(tile), [], s2d
      ? [`const int at = m < ${CRS} ? stem_tap(int(m)) : -1;`, `if (at >= 0 && col < ${c.K}) nincc::st(&wpart[((long long)split * ${c.K} + col) * ${stemCRS} + at], d);`]
      : wtaps
      ? [wgradTapsRow(c), `if (live_crs && col < ${c.K}) nincc::st(&wpart[((long long)split * ${c.K} + col) * ${CRS} + crs], d);`]
      : channelRows
      ? [`const int rs = int(m) % ${BM};  // the tap in channel m / ${BM} (row tiles of one channel each)`, `if (rs < ${RS} && col < ${c.K}) nincc::st(&wpart[((long long)split * ${c.K} + col) * ${CRS} + int(m) / ${BM} * ${RS} + rs], d);`]
      : [`if (m < ${CRS} && col < ${c.K}) nincc::st(&wpart[((long long)split * ${c.K} + col) * ${CRS} + m], d);`, ...(ringB && c.bias ? biasRowStore(c) : [])], [])),
    ...(ringB ? [] : biasSum),
    ...lastSplitReduce(c, { BM, BN, threads, CRS, ...(s2d ? { stemTaps: stemCRS } : {}), ...(ringB && c.bias ? { biasTile: biasRowTile(c, BM) } : {}), ...(wtaps ? { tapMajor: true as const } : {}) }),
  ];
  const fused = fusedText([
    'bf16 tensor-core implicit-GEMM wgrad (mma.m16n8k16, fp32 accumulate; the batch\'s positions split across CTAs, fixed-order sum)',
    c.gRelu && 'prologue: dReLU',
    c.gBn && 'prologue: dBN',
    c.inBn && 'prologue: input BN scale/shift',
    c.inRelu && 'prologue: input ReLU',
    c.bias && (ringB ? "bias gradient (fp32) as an MMA row of ones" : 'bias gradient (fp32)'),
    c.dyOut && `dY' stored (bf16) for the data gradient by the first row tile's blocks${dyThroughSlots ? `, through ${dyThroughSlots.source === 'g' ? 'g' : 'y'}'s image slots in whole 16-byte runs` : ''}`,
    s2d && s2dWgradWords(s2d, stem),
    (aRows || (bRows && !ringB && !tapsRing)) && `${[aRows && 'x', bRows && !ringB && !tapsRing && "dY'"].filter(Boolean).join(' and ')} staged one row a warp instruction, lanes along positions`,
    (aWindow || bWindow) && `${[aWindow && 'x', bWindow && "dY'"].filter(Boolean).join(' and ')} loaded in whole sectors into per-row shared windows`,
    asyncRing && asyncRingWords(asyncRing, ringB ? "B's fragments by ldmatrix from the ring's windows (no B tile), A in the positions' order, the splits on its chunks" : tapsRing ? tapsRingWords : undefined),
    imageAsync && asyncImageRingWords(imageAsync),
    imageRings && imageRingsWords(imageRings, ringOperands.map((o) => o.words)),  // the ring holds them all
    ring && `dY' copied whole images of the block's ${ring.rows} channels at a time into a shared ring of two slots (${ring.slotPitch} bf16 apart), B staged from there`,
    c.lastSplit && 'the splits summed in order by the last split block of each tile (no wgrad_reduce)',
    wtaps && wgradTapsWords(wtaps, tapsRing !== undefined),
  ]);
  const tileText = `${tileWords(tile)}, M = ${CRS} (C·R·S), N = ${c.K}, K = n·${PQ} in ${c.splits} splits${wtaps ? `; ${wgradTapsHaloWords(wtaps)}` : aHalo ? `; ${haloWords(aHalo)}` : ''}`;
  return {
    params: params(k, names),
    body,
    launch: { grid: [channelRows ? c.C : Math.ceil(CRS / BM), Math.ceil(c.K / BN), c.splits], block: [threads, 1, 1], shared: imageAsync ? asyncImageRingBytes(imageAsync) : imageRings ? imageRingsBytes(imageRings) : asyncRingDynamicBytes(asyncRing) },
    fused,
    tile: tileText,
    // The resident blocks its splits were chosen at: without the bound ptxas may take more registers (or, sm_80 on NIN's
    // 64×16 k4/k7 at 32 splits, fewer and a 4-byte spill: 96 against 122 at (128, 4); bench/RESULTS.md i15b).
    ...(c.residentBlocks !== undefined || heldBlocks !== undefined ? { minBlocks: Math.max(c.residentBlocks ?? 1, heldBlocks ?? 1) } : {}),
  };
}
