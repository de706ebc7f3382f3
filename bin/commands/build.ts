// `nincc build FILE -o DIR`: compile a spec into an artifact directory the runtime loads.
import { buildArtifact, TARGETS, type Target } from '../../compiler/build.js';
import { intOption, onePositional, stringOption, UsageError, type Command } from '../command.js';
import { requireModel } from '../spec-file.js';

export const build: Command = {
  name: 'build',
  summary: 'Compile a model spec into an artifact directory: plan.json, generated kernels (kernels.cpu.cc), the compiled library and report.txt. Identical builds are cache hits.',
  usage: 'FILE [-o DIR] [--target cpu|emu|cuda] [--max-batch N]',
  options: {
    out: { type: 'string', short: 'o', value: 'DIR', help: 'artifact directory (default: build/<model name>)' },
    target: { type: 'string', value: 'TARGET', help: 'cpu (default); emu: also the CUDA kernels (kernels.cu) for the SIMT emulator, and kernels.fatbin where nvcc exists; cuda: that with nvcc required, the fatbin listed for the cuda device. An emu/cuda artifact infers on cpu, emu and cuda; its training program is the fused CUDA one, for emu and cuda only' },
    'max-batch': { type: 'string', value: 'N', help: "largest batch the artifact runs (default: the train block's batch, else 128)" },
    quiet: { type: 'boolean', short: 'q', help: 'print nothing but errors' },
  },
  async run(args) {
    const file = onePositional(args, build, 'spec file');
    const target = (stringOption(args, 'target') ?? 'cpu') as Target;
    if (!TARGETS.includes(target)) throw new UsageError(`unknown target '${target}' (available: ${TARGETS.join(', ')})`);
    const { model, source } = requireModel(file);
    const maxBatch = intOption(args, 'max-batch');
    const out = stringOption(args, 'out') ?? `build/${model.name}`;
    const log = args.values.quiet ? () => {} : (l: string) => process.stderr.write(`${l}\n`);
    const r = buildArtifact(model, source, { outDir: out, target, ...(maxBatch ? { maxBatch } : {}), log });
    if (!args.values.quiet) {
      process.stdout.write(`built ${r.dir} (model ${model.name}, max batch ${r.plan.maxBatch}, ${r.cached ? 'cached' : 'new'}, ${r.seconds.toFixed(1)} s)\n`);
    }
    return 0;
  },
};
