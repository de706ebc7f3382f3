// Which inference blocks' two 1x1 convs run as one banded region on the cpu (runtime/include/nincc/cpu/
// pointwise_pair.h, issue #19). At batch 1 a small 1x1 conv (under kForwardParallelMinMacs) runs serially,
// and split across the cores each layer reads what the other core wrote in the one before (bench/RESULTS.md
// i19r, i19z). The region gives each thread a band of the image's pixel tiles through both convs (the middle
// tile in its scratch, no barrier between them), so the second core has work and the middle activations
// stay in its cache. nin-fashion's three pairs with their pools, batch 1, 2 threads: 0.70-0.84x of the two
// kernels' time (bench/logs/i19C-pair-region-ab.out). Past batch 1 the region runs one image a band.
import type { OpConsts } from '../lower/ops.js';
import type { Program } from '../lower/program-ir.js';
import { chooseConvAlgorithm, type ConvConsts } from './cpu-conv-algorithm.js';

/** conv_gemm.h kForwardParallelMinMacs: below it a conv runs on one thread. */
export const forwardParallelMinMacs = 2 ** 20;
/** The shallowest ISA's depth block (simd.h kGemmDepthBlock, AVX2's): the second conv's depth must fit one. */
export const pairMaxChannels = 192;

export interface PairRegionChoice {
  readonly fuse: boolean;
  readonly why: string;
}

const isPlainPointwise = (c: ConvConsts) => c.R === 1 && c.S === 1 && c.sh === 1 && c.sw === 1 && c.ph === 0 && c.pw === 0;

/** Whether two folded 1x1 convs (first C -> K, second K -> K, each with its ReLU) run as one region. `on` false: the ablation cpuPairBands. */
export function choosePairRegion(first: ConvConsts, second: ConvConsts, on: boolean): PairRegionChoice {
  if (!on) return { fuse: false, why: 'the ablation cpuPairBands is off' };
  if (!isPlainPointwise(first) || !isPlainPointwise(second) || second.C !== first.K || second.K !== first.K) return { fuse: false, why: 'not two stride-1 unpadded 1x1 convs of one width' };
  if (first.C > pairMaxChannels || first.K > pairMaxChannels) return { fuse: false, why: `over ${pairMaxChannels} channels (one depth block of the shallowest ISA)` };
  const macs = [first, second].map((c) => c.C * c.K * c.H * c.W);
  const mi = macs.map((m) => (m / 2 ** 20).toFixed(2)).join(' and ');
  if (macs.some((m) => m >= forwardParallelMinMacs)) return { fuse: false, why: `a conv of the pair (${mi} Mi multiply-adds at batch 1) already splits across the threads` };
  for (const c of [first, second]) {
    const choice = chooseConvAlgorithm(c);
    if (choice.algorithm !== 'implicit_gemm' || choice.large || choice.pointwiseGemm) return { fuse: false, why: 'a conv of the pair takes the GEMM at some batch of the artifact (its output past L2)' };
  }
  return { fuse: true, why: `both convs (${mi} Mi multiply-adds at batch 1) are under the ${forwardParallelMinMacs / 2 ** 20} Mi a conv splits across the threads from` };
}

/** The pair's two convs as a region step's constants hold them (lower/infer.ts). */
export function regionConvs(c: OpConsts['pointwise_pair_infer']): readonly [ConvConsts, ConvConsts] {
  const conv = (C: number) => ({ C, H: c.H, W: c.W, K: c.K, R: 1, S: 1, sh: 1, sw: 1, ph: 0, pw: 0, ...(c.maxBatch !== undefined && { maxBatch: c.maxBatch }), ...(c.l3Bytes !== undefined && { l3Bytes: c.l3Bytes }) });
  return [conv(c.C), conv(c.K)];
}

/** report.txt's lines on the inference program's pair regions, with why each was chosen. */
export function pairRegionReport(programs: readonly Program[]): string[] {
  const steps = programs.filter((p) => p.name === 'infer').flatMap((p) => p.steps);
  const lines = steps.flatMap((s) => (s.op === 'pointwise_pair_infer' ? [`  ${s.kernel}: two 1x1 convs in bands of pixel tiles, one a thread at batch 1 (one image a band past it), the middle activations in each thread's scratch; ${choosePairRegion(...regionConvs(s.consts), true).why}.`] : []));
  return lines.length === 0 ? [] : ['CPU inference 1x1 pair regions (runtime/include/nincc/cpu/pointwise_pair.h; the ablation cpuPairBands turns them off):', ...lines];
}
