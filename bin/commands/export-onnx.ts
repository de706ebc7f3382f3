// `nincc export-onnx DIR|FILE -o model.onnx`: the inference graph and weights as an ONNX model.
import { existsSync, statSync } from 'node:fs';
import type { ShapedModel } from '../../compiler/ir.js';
import { writeFileAtomicSync } from '../../runtime/io/atomic-write.js';
import { checkOpset, DEFAULT_OPSET, exportOnnx, MAX_OPSET, MIN_OPSET } from '../../runtime/onnx/export-onnx.js';
import { ExportInputError, readArtifactModel, tensorsFromCheckpoint, tensorsFromSeed } from '../../runtime/onnx/export-inputs.js';
import { intOption, onePositional, stringOption, UsageError, type Command } from '../command.js';
import { requireModel } from '../spec-file.js';

/** The layer IR of an artifact directory, or of a spec file (compiled, not built: export needs no kernels). */
function modelOf(arg: string): ShapedModel {
  if (!existsSync(arg)) throw new UsageError(`${arg}: no such file or directory`);
  if (statSync(arg).isDirectory()) return readArtifactModel(arg);
  return requireModel(arg).model;
}

export const exportOnnxCommand: Command = {
  name: 'export-onnx',
  summary: 'Export the inference graph and its weights as an ONNX model (input images [N, C, H, W], output [N, classes]).',
  usage: 'DIR|FILE -o OUT.onnx [--weights W] [--keep-bn] [--opset N] [--seed S]',
  details: [
    'BN is folded into the conv before it, as nincc infers; --keep-bn keeps BatchNormalization nodes instead.',
    "Without --weights the parameters are initialised by Torch7's rules from --seed (default 1), as 'nincc infer' does.",
    `Opsets ${MIN_OPSET} to ${MAX_OPSET} (default ${DEFAULT_OPSET}); the batch dimension N is dynamic. See docs/onnx.md.`,
  ].join('\n'),
  options: {
    out: { type: 'string', short: 'o', value: 'OUT.onnx', help: 'the ONNX file to write' },
    weights: { type: 'string', value: 'W', help: 'a safetensors checkpoint (from nincc train or import)' },
    'keep-bn': { type: 'boolean', help: 'BatchNormalization nodes instead of BN folded into the conv weights' },
    opset: { type: 'string', value: 'N', help: `ONNX opset of the default domain, ${MIN_OPSET}..${MAX_OPSET} (default ${DEFAULT_OPSET})` },
    seed: { type: 'string', value: 'S', help: 'init seed when --weights is absent (default 1)' },
  },
  async run(args) {
    const target = onePositional(args, exportOnnxCommand, 'artifact directory or spec file');
    const out = stringOption(args, 'out');
    if (!out) throw new UsageError('-o OUT.onnx is required');
    const weights = stringOption(args, 'weights');
    const seed = intOption(args, 'seed', 0);
    if (weights !== undefined && seed !== undefined) throw new UsageError('--seed sets the init without --weights; give one or the other');
    const opset = intOption(args, 'opset', 1) ?? DEFAULT_OPSET;
    try {
      checkOpset(opset);
    } catch (e) {
      throw new UsageError(`--opset: ${(e as Error).message}`);
    }
    const keepBatchNorm = args.values['keep-bn'] === true;
    try {
      const model = modelOf(target);
      const tensors = weights !== undefined ? tensorsFromCheckpoint(model, weights) : tensorsFromSeed(model, seed ?? 1);
      const weightsSource = weights ?? `seed ${seed ?? 1}`;
      const bytes = exportOnnx(model, tensors, { keepBatchNorm, opset, weightsSource });
      try {
        writeFileAtomicSync(out, bytes);
      } catch (e) {
        throw new UsageError(`cannot write ${out}: ${(e as Error).message}`);
      }
      const mb = (bytes.length / 2 ** 20).toFixed(2);
      process.stdout.write(`wrote ${out} (model ${model.name}, opset ${opset}, ${mb} MiB, BN ${keepBatchNorm ? 'kept' : 'folded'}, weights ${weightsSource})\n`);
      return 0;
    } catch (e) {
      if (e instanceof ExportInputError) throw new UsageError(e.message);
      throw e;
    }
  },
};
