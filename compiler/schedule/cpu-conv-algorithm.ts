// The CPU forward-convolution algorithm of each BN-folded conv (backends/cpu/render.ts emits its calls): the
// batch-wide implicit GEMM (conv_gemm.h) or a Winograd variant (conv_winograd.h), picked by a cost model,
// with a second one from some batch up where the model has another algorithm ahead at large batches.
import type { Program } from '../lower/program-ir.js';
import type { ConvShape } from '../lower/ops.js';

export type ConvAlgorithm = 'implicit_gemm' | 'winograd_f2x3' | 'winograd_f4x3' | 'winograd_f2x5';

/** What the choice reads of a conv step's consts (conv_infer's and fold_bn's, compiler/lower/ops.ts). */
/**
 * A conv's shape; `maxBatch`, where known, the most images a call runs (no second algorithm past it);
 * `l3Bytes`, where known, the L3 of the machine the build runs on (cpu-winograd-choice-l3.ts), else defaultL3Bytes.
 */
export type ConvConsts = Omit<ConvShape, 'P' | 'Q'> & { readonly maxBatch?: number; readonly l3Bytes?: number };

export interface ConvChoice {
  /** The algorithm at batch 1, and at every batch when `large` is absent. */
  readonly algorithm: ConvAlgorithm;
  /** Modeled time of every candidate, relative to the implicit GEMM, at each of costBatches. */
  readonly relative: ReadonlyMap<ConvAlgorithm, readonly number[]>;
  readonly reason: string;
  /** The algorithm run from `fromBatch` images up (its weights packed beside the first's), and why. */
  readonly large?: { readonly algorithm: ConvAlgorithm; readonly fromBatch: number; readonly reason: string };
  /** A 1x1 conv: from `fromBatch` images up, the implicit GEMM itself rather than the pointwise direct conv, and why. */
  readonly pointwiseGemm?: { readonly fromBatch: number; readonly reason: string };
}

/** The batches the choice is made for: one image (latency) and a typical serving/training batch. */
export const costBatches = [1, 16] as const;
/** A Winograd variant must model this much faster (summed over costBatches) to be picked. */
const margin = 0.9;

const winograd: Record<Exclude<ConvAlgorithm, 'implicit_gemm'>, { m: number; r: number; cpp: string; name: string }> = {
  winograd_f2x3: { m: 2, r: 3, cpp: 'WinogradKind::F2x3', name: 'Winograd F(2x2,3x3)' },
  winograd_f4x3: { m: 4, r: 3, cpp: 'WinogradKind::F4x3', name: 'Winograd F(4x4,3x3)' },
  winograd_f2x5: { m: 2, r: 5, cpp: 'WinogradKind::F2x5', name: 'Winograd F(2x2,5x5)' },
};

export const algorithmName = (a: ConvAlgorithm): string => (a === 'implicit_gemm' ? 'implicit GEMM' : winograd[a].name);
export const winogradKindCpp = (a: Exclude<ConvAlgorithm, 'implicit_gemm'>): string => winograd[a].cpp;
/** The output rows of one of the algorithm's tiles: Winograd's m, else 1 (each output row on its own). */
export const outputTileRows = (a: ConvAlgorithm): number => (a === 'implicit_gemm' ? 1 : winograd[a].m);

const ceilDiv = (a: number, b: number) => Math.ceil(a / b);
const packRows = 12; // kConvPackRowMultiple: every ISA's panel height divides it

/**
 * Floats of a conv's weights packed into GEMM row panels (runtime/include/nincc/cpu/conv_gemm.h,
 * packed_conv_weights_size): output channels rounded up to 12, which every ISA's panel height divides.
 */
export function packedConvWeightsSize(outChannels: number, patch: number): number {
  return ceilDiv(outChannels, packRows) * packRows * patch;
}

