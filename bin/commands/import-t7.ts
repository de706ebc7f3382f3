// `nincc import-t7 FILE.t7 --spec SPEC -o OUT.safetensors [--print]`: a Torch7 network's weights as a nincc checkpoint.
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import type { ShapedModel } from '../../compiler/ir.js';
import { writeSafetensors } from '../../runtime/io/safetensors.js';
import { CHECKPOINT_FORMAT } from '../../runtime/model.js';
import { importNetwork } from '../../runtime/t7/import.js';
import { findNetwork, T7ImportError, torchPrintNetwork } from '../../runtime/t7/nn-modules.js';
import { readT7File, T7FormatError } from '../../runtime/t7/reader.js';
import { onePositional, stringOption, UsageError, type Command } from '../command.js';
import { requireModel } from '../spec-file.js';

export const importT7Command: Command = {
  name: 'import-t7',
  summary: "Import a Torch7 .t7 network's weights into a safetensors checkpoint for a spec, matching its modules to the spec's layers one for one.",
  usage: 'FILE.t7 --spec SPEC -o OUT.safetensors [--print]',
  details: [
    "The network is the file itself, its `model` field, or a table with `modules`; nested nn.Sequentials are",
    'opened in order. nn.ConcatTable + nn.CAddTable match a residual block, nn.Concat(2)/nn.DepthConcat(2) a concat',
    'block, branch by branch (fb.resnet.torch ResNets). nn.* and cudnn.* classes are read alike. Any difference between a module and its layer',
    "is an error, except parameter-free layers the file lacks at the end (a missing LogSoftMax). With --print",
    "alone, only prints the file's network in Torch's format. Exit codes: 0 ok, 1 mismatch or corrupt file, 2 usage.",
    'The matching rules and the reader are described in docs/t7.md.',
  ].join('\n'),
  options: {
    spec: { type: 'string', value: 'SPEC', help: 'the .model spec the weights are for' },
    output: { type: 'string', short: 'o', value: 'OUT', help: 'the safetensors checkpoint to write (atomically)' },
    print: { type: 'boolean', help: "print the file's network in Torch's format" },
  },
  async run(args) {
    const file = onePositional(args, importT7Command, '.t7 file');
    const specFile = stringOption(args, 'spec');
    const output = stringOption(args, 'output');
    const print = args.values.print === true;
    if (!print || specFile !== undefined || output !== undefined) {
      if (specFile === undefined) throw new UsageError(`--spec is required\nusage: nincc import-t7 ${importT7Command.usage}`);
      if (output === undefined) throw new UsageError(`-o is required\nusage: nincc import-t7 ${importT7Command.usage}`);
    }
    checkReadable(file);
    const model: ShapedModel | undefined = specFile !== undefined ? requireModel(specFile).model : undefined;
    try {
      const network = findNetwork(readT7File(file));
      if (print) process.stdout.write(torchPrintNetwork(network) + '\n');
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

function checkReadable(file: string): void {
  let isFile: boolean;
  try {
    isFile = statSync(file).isFile();
  } catch {
    throw new UsageError(`${file}: no such file`);
  }
  if (!isFile) throw new UsageError(`${file}: not a file`);
}
