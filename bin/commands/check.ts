// `nincc check FILE`: parse, expand and shape-check a spec; exit 0 when it is valid.
import { renderDiagnostics, hasErrors } from '../../grammar/diagnostics.js';
import { onePositional, type Command } from '../command.js';
import { loadSpec } from '../spec-file.js';
import { netLayers } from '../../compiler/ir.js';

export const check: Command = {
  name: 'check',
  summary: 'Check a model spec: syntax, defs, arguments, shapes and the train block. Exit 0 when valid, 1 with diagnostics otherwise.',
  usage: '[--json] FILE',
  options: { json: { type: 'boolean', help: 'print the diagnostics as a JSON array ({code, severity, message, span, notes})' } },
  async run(args) {
    const file = onePositional(args, check, 'spec file');
    const s = loadSpec(file);
    if (args.values.json) process.stdout.write(JSON.stringify(s.diagnostics, null, 2) + '\n');
    else if (s.diagnostics.length > 0) process.stderr.write(renderDiagnostics(s.diagnostics, s.source) + '\n');
    const failed = hasErrors(s.diagnostics);
    if (!args.values.json && !failed) {
      const m = s.network!;
      process.stdout.write(`${file}: ok (model ${m.name}, ${netLayers(m.nodes).length} layers, ${m.totals.params.toLocaleString('en-US')} parameters)\n`);
    }
    return failed ? 1 : 0;
  },
};