/** winograd_weights_size (conv_winograd.h): a*a packed matrices of K (rounded up to 12) x C. */
export function winogradWeightsSize(a: Exclude<ConvAlgorithm, 'implicit_gemm'>, outChannels: number, inChannels: number): number {
  const alpha = winograd[a].m + winograd[a].r - 1;
  return alpha * alpha * ceilDiv(outChannels, packRows) * packRows * inChannels;
}

// The model, in cycles of one AVX-512 core (the same ranking holds for AVX2 at half the width): the
// micro-kernel does 32 multiply-adds a cycle at ~80%; weights not held in L2 stream from L3 at
// 16 B/cycle or, past the L3, from memory at 2 B/cycle a core. The L3 is the build machine's where
// a native build reads it (the 2-core VM reports 300 MiB), else defaultL3Bytes. Measured on that VM,
// 1 thread, batch 16 (bench/logs/i19s-winograd-k31-f4x3.out): NIN's 3x3 384→1024 on 7x7 took 0.37×
// the implicit GEMM's time on F(4x4,3x3), whose 56 MB of transformed weights the model modeled at
// 0.80× as streamed from memory past a 32 MiB L3, and models at 0.38× held in 300 MiB (batch 1: 2.2×
// measured, 2.1× modeled; bench/logs/i19v-winograd-choice-model.out).
const macsPerCycle = 32 * 0.8;
const tileCols = 32; // pixels (implicit GEMM) or Winograd tiles per column panel
const l2Weights = 512 * 1024;
/** The L3 the model assumes where the build machine's is not known (a portable or cross-ISA build). */
export const defaultL3Bytes = 32 * 2 ** 20;
const gatherCycles = 6; // one masked 16-lane gather or scatter
const streamCycles = (c: ConvConsts, bytes: number, times: number) => (bytes * times) / (bytes <= (c.l3Bytes ?? defaultL3Bytes) ? 16 : 2);

function outSize(c: ConvConsts): { oh: number; ow: number } {
  return { oh: Math.floor((c.H + 2 * c.ph - c.R) / c.sh) + 1, ow: Math.floor((c.W + 2 * c.pw - c.S) / c.sw) + 1 };
}

function implicitGemmCycles(c: ConvConsts, n: number): number {
  const { oh, ow } = outSize(c);
  const colTiles = ceilDiv(n * oh * ow, tileCols);
  const depth = c.C * c.R * c.S;
  const macs = ceilDiv(c.K, packRows) * packRows * depth * colTiles * tileCols;
  const gather = depth * colTiles * 4; // a panel row: a few masked loads and a store
  const weightBytes = c.K * depth * 4;
  const chunks = Math.min(colTiles, Math.max(8, ceilDiv(colTiles, 16)));
  return macs / macsPerCycle + gather + (weightBytes <= l2Weights ? 0 : streamCycles(c, weightBytes, chunks));
}

function winogradCycles(a: Exclude<ConvAlgorithm, 'implicit_gemm'>, c: ConvConsts, n: number): number {
  const { m } = winograd[a];
  const alpha = m + winograd[a].r - 1;
  const { oh, ow } = outSize(c);
  const colTiles = ceilDiv(n * ceilDiv(oh, m) * ceilDiv(ow, m), tileCols);
  const kPadded = ceilDiv(c.K, packRows) * packRows;
  const macs = alpha * alpha * kPadded * c.C * colTiles * tileCols;
  // conv_winograd.h's split: up to 4 column tiles per block while their V fits 1 MiB; with fewer
  // than 4 blocks (two threads, two tasks each) the channels are split and the input transformed again.
  const vBytes = alpha * alpha * c.C * tileCols * 4;
  const perBlock = Math.max(1, Math.min(4, Math.floor(2 ** 20 / vBytes), colTiles));
  const blocks = ceilDiv(colTiles, perBlock);
  const groups = blocks >= 4 ? 1 : Math.min(kPadded / packRows, ceilDiv(4, blocks));
  const input = c.C * colTiles * groups * (alpha * alpha * 2 * gatherCycles + alpha ** 3);
  const output = kPadded * colTiles * (2 * alpha * alpha + alpha ** 3 + 2 * m * m * gatherCycles);
  return macs / macsPerCycle + input + output + streamCycles(c, 4 * winogradWeightsSize(a, c.K, c.C), blocks);
}

