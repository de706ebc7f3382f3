// Pass (report only): the fused structure of a cuda/emu training program, for report.txt — per
// spec layer, the kernels that compute it and what each fuses, then the totals a reader checks first:
// how many conv→bn→relu groups ran as one conv kernel plus one finalize, how many residual adds ran as
// one pass with their branch ends' BN and the block's ReLU (and why not in a conv epilogue, as at inference) or
// inside the average pool that alone reads them,
// and how many passes over an activation exist only to apply BN or ReLU (none, for NIN) or to add (an unfused
// merge, a sum of a fanned-out value's gradients).
import type { ShapedModel } from '../ir.js';
import { maskFromEnds } from '../lower/ops.js';
import { firstReaderOfAdd, poolTakingAdd } from '../lower/chain.js';
import type { Program, StepOf } from '../lower/program-ir.js';
import { torchModuleString } from './torch-print.js';

export function trainingFusionReport(model: ShapedModel, program: Program, fused: ReadonlyMap<string, string>): string[] {
  const lines = [`Training fusion (${program.name}, cuda/emu kernels; docs/design.md §4):`];
  const byLayer = new Map<number, string[]>();
  for (const s of program.steps) {
    const list = byLayer.get(s.layer) ?? [];
    list.push(`${s.kernel}${fused.get(s.kernel) ? ` [${fused.get(s.kernel)}]` : ''}`);
    byLayer.set(s.layer, list);
  }
  model.layers.forEach((l, i) => {
    const kernels = byLayer.get(l.index);
    const poolAt = poolTakingAdd(model.layers, i);
    const pool = poolAt === undefined ? undefined : byLayer.get(model.layers[poolAt].index)?.some((k) => k.includes('_avgpool_add_')) ? model.layers[poolAt] : undefined;
    // An add that the conv reading it first computes as it loads (addInNextConv) has only its backward here.
    const readerAt = firstReaderOfAdd(model.layers, i);
    const summer = readerAt === undefined ? undefined : program.steps.find((s) => s.layer === model.layers[readerAt].index && s.op === 'conv_fwd_fused' && s.consts.sumInput === true);
    // And its backward, that conv's data gradient (addBwdInDgrad).
    const dgrad = readerAt === undefined ? undefined : program.steps.find((s) => s.layer === model.layers[readerAt].index && s.op === 'conv_dgrad_fused' && s.consts.addBwd === true);
    const elsewhere = [summer && `forward in ${summer.kernel} as it loads`, dgrad && `backward in ${dgrad.kernel}'s epilogue`].filter(Boolean);
    const what = kernels
      ? `${elsewhere.map((s) => `${s}; `).join('')}${kernels.join(', ')}`
      : elsewhere.length > 0
        ? `no kernel: ${elsewhere.join('; ')}`
      : pool
        ? `no kernel: added by the average pool (${pool.index}) that alone reads it, as it loads`
        : l.kind === 'relu'
        ? "no kernel: applied by the next kernel's prologue (forward) and folded into the gradient kernels (backward)"
        : l.kind === 'view'
          ? 'no kernel: a view of the same memory'
          : 'no kernel';
    lines.push(`  (${l.index}) ${torchModuleString(l)}: ${what}`);
  });
  const whole = byLayer.get(0);
  if (whole) lines.push(`  whole model: ${whole.join(', ')}`);

  // conv→bn→relu groups and the separate activation passes, counted from the program itself.
  const forward = program.steps.filter((s) => s.op === 'conv_fwd_fused');
  const groups = model.layers.filter((l, i) => l.kind === 'conv' && model.layers[i + 1]?.kind === 'bn' && model.layers[i + 2]?.kind === 'relu');
  const oneKernel = groups.filter((g) => {
    const bnIndex = g.index + 1;
    const steps = program.steps.filter((s) => s.layer === g.index || s.layer === bnIndex || s.layer === g.index + 2);
    const fwd = steps.filter((s) => s.op === 'conv_fwd_fused' && s.consts.stats === true).length;
    const finalize = steps.filter((s) => s.op === 'bn_finalize').length;
    const separate = steps.filter((s) => ['bn_stats', 'act_apply', 'bn_fwd_train', 'relu_fwd'].includes(s.op)).length;
    return fwd === 1 && finalize === 1 && separate === 0;
  });
  const passes = program.steps.filter((s) => ['act_apply', 'grad_rebuild', 'act_bwd_stats', 'bn_stats', 'bn_fwd_train', 'bn_bwd', 'relu_fwd', 'relu_bwd'].includes(s.op));
  const merges = model.layers.filter((l) => l.kind === 'add');
  const fusedAdds = merges.filter((l) => program.steps.some((s) => s.layer === l.index && s.op === 'add_apply'));
  // The adds that the conv reading them first computes as it loads (addInNextConv): its forward has the block's ends.
  const summing = program.steps.filter((s) => s.op === 'conv_fwd_fused' && s.consts.sumInput === true);
  // The adds whose backward the data gradient of the conv reading them first does (addBwdInDgrad).
  const inDgrad = program.steps.filter((s) => s.op === 'conv_dgrad_fused' && s.consts.addBwd === true);
  const adds = program.steps.filter((s) => s.op === 'add');
  // A chain without blocks has neither line (its report is as before blocks existed).
  const backward = program.steps.filter((s): s is StepOf<'add_bwd_fused'> => s.op === 'add_bwd_fused');
  const fromEnds = backward.filter((s) => maskFromEnds(s.consts));
  const pooled = program.steps.filter((s) => s.op === 'avgpool_add_fwd' || s.op === 'avgpool_add_bwd');
  const stored = fusedAdds.length + summing.length > 0 ? [
    // Why training keeps these passes where inference has none (docs/design.md §4 weighs the alternatives).
    `  none in a conv epilogue (as at inference): a branch closing in conv → bn applies that BN with the conv's batch statistics, complete only once the conv has run over the whole batch; ${summing.length > 0 ? 'add_apply or the conv that adds as it loads' : 'add_apply'} is the one pass that writes the block output, which its readers (a conv, the next block's add) and the backward read again (docs/design.md §4)`,
    `  ${fromEnds.length} of ${backward.length} add_bwd_fused passes recompute the ReLU mask from the two branch ends they read for the BN partials, instead of reading the block output (both ends with a pending BN: a projection shortcut)`,
  ] : [];
  const blockLines = merges.length === 0 && adds.length === 0 ? [] : [
    `  ${fusedAdds.length} of ${merges.length} residual adds run forward as one pass per branch after the first (add_apply: the branch ends' pending BN/ReLU applied on load, the block's ReLU after the last) and backward ${inDgrad.length > 0 ? 'in one add_bwd_fused pass or a data gradient (below)' : "likewise (add_bwd_fused: dReLU and the ends' BN partials)"}`,
    ...(summing.length > 0 ? [`  ${summing.length} of ${merges.length} residual adds run forward in the prologue of the conv that reads them first (addInNextConv: ${summing.map((s) => s.kernel).join(', ')}), whose first output-channel tile stores the block output; backward: ${inDgrad.length > 0 ? "that conv's data gradient (below)" : 'add_bwd_fused'}`] : []),
    ...(inDgrad.length > 0 ? [`  ${inDgrad.length} of ${merges.length} residual adds run backward in no pass of their own: the data gradient of the conv that reads one first, the last of the block output's gradients, masks it by the block's ReLU as it stores it and writes the branch ends' BN partials (addBwdInDgrad: ${inDgrad.map((s) => s.kernel).join(', ')})`] : []),
    ...stored,
    `  ${pooled.filter((s) => s.op === 'avgpool_add_fwd').length} of ${merges.length} residual adds run in no pass of their own: the average pool that alone reads one applies its ends' pending BN/ReLU, adds and applies the block's ReLU as it loads, the sum never stored, and the pool's backward masks its gradient by that ReLU recomputed from the ends and writes their BN partials in the same pass (avgpool_add_fwd, avgpool_add_bwd${pooled.length ? `: ${pooled.map((s) => s.kernel).join(', ')}` : ''})`,
    `  other add passes over activations: ${adds.length}${adds.length ? ` (${adds.map((s) => s.kernel).join(', ')}: ${adds.every((s) => s.layer !== 0 && model.layers[s.layer - 1]?.kind !== 'add') ? "sums of a fanned-out value's gradients" : 'merges and gradient sums'})` : ''}`,
  ];
  lines.push(
    ...blockLines,
    `  ${oneKernel.length} of ${groups.length} conv→bn→relu groups run forward as one conv kernel (statistics in its epilogue) plus one bn_finalize; ${forward.length} conv kernels in all`,
    `  separate BN/ReLU passes over activations: ${passes.length}${passes.length ? ` (${passes.map((s) => s.kernel).join(', ')})` : ''}`,
  );
  return lines;
}
