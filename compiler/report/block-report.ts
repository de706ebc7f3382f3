// report.txt's block section: how each residual/concat block of the spec was lowered — the merge after its
// branches, the kernels that compute it in training and at inference (a residual add in the epilogue of
// the conv closing a branch, a concat written in place by its branches' convs), and where fanned-out
// gradients are summed.
import { isMerge, type ShapedModel } from '../ir.js';
import type { Program, StepOf } from '../lower/program-ir.js';
import { concatsInPlace, type InferenceGroup } from '../lower/infer.js';
import { firstReaderOfAdd, inputsOf, poolTakingAdd } from '../lower/chain.js';
import { torchModuleString } from './torch-print.js';
import { centreTapCoversInput } from '../backends/cuda/conv.js';

/** The cpu training steps of a concat branch end written in place (lower/train.ts concatSlots), forward and backward. */
const SLOT_FORWARD = ['relu_fwd_slice', 'tanh_fwd_slice', 'bn_fwd_train', 'maxpool_fwd', 'avgpool_fwd', 'conv_fwd'];
const SLOT_BACKWARD = ['relu_bwd_slice', 'tanh_bwd_slice', 'bn_bwd', 'maxpool_bwd', 'avgpool_bwd', 'conv_bwd_weight', 'conv_bwd_data'];
const writesSlot = (s: Program['steps'][number]) => s.op.endsWith('_slice') || (s.consts as { outTotal?: number }).outTotal !== undefined || (s.consts as { yTotal?: number }).yTotal !== undefined;
/** SLOT_ENDS in words: the layers whose pass writes a concat branch end's slice itself. */
const SLOT_END_WORDS = 'a ReLU, BN, Tanh, pool or conv (not reading the model input)';

/**
 * Why a two-branch add's pass stays although a conv reads it first (docs/design.md §4): a strided reader reaches no
 * element once at one tap; a k×k one would load each element R·S times per output-channel tile, a loss in the profile
 * model, so the rule (addInNextPointwiseConv, fp32 and bf16) takes 1×1 readers only, and the opt-in addInNextConv (fp32) any.
 */
function whyNotInReader(shape: readonly number[], reader: ShapedModel['layers'][number] | undefined): string {
  if (reader?.kind !== 'conv') return '';
  const a = reader.attrs;
  const [C, H, W] = [shape[0], shape[1] ?? 1, shape[2] ?? 1];
  const covers = centreTapCoversInput({ C, H, W, K: a.nOut, P: reader.output[1] ?? 1, Q: reader.output[2] ?? 1, R: a.kH, S: a.kW, sh: a.dH, sw: a.dW, ph: a.padH, pw: a.padW });
  if (!covers) return ` (its first reader, the conv (${reader.index}), is strided or resizes: no one tap reaches every element, so it cannot add as it loads)`;
  if (a.kH * a.kW > 1) return ` (its first reader, the ${a.kH}×${a.kW} conv (${reader.index}), would load each element ${a.kH * a.kW} times per output-channel tile: adds as it loads in 1×1 readers only, unless the fp32 opt-in addInNextConv)`;
  return ` (its first reader, the 1×1 conv (${reader.index}), adds as it loads with addInNextPointwiseConv only, off in this build)`;
}

const kernelsOf = (p: Program | undefined, layer: number, op?: string) => [...new Set((p?.steps ?? []).filter((s) => s.layer === layer && (!op || s.op === op)).map((s) => s.kernel))];