function candidates(c: ConvConsts): Exclude<ConvAlgorithm, 'implicit_gemm'>[] {
  if (c.sh !== 1 || c.sw !== 1 || c.R !== c.S) return [];
  return (Object.keys(winograd) as Exclude<ConvAlgorithm, 'implicit_gemm'>[]).filter((a) => winograd[a].r === c.R);
}

const cyclesOf = (a: ConvAlgorithm, c: ConvConsts, n: number) => (a === 'implicit_gemm' ? implicitGemmCycles(c, n) : winogradCycles(a, c, n));

/**
 * The algorithm from some batch up, when one models a `margin` faster than `base` at the largest of
 * costBatches: a Winograd variant's cost is per 32 tiles, so one with larger output tiles (F(4x4,3x3))
 * can lose at batch 1, where a 7x7 plane fills an eighth of its lanes, and win at 16 (measured at 1
 * thread, nin-fashion's 3x3 64→128 on 7x7: 2.6× the implicit GEMM's time at batch 1, 0.43× at 16;
 * bench/logs/cpu-infer-batch-algorithm.out). Switches at the first batch the model has it ahead of `base`.
 */
function largeBatchChoice(c: ConvConsts, base: ConvAlgorithm, relative: ReadonlyMap<ConvAlgorithm, readonly number[]>): ConvChoice['large'] {
  const last = costBatches.length - 1, at = (a: ConvAlgorithm) => relative.get(a)![last];
  const best = [...relative.keys()].reduce((b, a) => (at(a) < at(b) ? a : b), base);
  if (best === base || at(best) >= margin * at(base)) return undefined;
  let fromBatch = 2;
  while (fromBatch < costBatches[last] && cyclesOf(best, c, fromBatch) >= cyclesOf(base, c, fromBatch)) fromBatch++;
  if (c.maxBatch !== undefined && c.maxBatch < fromBatch) return undefined; // never run: its packing would be dead weight
  const reason = `the model has it ahead of ${algorithmName(base)} from this batch up: ${(at(best) / at(base)).toFixed(2)}× its time at batch ${costBatches[last]}`;
  return { algorithm: best, fromBatch, reason };
}

/** The deepest 1x1 conv any ISA's pointwise direct conv takes: kMaxDepthBlock, 256 on AVX2 and SSE/NEON (192 on AVX-512). */
export const deepestDirectDepth = 256; // render.ts static_asserts no ISA's is deeper

/** conv_gemm.h's kOutputPastL2Bytes (render.ts static_asserts the two agree): an output past it is not held in L2. */
export const outputPastL2Bytes = 2 * 2 ** 20;

/**
 * A 1x1 stride-1 unpadded conv's packed weights serve two algorithms, with the same bits: conv2d_forward
 * takes the pointwise direct conv (conv_direct.h) where pointwise_direct_applies, conv2d_forward_packed
 * the implicit GEMM. The direct conv goes tile by tile through all K output rows, a plane apart; once
 * the call's output is past L2, each row of each tile is a write-allocate from memory, where the GEMM
 * switches to its chunked order (conv_gemm.h chunked_order_pays, the same bound) and writes 12 rows at
 * a time. Measured at 1 thread, medians of three rounds (bench/logs/i19n-cpu-choice-pointwise-ab.out):
 * on the GEMM, NIN's 96→96 on 56x56 took 0.86× the direct conv's time at batch 2 (2.3 MiB out), 0.59×
 * at 4 and 0.46× at 16, but 0.79-1.05× at batch 1 (1.15 MiB): level, so it keeps the direct conv;
 * nin-fashion's 1x1s (at most 1.5 MiB out at batch 16) took 1.02-1.25×, so they keep it too.
 */
