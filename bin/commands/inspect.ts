// `nincc inspect FILE`: Torch's printout, the per-layer table and totals (or the same as JSON).
import { inspectJson, inspectText } from '../../compiler/report/inspect.js';
import { onePositional, type Command } from '../command.js';
import { requireNetwork } from '../spec-file.js';

export const inspect: Command = {
  name: 'inspect',
  summary: "Print the network in Torch7's print(model) format (nested nn.ConcatTable/nn.Concat for blocks), then one row per layer (output shape, parameters, multiply-accumulates per image, spec line) and the totals.",
  usage: '[--json] FILE',
  options: { json: { type: 'boolean', help: 'print { layers: [{index, path?, torch, output, params, macs, line}], totals: {params, macs} } as JSON (path: the Torch module path inside blocks, e.g. 4.1.2)' } },
  async run(args) {
    const { network } = requireNetwork(onePositional(args, inspect, 'spec file'));
    process.stdout.write((args.values.json ? JSON.stringify(inspectJson(network), null, 2) : inspectText(network)) + '\n');
    return 0;
  },
};
