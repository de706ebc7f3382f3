// Whether the CPU runs an inference program on slices of the batch at once (plan.json `splitBatch`, issue #19):
// each of the pool's threads runs every layer on its own images, with every kernel serial inside it, instead of
// every layer splitting its work across the threads. The split is even by construction (whole images, the
// same layers) and has no barrier between layers: on 2 threads nin-fashion's per-layer tasks (4 to 25 per
// layer on 28x28 .. 7x7 planes) did not balance (bench/logs/i19l-infer-scaling-loaded.out). A batch the
// threads do not divide, under 4 images a thread, keeps the per-layer split (runtime/core/executor.cc batchParts).
import type { BufferDecl, KernelStep, Program } from '../lower/program-ir.js';
import type { OpKind } from '../lower/ops.js';

/**
 * The ops whose kernels compute each image from that image alone, reading and writing only batch-major act
 * buffers (N images of `size` elements each, NCHW) and the shared weights: a slice of images is a call
 * with a smaller N and act pointers moved by whole images. Training ops (batch statistics, losses, dropout
 * masks keyed by element index, weight gradients) are not among them.
 */
const perImageOps: ReadonlySet<OpKind> = new Set<OpKind>([
  'conv_infer',
  'bn_eval',
  'relu_fwd',
  'relu_fwd_slice',
  'tanh_fwd',
  'tanh_fwd_slice',
  'sigmoid_fwd',
  'threshold_fwd',
  'lrn_fwd',
  'zeropad_fwd',
  'add_infer',
  'concat_place',
  'maxpool_fwd_infer',
  'pointwise_pair_infer',
  'block_band_infer',
  'avgpool_fwd',
  'linear_infer',
  'logsoftmax_fwd',
  'softmax_fwd',
]);

export interface BatchSplit {
  readonly split: boolean;
  readonly why: string;
}

/** Why a step keeps the program from being split, or undefined when it can run on a slice of the batch. */
function stepProblem(step: KernelStep, buffers: ReadonlyMap<string, BufferDecl>): string | undefined {
  if (!perImageOps.has(step.op)) return `${step.kernel} (${step.op}) is not computed image by image`;
  for (const id of step.args) {
    const b = buffers.get(id);
    if (!b) throw new Error(`internal error: ${step.kernel} names unknown buffer ${id}`);
    if (b.space !== 'act') continue;
    // A bf16 buffer packs two values per 4-byte element, a uint8 one four: image i starts at i*size elements
    // only when an image fills whole elements.
    if (b.dtype === 'bf16') return `${step.kernel} takes the bf16 buffer ${id}`;
    if (b.dtype === 'u8' && step.op === 'conv_infer' && (step.consts.C * step.consts.H * step.consts.W) % 4 !== 0)
      return `${step.kernel} reads uint8 images of ${step.consts.C * step.consts.H * step.consts.W} bytes, not whole 4-byte elements`;
  }
  return undefined;
}

/**
 * Whether a program may run on slices of the batch at once: only the inference program, and only when every
 * step is per image. A slice's thread may be several layers ahead of another's, writing a later buffer while
 * the other still reads an earlier one that liveness alone would let the two share, so lower/memory.ts places
 * its buffers apart: each slice's in a region of its own (plan.json splitLocal), or all disjoint.
 */
export function batchSplitEligibility(program: Program, buffers: readonly BufferDecl[]): BatchSplit {
  if (program.name !== 'infer') return { split: false, why: 'not the inference program' };
  const byId = new Map(buffers.map((b) => [b.id, b]));
  for (const step of program.steps) {
    const problem = stepProblem(step, byId);
    if (problem) return { split: false, why: problem };
  }
  return { split: true, why: 'every step computes each image from that image alone' };
}

/**
 * The memory side of the choice: the split's buffers take `size` elements per image (`local`: the program's
 * inputs and outputs disjoint, the rest shared by liveness in each slice's own region; else all disjoint) where
 * the arena already holds `arena` for the other programs (training's saved activations). The split is kept while
 * it grows the arena by at most kSplitGrowthBytes per image (nin-fashion: none; NIN: see report.txt), since act
 * memory is per image times maxBatch.
 */
export const kSplitGrowthBytes = 4 << 20;
export function batchSplitFits(size: number, arena: number, local = false): BatchSplit {
  const growth = Math.max(0, size - arena) * 4;
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MiB`;
  const layout = local ? 'its inputs and outputs disjoint and its other buffers shared by liveness within each slice (plan.json splitLocal)' : 'all disjoint';
  return growth <= kSplitGrowthBytes
    ? { split: true, why: `its buffers, ${layout}, take ${mib(size * 4)} per image, growing the activation space by ${mib(growth)} per image (at most ${mib(kSplitGrowthBytes)})` }
    : { split: false, why: `its buffers, ${layout}, would grow the activation space by ${mib(growth)} per image, past ${mib(kSplitGrowthBytes)}` };
}

/** report.txt's lines on the inference program's batch split (lower/memory.ts decided it). */
export function batchSplitReport(split: BatchSplit | undefined): string[] {
  if (!split) return [];
  return [
    'CPU inference threads (runtime/core/executor.cc batchParts):',
    split.split
      ? `  a batch of N images on T threads runs as T slices of whole images at once when T divides N or N >= 4T, each thread running every layer on its own slice with serial kernels: even by construction, no barrier between layers; any other batch splits each layer's work instead. Chosen as every step computes each image from that image alone and ${split.why}. NINCC_SPLIT_BATCH=0 turns the slices off.`
      : `  each layer splits its own work across the threads: no batch split, as ${split.why}.`,
  ];
}