function pointwiseGemmChoice(c: ConvConsts): ConvChoice['pointwiseGemm'] {
  if (c.R !== 1 || c.S !== 1 || c.sh !== 1 || c.sw !== 1 || c.ph !== 0 || c.pw !== 0) return undefined;
  if (c.C > deepestDirectDepth) return undefined; // never the direct conv: conv2d_forward already runs the GEMM
  const { oh, ow } = outSize(c);
  const imageBytes = c.K * oh * ow * 4;
  const fromBatch = Math.floor(outputPastL2Bytes / imageBytes) + 1;
  if (c.maxBatch !== undefined && c.maxBatch < fromBatch) return undefined;
  const reason = `its output is past L2 (${(outputPastL2Bytes / 2 ** 20).toFixed(0)} MiB) from this batch up (${(imageBytes / 2 ** 20).toFixed(2)} MiB an image), where the pointwise direct conv's tile-by-tile stores of all ${c.K} rows miss and the GEMM's chunked order does not`;
  return { fromBatch, reason };
}

/** The algorithm for a conv whose folded weights are packed at fold time (and the one from some batch up), and why. */
export function chooseConvAlgorithm(c: ConvConsts): ConvChoice {
  const direct = costBatches.map((n) => implicitGemmCycles(c, n));
  const relative = new Map<ConvAlgorithm, readonly number[]>([['implicit_gemm', costBatches.map(() => 1)]]);
  let best: ConvAlgorithm = 'implicit_gemm';
  let bestScore = costBatches.length * margin;
  for (const a of candidates(c)) {
    const r = costBatches.map((n, i) => winogradCycles(a, c, n) / direct[i]);
    relative.set(a, r);
    const score = r.reduce((s, v) => s + v, 0);
    if (score < bestScore) [best, bestScore] = [a, score];
  }
  const at = (a: ConvAlgorithm) => relative.get(a)!.map((v, i) => `${v.toFixed(2)}× at batch ${costBatches[i]}`).join(', ');
  const others = [...relative.keys()].filter((a) => a !== 'implicit_gemm' && a !== best).map((a) => `${algorithmName(a)} ${at(a)}`);
  let reason: string;
  if (c.R === 1 && c.S === 1) reason = 'a 1x1 conv: the GEMM reads the input as stored, and no transform lowers its multiply count';
  else if (best === 'implicit_gemm' && relative.size === 1) reason = `no Winograd variant for a ${c.R}x${c.S} kernel at stride ${c.sh},${c.sw}`;
  else if (best === 'implicit_gemm') reason = `no Winograd variant models ${Math.round((1 - margin) * 100)}% faster (${others.join('; ')})`;
  else reason = `modeled ${at(best)} of the implicit GEMM's time${others.length ? `; ${others.join('; ')}` : ''}`;
  const large = largeBatchChoice(c, best, relative);
  const pointwiseGemm = pointwiseGemmChoice(c);
  return { algorithm: best, relative, reason, ...(large && { large }), ...(pointwiseGemm && { pointwiseGemm }) };
}

// Training transforms its weights on every call (conv.h conv2d_forward_winograd_training): U = G g G^T
// is a*r*r + a*a*r double multiply-adds per (k, c) pair at ~0.75 cycle each, fitted to the measured
// pack times of NIN's 3x3 weights (384x256: 2.1 ms, 1024x384: 9 ms; bench/RESULTS.md Round 6).
const transformCyclesPerMac = 0.75;
/** The batch a training step is modeled at (bench/cpu's training step; the spec's own batch is larger). */
export const trainingCostBatch = 16;

function weightTransformCycles(a: Exclude<ConvAlgorithm, 'implicit_gemm'>, c: ConvConsts): number {
  const { m, r } = winograd[a];
  const alpha = m + r - 1;
  return c.K * c.C * (alpha * r * r + alpha * alpha * r) * transformCyclesPerMac;
}

