// report.txt: what a build made and why — the model, the fusions, the conv algorithms, the programs,
// the memory and the compile commands. A pure function of the compiled model and the toolchains' results.
import { tuneReport } from '../tune/tune-report.js';
import type { TunedChoices } from '../tune/tune-record.js';
import { wgradSplitsReport, type WgradSplitsChoice } from './wgrad-splits-report.js';
import type { NvccCheck } from '../backends/cuda/toolchain.js';
import type { ShapedModel } from '../ir.js';
import type { Compiled } from '../pipeline.js';
import { convAlgorithmReport } from '../schedule/cpu-conv-algorithm.js';
import { batchSplitReport } from '../schedule/cpu-infer-split-batch.js';
import { pairRegionReport } from '../schedule/cpu-pointwise-pair-region.js';
import { blockBandReport } from '../schedule/cpu-block-bands.js';
import { inlineCallReport } from '../schedule/cpu-region-inline-call.js';
import { wgrad1x1Report } from '../schedule/cpu-train-wgrad-1x1.js';
import { wgradStemReport } from '../schedule/cpu-train-stem-wgrad.js';
import { trainingFusionReport } from './fusion-report.js';
import { blockReport } from './block-report.js';
import { inspectText } from './inspect.js';
import { kernelTable } from './kernel-table.js';
import { torchModuleString } from './torch-print.js';

export function buildReport(model: ShapedModel, compiled: Compiled, compileCommand: string, cuda?: { command: string; nvcc: NvccCheck }, tuned?: TunedChoices, tuneOrigin?: string, splits?: WgradSplitsChoice): string {
  const { lowered, plan } = compiled;
  const blocks = blockReport(model, lowered.programs, lowered.inferenceGroups);
  const lines = [inspectText(model), ...(blocks.length > 0 ? ['', ...blocks] : []), '', 'Inference fusion (BN folded into the conv before it, ReLU in the GEMM epilogue or the residual add):'];
  for (const g of lowered.inferenceGroups) {
    const parts = [g.head, ...(g.bn ? [g.bn] : []), ...(g.add ? [g.add.layer] : []), ...(g.relu ? [g.relu] : [])];
    if (parts.length > 1) lines.push(`  (${parts.map((p) => p.index).join(') + (')}): ${parts.map((p) => torchModuleString(p)).join(' + ')} → k${g.head.index}_${g.head.kind}_infer`);
  }
  lines.push('', ...convAlgorithmReport(compiled.cpuPrograms));
  lines.push('', ...batchSplitReport(lowered.memory.inferSplit));
  const regions = pairRegionReport(compiled.cpuPrograms);
  if (regions.length > 0) lines.push('', ...regions);
  const blockRegions = blockBandReport(compiled.cpuPrograms);
  if (blockRegions.length > 0) lines.push('', ...blockRegions);
  if (plan.programs.infer) lines.push('', ...inlineCallReport(plan.macsPerImage, plan.programs.infer.inlineMaxBatch));
  const wgrad1x1 = wgrad1x1Report(compiled.cpuPrograms);
  if (wgrad1x1.length > 0) lines.push('', ...wgrad1x1);
  const wgradStem = wgradStemReport(compiled.cpuPrograms);
  if (wgradStem.length > 0) lines.push('', ...wgradStem);
  const train = lowered.programs.find((p) => p.name === 'train_forward_backward');
  const fusion = compiled.cuda && train ? trainingFusionReport(model, train, compiled.cuda.source.fused) : [];
  if (fusion.length > 0) lines.push('', ...fusion);
  lines.push('', 'Programs:');
  for (const [name, p] of Object.entries(plan.programs)) {
    lines.push(`  ${name}: ${p.steps.length} kernel call${p.steps.length === 1 ? '' : 's'}`);
    for (const s of p.steps) lines.push(`    ${s.kernel.padEnd(28)} ${s.source}`);
  }
  const s = plan.spaces;
  const mb = (floats: number) => `${((floats * 4) / 2 ** 20).toFixed(2)} MiB`;
  lines.push(
    '',
    'Memory (4-byte elements):',
    `  parameters ${s.param} (${mb(s.param)}), and as much again for gradients and momentum`,
    `  running statistics ${s.state}, fixed scratch ${s.fixed} (${mb(s.fixed)})`,
    `  activations ${s.act} per image (${mb(s.act)}), ${mb(s.act * plan.maxBatch)} at the maximum batch ${plan.maxBatch}`,
    '',
    `Compiled with: ${compileCommand}`,
  );
  const precision = plan.precision ?? 'fp32';
  const asked = model.train?.precision;
  lines.push('', `Precision: ${precision}${precision === 'bf16' ? ' (the convolutions, forward and both gradients, on bf16 tensor cores with fp32 accumulation; every other kernel, and all storage, fp32)' : ''}${compiled.cuda ? '' : asked && asked !== 'fp32' ? ` (the spec asks for ${asked}: the cpu kernels compute in fp32)` : ''}`);
  if (plan.imageInput) {
    // docs/design.md §4.2: the stem's kernels read the uint8 images; at bf16 they stay on the fp32 kernels.
    lines.push(`Input: uint8 N×H×W×C images, normalised by the first conv while loading (mean ${plan.imageInput.mean.join(' ')}, std ${plan.imageInput.std.join(' ')})${precision === 'bf16' ? '; its kernels stay on the fp32 SIMT convolution (the tensor-core kernels read float activations only)' : ''}`);
  }
  // Tensor-core tiles are chosen per layer: least padded work, then least staging per MAC (conv-mma-tile.ts).
  if (compiled.cuda) lines.push('', ...kernelTable(compiled.cuda.kernels));
  if (compiled.cuda && plan.precision === 'bf16') lines.push('', ...tuneReport(lowered.programs, tuned, tuneOrigin));
  if (compiled.cuda && plan.precision === 'bf16') lines.push('', ...wgradSplitsReport(lowered.programs, splits, compiled.cuda.kernels, cuda?.nvcc.kernels));
  if (cuda) {
    lines.push('', `CUDA kernels (kernels.cu: inference and the fused training programs) for the emu device: ${cuda.command}`);
    if (!cuda.nvcc.available) lines.push(`nvcc: not found (${cuda.nvcc.reason}), no GPU compile check and no kernels.fatbin`);
    else {
      lines.push(`nvcc (kernels.fatbin${cuda.nvcc.cached ? ', cache hit' : ''}): ${cuda.nvcc.command}`, 'ptxas registers, static shared memory and spills per kernel:');
      for (const k of cuda.nvcc.kernels) {
        lines.push(`  ${k.arch} ${k.kernel.padEnd(28)} ${String(k.registers).padStart(3)} registers, ${String(k.sharedBytes).padStart(5)} B smem, spill stores ${k.spillStores} B, loads ${k.spillLoads} B`);
      }
    }
  }
  if (plan.untrainable) lines.push('', `No training programs: ${plan.untrainable}.`);
  return lines.join('\n') + '\n';
}