export function blockReport(model: ShapedModel, programs: readonly Program[], groups: readonly InferenceGroup[]): string[] {
  if (!model.layers.some(isMerge)) return [];
  const train = programs.find((p) => p.name === 'train_forward_backward');
  const infer = programs.find((p) => p.name === 'infer');
  const inPlace = concatsInPlace(model.layers, groups);
  // A model without training programs (report.txt's last line says why) has no training kernels to name.
  const noTraining = '      training: none (no training programs)';
  const concats: boolean[] = []; // per concat block: whether its training program copies no branch end
  const lines = [
    'Blocks (opened by front/lowerable.ts: each branch reads the block\'s input, kept live until its last reader; the merge follows the branches).',
    '(N) is a layer\'s position in the lowered chain, as in the kernel names k<N>_… and the Programs below, which give each one\'s spec line:',
  ];
  model.layers.forEach((l, i) => {
    if (!isMerge(l)) return;
    const from = inputsOf(model.layers, i).map((p) => `(${p + 1})`);
    const sites = l.callSites.map((c) => ` in ${c.def}(${c.args.join(', ')}) at line ${c.span.start.line}`).join(',');
    const where = `${l.span.file.split('/').pop()}:${l.span.start.line}:${l.span.start.column}${sites}`;
    const what = l.kind === 'add' ? `${from.join(' + ')}` : `${from.join(', ')} along channels`;
    lines.push(`  (${l.index}) ${torchModuleString(l)} of ${what}: the ${l.kind === 'add' ? 'residual' : 'concat'} block at ${where}`);
    const fwd = kernelsOf(train, l.index, l.kind === 'add' ? 'add' : 'concat_place');
    // A slice taken with its end's BN partials (concat_take_stats) says so; the kernels in program order.
    const bwd = l.kind !== 'concat' ? [] : [...new Set((train?.steps ?? []).filter((s) => s.layer === l.index && (s.op === 'concat_take' || s.op === 'concat_take_stats')).map((s) => `${s.kernel}${s.op === 'concat_take_stats' ? " with its end's BN partials" : ''}`))];
    const next = model.layers[i + 1];
    const inferKernels = kernelsOf(infer, l.index);
    const fusedRelu = infer?.steps.some((s) => s.layer === l.index && s.op === 'add_infer' && s.consts.relu);
    const closing = groups.find((g) => g.add?.layer === l);
    if (l.kind === 'add') {
      const trainRelu = train?.steps.some((s) => s.layer === l.index && s.op === 'add' && s.consts.relu);
      const reluKernel = train?.steps.some((s) => s.layer === next?.index && s.op === 'relu_fwd');
      const relu =
        next?.kind !== 'relu' ? '' : trainRelu ? ` with the ReLU (${next.index}) in the same pass` : reluKernel ? `, then the ReLU (${next.index}) as its own kernel` : `, the ReLU (${next.index}) pending: applied by the kernels that read the sum`;
      // cpu training: the BN closing a branch may have added the shortcut (and the ReLU) in its own pass.
      const bnPass = train?.steps.find((s): s is StepOf<'bn_fwd_train'> => s.op === 'bn_fwd_train' && s.consts.residual === true && inputsOf(model.layers, i).some((p) => model.layers[p]?.index === s.layer));
      const fusedTraining = train?.steps.find((s): s is StepOf<'add_apply'> => s.layer === l.index && s.op === 'add_apply');
      // The fused training program may leave the add to the average pool that alone reads it (or its ReLU).
      const poolAt = poolTakingAdd(model.layers, i);
      const pool = poolAt === undefined ? undefined : model.layers[poolAt];
      const pooled = pool && train?.steps.find((s): s is StepOf<'avgpool_add_fwd'> => s.layer === pool.index && s.op === 'avgpool_add_fwd');
      // Or to the conv that reads it first, which adds as it loads and stores the sum (addInNextConv).
      const readerAt = firstReaderOfAdd(model.layers, i);
      const reader = readerAt === undefined ? undefined : model.layers[readerAt];
      const summing = reader && train?.steps.find((s): s is StepOf<'conv_fwd_fused'> => s.layer === reader.index && s.op === 'conv_fwd_fused' && s.consts.sumInput === true);
      // Its backward, by the data gradient of that conv (addBwdInDgrad), the last of the block output's gradients.
      const dgrad = reader && train?.steps.find((s): s is StepOf<'conv_dgrad_fused'> => s.layer === reader.index && s.op === 'conv_dgrad_fused' && s.consts.addBwd === true);
      const inDgrad = dgrad && reader ? `no pass of its own: ${dgrad.kernel}, the data gradient of the conv (${reader.index}) that reads it first (the last of its gradients), ${dgrad.consts.sumRelu ? 'masks it by the ReLU as it stores it' : 'stores it'} and writes the branch ends' BN partials` : undefined;
      if (!train) lines.push(noTraining);
      else if (summing && reader) {
        const bwdFused = kernelsOf(train, l.index, 'add_bwd_fused');
        lines.push(`      training: no pass of its own: ${summing.kernel}, the conv (${reader.index}) that reads it first, applies both branch ends' pending BN/ReLU and adds${summing.consts.sumRelu ? `, then the ReLU (${next?.index})` : ''}, as it loads, the blocks of its first output-channel tile storing the sum for its other readers; backward: ${bwdFused.length ? `one pass ${bwdFused.join(', ')}` : inDgrad ?? 'no kernel'}, the gradient passed to each branch end`);
      } else if (pooled && pool) {
        const bwdPooled = kernelsOf(train, pool.index, 'avgpool_add_bwd');
        lines.push(`      training: no pass of its own: ${pooled.kernel}, the average pool (${pool.index}) that alone reads it, applies both branch ends' pending BN/ReLU and adds${pooled.consts.relu ? `, then the ReLU (${next?.index})` : ''}, as it loads (the sum never stored); backward: ${bwdPooled.length ? `${bwdPooled.join(', ')}, the pool's gradient${pooled.consts.relu ? ' masked by the ReLU' : ''} passed to each branch end in the same pass` : 'no kernel'}`);
      } else if (bnPass) {
        lines.push(`      training: add fused into the BN pass ${bnPass.kernel} (the BN (${bnPass.layer}) closing its branch${bnPass.consts.relu ? `, then the ReLU (${next?.index})` : ''}); the backward passes the gradient to each branch unchanged`);
      } else if (fusedTraining) {
        const bwdFused = train?.steps.find((s) => s.layer === l.index && s.op === 'add_bwd_fused');
        lines.push(`      training: one pass ${fusedTraining.kernel} applies both branch ends' pending BN/ReLU, adds${fusedTraining.consts.relu ? ` and applies the ReLU (${next?.index})` : ''}${whyNotInReader(l.output, reader)}; backward: ${bwdFused ? `one pass ${bwdFused.kernel}` : inDgrad ?? 'no kernel'}, the gradient passed to each branch end`);
      } else lines.push(`      training: a separate add kernel ${fwd.join(', ') || '(none)'}${relu}; the backward passes the gradient to each branch unchanged`);
      if (closing) {
        const shortcut = closing.add!.shortcut;
        const kernel = kernelsOf(infer, closing.head.index, 'conv_infer').join(', ');
        lines.push(`      inference: add fused into ${kernel} epilogue (the conv (${closing.head.index}) closing its branch; the shortcut ${shortcut < 0 ? 'the model input' : `(${shortcut + 1})`} added${closing.relu ? `, then the ReLU (${closing.relu.index})` : ''})`);
      } else lines.push(`      inference: ${inferKernels.join(', ')}${fusedRelu ? ` (the add and the ReLU (${next?.index}) in one pass)` : ''}`);
    } else {
      // The fused training program's concat_apply applies a branch end's pending BN/ReLU as it writes the slice.
      const applying = (train?.steps ?? []).filter((s): s is StepOf<'concat_apply'> => s.layer === l.index && s.op === 'concat_apply');
      const pending = applying.filter((s) => s.consts.inBn || s.consts.inRelu).map((s) => s.kernel);
      const copies = [...fwd, ...applying.filter((s) => !s.consts.inBn && !s.consts.inRelu).map((s) => s.kernel)];
      // The cpu training program's branch ends that write their slice themselves (lower/train.ts concatSlots):
      // the end's layer (position p + 1), or the BN applying a ReLU end (position p), and their backwards reading it there.
      const endLayers = new Set(inputsOf(model.layers, i).flatMap((p) => [p, p + 1]));
      const inSlot = (ops: readonly string[]) => (train?.steps ?? []).filter((s) => endLayers.has(s.layer) && ops.includes(s.op) && writesSlot(s)).map((s) => s.kernel);
      const slotted = inSlot(SLOT_FORWARD);
      const slottedBwd = inSlot(SLOT_BACKWARD);
      const ends = pending.length + slotted.length;
      const written = [
        pending.length > 0 && `${pending.length} branch end${pending.length > 1 ? 's' : ''} written into ${pending.length > 1 ? 'their channel slices' : 'its channel slice'} by the pass that applies ${pending.length > 1 ? 'their' : 'its'} pending BN/ReLU (${pending.join(', ')}: no other pass over ${pending.length > 1 ? 'them' : 'it'})`,
        slotted.length > 0 && `${slotted.length} branch end${slotted.length > 1 ? 's' : ''} written into ${slotted.length > 1 ? 'their channel slices' : 'its channel slice'} by ${slotted.length > 1 ? 'their' : 'its'} own pass (${slotted.join(', ')}: no copy)`,
        copies.length > 0 && (ends > 0 ? `${copies.length} copied into ${copies.length > 1 ? 'their slices' : 'its slice'} (${copies.join(', ')})` : `each branch's output copied into its channel slice (${copies.join(', ')})`),
      ].filter(Boolean).join(', ');
      const back = [bwd.length > 0 && `the gradient's slices copied back out (${bwd.join(', ')})`, slottedBwd.length > 0 && `the gradient's slices read in place by ${slottedBwd.join(', ')}`].filter(Boolean).join(', ');
      lines.push(train ? `      training: ${written}, ${back}` : noTraining);
      concats.push(copies.length === 0);
      const writers = inputsOf(model.layers, i).map((p) => ({ p, g: inPlace.get(p)?.at === i ? groups.find((g) => g.at === p) : undefined }));
      const inPlaceEnds = writers.filter((w) => w.g).map((w) => `(${w.p + 1}) by ${kernelsOf(infer, w.g!.head.index, 'conv_infer').join(', ')}`);
      const copied = kernelsOf(infer, l.index, 'concat_place');
      if (inPlaceEnds.length === writers.length) lines.push(`      inference: concat in place, each branch's closing conv writing its channel slice: ${inPlaceEnds.join(', ')}`);
      else if (inPlaceEnds.length > 0) lines.push(`      inference: ${inPlaceEnds.length} branch ends written into their channel slices by their closing conv: ${inPlaceEnds.join(', ')}; the others, not a conv's output that only the concat reads, copied (${copied.join(', ')})`);
      else lines.push(`      inference: each branch copied (${copied.join(', ')}): no branch ends in a conv that only the concat reads`);
    }
  });
  const copyFree = concats.filter(Boolean).length;
  if (train && concats.length > 0) lines.push(`  concats with no copy in training: ${copyFree} of ${concats.length}${copyFree < concats.length ? ` (the others copy a branch end that is not ${SLOT_END_WORDS} only the concat reads)` : ''}`);
  // A value several layers read (a block's input) gets the sum of their gradients: an add per extra reader.
  const sums = (train?.steps ?? []).filter((s) => s.op === 'add' && !isMerge(model.layers[s.layer - 1]));
  const calls = new Map<string, { layer: number; count: number }>();
  for (const s of sums) calls.set(s.kernel, { layer: s.layer, count: (calls.get(s.kernel)?.count ?? 0) + 1 });
  const listed = [...calls].map(([kernel, c]) => `${kernel}${c.count > 1 ? ` ×${c.count}` : ''} (the output of layer ${c.layer})`);
  if (listed.length > 0) lines.push(`  gradient sums of fanned-out values: ${listed.join(', ')}`);
  // The others are added by the conv backward-data pass that produces the last of a value's gradients.
  const inDgrad = (train?.steps ?? []).filter((s) => (s.op === 'conv_bwd_data' || s.op === 'conv_dgrad_fused') && s.consts.addend === true).map((s) => s.kernel);
  if (inDgrad.length > 0) lines.push(`  gradient sums of fanned-out values in a conv's backward-data pass (no add kernel): ${inDgrad.join(', ')}`);
  return lines;
}