/**
 * The algorithm of a training forward conv (conv_fwd): as chooseConvAlgorithm, but at the training batch
 * only, with the per-call weight transform counted against each Winograd variant, and without
 * F(4x4,3x3): measured at 1 thread, batch 16, on NIN's 3x3 256→384 (14x14) it took 18.5 ms against
 * F(2x2,3x3)'s 19.9 (implicit GEMM 38.5), for rounding 2.5x as large (its tests' tolerance), which
 * every later step of training would carry; the data and weight gradients use F(2x2,·) too.
 */
export function chooseTrainingConvAlgorithm(c: ConvConsts): ConvAlgorithm {
  const direct = implicitGemmCycles(c, trainingCostBatch);
  let best: ConvAlgorithm = 'implicit_gemm';
  let bestRelative = margin;
  for (const a of candidates(c).filter((v) => v !== 'winograd_f4x3')) {
    const relative = (winogradCycles(a, c, trainingCostBatch) + weightTransformCycles(a, c)) / direct;
    if (relative < bestRelative) [best, bestRelative] = [a, relative];
  }
  return best;
}

/** Floats of one algorithm's packing of a conv's folded weights. */
export function packedWeightsFloatsOf(a: ConvAlgorithm, c: ConvConsts): number {
  return a === 'implicit_gemm' ? packedConvWeightsSize(c.K, c.C * c.R * c.S) : winogradWeightsSize(a, c.K, c.C);
}

/**
 * Floats of the packed-weight buffer of a BN-folded conv (lower-infer allocates it, fold_bn fills it): the
 * first algorithm's packing, then the large-batch one's, if any.
 */
export function convPackedWeightsFloats(c: ConvConsts): number {
  const choice = chooseConvAlgorithm(c);
  return packedWeightsFloatsOf(choice.algorithm, c) + (choice.large ? packedWeightsFloatsOf(choice.large.algorithm, c) : 0);
}

/**
 * report.txt lines: the algorithm of every conv inference step of a cpu build, and why (the model's
 * times relative to the implicit GEMM at batch 1 and 16).
 */
export function convAlgorithmReport(programs: readonly Program[]): string[] {
  const lines = [`CPU convolution algorithms (cost model at batch ${costBatches.join(' and ')}; relative time, lower is faster):`];
  const seen = new Set<string>();
  for (const step of programs.flatMap((p) => p.steps)) {
    if (step.op !== 'conv_infer' || seen.has(step.kernel)) continue;
    seen.add(step.kernel);
    const c = step.consts;
    const shape = `${c.R}x${c.S}/${c.sh} ${c.C}→${c.K} on ${c.H}x${c.W}`;
    if (c.u8Mean) {
      lines.push(`  ${step.kernel.padEnd(28)} ${shape}: implicit GEMM (uint8 stem: its gather view normalised from the bytes; weights packed per call)`);
      continue;
    }
    if (!c.packed) {
      lines.push(`  ${step.kernel.padEnd(28)} ${shape}: implicit GEMM (weights not folded, so packed per call)`);
      continue;
    }
    const choice = chooseConvAlgorithm(c);
    lines.push(`  ${step.kernel.padEnd(28)} ${shape}: ${algorithmName(choice.algorithm)}: ${choice.reason}`);
    if (choice.large) lines.push(`  ${step.kernel.padEnd(28)} ${shape}, from batch ${choice.large.fromBatch}: ${algorithmName(choice.large.algorithm)}: ${choice.large.reason}`);
    if (choice.pointwiseGemm) lines.push(`  ${step.kernel.padEnd(28)} ${shape}, from batch ${choice.pointwiseGemm.fromBatch}: implicit GEMM, not the pointwise direct conv: ${choice.pointwiseGemm.reason}`);
  }
  return lines;
}
