// `nincc inspect FILE`: Torch's printout, the per-layer table and totals (or the same as JSON).
import { inspectJson, inspectText } from '../../compiler/report/inspect.js';
import { onePositional, type Command } from '../command.js';
import { requireModel } from '../spec-file.js';

export const inspect: Command = {
  name: 'inspect',
  summary: "Print the network in Torch7's nn.Sequential format, then one row per layer (output shape, parameters, multiply-accumulates per image, spec line) and the totals.",
  usage: '[--json] FILE',
  options: { json: { type: 'boolean', help: 'print { layers: [{index, torch, output, params, macs, line}], totals: {params, macs} } as JSON' } },
  async run(args) {
    const { model } = requireModel(onePositional(args, inspect, 'spec file'));
    process.stdout.write((args.values.json ? JSON.stringify(inspectJson(model), null, 2) : inspectText(model)) + '\n');
    return 0;
  },
};
