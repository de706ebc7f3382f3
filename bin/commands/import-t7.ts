// `nincc import-t7 FILE.t7 --spec SPEC -o OUT.safetensors [--print]`: a Torch7 network's weights as a nincc checkpoint;
// with `--write-spec OUT.model --input CxHxW` instead of --spec, the spec is written from the file's network first.
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import type { ShapedModel } from '../../compiler/ir.js';
import { writeFileAtomicSync } from '../../runtime/io/atomic-write.js';
import { writeSafetensors } from '../../runtime/io/safetensors.js';
import { CHECKPOINT_FORMAT } from '../../runtime/model.js';
import { importNetwork } from '../../runtime/t7/import.js';
import { findNetwork, T7ImportError, torchPrintNetwork, type Network } from '../../runtime/t7/nn-modules.js';
import { specFromNetwork } from '../../runtime/t7/spec-writer.js';
import { readT7File, T7FormatError } from '../../runtime/t7/reader.js';
import { onePositional, stringOption, UsageError, type Command } from '../command.js';
import { requireModel } from '../spec-file.js';

export const importT7Command: Command = {
  name: 'import-t7',
  summary: "Import a Torch7 .t7 network's weights into a safetensors checkpoint for a spec, matching its modules to the spec's layers one for one.",
  usage: 'FILE.t7 (--spec SPEC | --write-spec OUT.model --input CxHxW [--name NAME]) -o OUT.safetensors [--print]',
  details: [
    "The network is the file itself, its `model` field, or a table with `modules`; nested nn.Sequentials are",
    'opened in order. nn.ConcatTable + nn.CAddTable match a residual block, nn.Concat(2)/nn.DepthConcat(2) a concat',
    'block, branch by branch (fb.resnet.torch ResNets). nn.* and cudnn.* classes are read alike. Any difference between a module and its layer',
    "is an error, except parameter-free layers the file lacks at the end (a missing LogSoftMax). With --print",
    "alone, only prints the file's network in Torch's format. Exit codes: 0 ok, 1 mismatch or corrupt file, 2 usage.",
    "--write-spec writes the spec the file's network is (its modules as layers, its containers as blocks; the input",
    "size, which a .t7 file does not hold, from --input) and imports into it. The matching rules are in docs/t7.md.",
  ].join('\n'),
  options: {
    spec: { type: 'string', value: 'SPEC', help: 'the .model spec the weights are for' },
    output: { type: 'string', short: 'o', value: 'OUT', help: 'the safetensors checkpoint to write (atomically)' },
    print: { type: 'boolean', help: "print the file's network in Torch's format" },
    'write-spec': { type: 'string', value: 'OUT.model', help: "write the spec of the file's network (instead of --spec) and import into it" },
    input: { type: 'string', value: 'CxHxW', help: 'with --write-spec: the image size the network takes, e.g. 3x224x224' },
    name: { type: 'string', value: 'NAME', help: "with --write-spec: the model's name (default: the file's base name)" },
  },
  async run(args) {
    const file = onePositional(args, importT7Command, '.t7 file');
    const specFile = stringOption(args, 'spec');
    const output = stringOption(args, 'output');
    const print = args.values.print === true;
    const writeSpec = stringOption(args, 'write-spec');
    const inputText = stringOption(args, 'input');
    const name = stringOption(args, 'name');
    if (writeSpec !== undefined && specFile !== undefined) throw new UsageError('give --spec (an existing spec) or --write-spec (a spec written from the file), not both');
    if (writeSpec === undefined && (inputText !== undefined || name !== undefined)) throw new UsageError('--input and --name go with --write-spec');
    if (!print || specFile !== undefined || output !== undefined || writeSpec !== undefined) {
      if (specFile === undefined && writeSpec === undefined) throw new UsageError(`--spec or --write-spec is required\nusage: nincc import-t7 ${importT7Command.usage}`);
      if (output === undefined) throw new UsageError(`-o is required\nusage: nincc import-t7 ${importT7Command.usage}`);
    }
    const input = writeSpec !== undefined ? imageShape(inputText) : undefined;
    checkReadable(file);
    let model: ShapedModel | undefined = specFile !== undefined ? requireModel(specFile).model : undefined;
    try {
      const network = findNetwork(readT7File(file));
      if (print) process.stdout.write(torchPrintNetwork(network) + '\n');
      if (writeSpec !== undefined && input) model = writtenSpec(network, writeSpec, { input, file, ...(name !== undefined ? { name } : {}) });
      if (!model || output === undefined) return 0;
      const result = importNetwork(model, network);
      for (const n of result.notes) process.stderr.write(`note: ${n}\n`);
      for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
      writeSafetensors(output, result.tensors, { format: CHECKPOINT_FORMAT, model: model.name, imported_from: basename(file) });
      const floats = [...result.tensors.values()].reduce((n, t) => n + t.data.length, 0);
      process.stdout.write(`wrote ${output}: ${result.tensors.size} tensors (${floats.toLocaleString('en-US')} floats) for ${model.name} from ${network.modules.length} modules of ${file}\n`);
      return 0;
    } catch (e) {
      if (e instanceof T7FormatError) process.stderr.write(`nincc import-t7: ${e.message}\n`);
      else if (e instanceof T7ImportError) process.stderr.write(`nincc import-t7: ${file}: ${e.message}\n`);
      else throw e;
      return 1;
    }
  },
};

/** `--input 3x224x224` as [C, H, W]. */
function imageShape(text: string | undefined): number[] {
  if (text === undefined) throw new UsageError('--write-spec needs --input CxHxW (a .t7 file does not say what size its network takes)');
  const dims = text.split('x').map(Number);
  if (dims.length !== 3 || dims.some((d) => !Number.isInteger(d) || d < 1)) throw new UsageError(`--input must be CxHxW with positive integers, e.g. 3x224x224, got ${text}`);
  return dims;
}

/** Writes the spec of the file's network and compiles it: its diagnostics name the written file's lines. */
function writtenSpec(network: Network, path: string, options: { input: readonly number[]; file: string; name?: string }): ShapedModel {
  const source = specFromNetwork(network, options);
  try {
    writeFileAtomicSync(path, source);
  } catch (e) {
    throw new UsageError(`cannot write ${path}: ${(e as Error).message}`);
  }
  const model = requireModel(path).model;
  process.stdout.write(`wrote ${path}: model ${model.name}, ${model.totals.params.toLocaleString('en-US')} parameters, output ${model.output.join('x')}\n`);
  return model;
}

function checkReadable(file: string): void {
  let isFile: boolean;
  try {
    isFile = statSync(file).isFile();
  } catch {
    throw new UsageError(`${file}: no such file`);
  }
  if (!isFile) throw new UsageError(`${file}: not a file`);
}
