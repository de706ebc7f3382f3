// `nincc build FILE -o DIR`: compile a spec into an artifact directory the runtime loads.
import { TARGETS, type Target } from '../../compiler/build.js';
import { GPUS } from '../../runtime/profile/gpus.js';
import { CPU_LEVELS, type CpuLevel } from '../../compiler/backends/cpu/toolchain.js';
import { build as buildSpec, SpecError } from '../../runtime/build.js';
import { BUILD_INPUT_HELP, inputOption, precisionOption, PRECISION_HELP } from '../artifact-arg.js';
import { gpuKey } from '../../compiler/tune/tune-cache.js';
import type { TuneSource } from '../../compiler/tune/tune-record.js';
import { loadNative } from '../../runtime/native.js';
import { intOption, onePositional, stringOption, UsageError, type Command } from '../command.js';

/** A cuda build's own look-up of a timed tuning: this machine's GPU's key, or why there is none to ask. */
function cachedTuningSource(): TuneSource {
  try {
    return { cachedFor: gpuKey(loadNative().cudaGpuName()) };
  } catch (e) {
    return { noLookup: (e as Error).message };
  }
}

export const build: Command = {
  name: 'build',
  summary: 'Compile a model spec into an artifact directory: plan.json, generated kernels (kernels.cpu.cc), the compiled library and report.txt. Identical builds are cache hits.',
  usage: 'FILE [-o DIR] [--target cpu|emu|cuda] [--max-batch N] [--cpu native|avx2|avx512|portable] [--precision fp32|tf32|bf16] [--input u8|f32] [--tuned FILE|DIR [--gpu NAME] | --no-tuned] [--gpu a100|h100|h200]',
  options: {
    out: { type: 'string', short: 'o', value: 'DIR', help: 'artifact directory (default: build/<model name>)' },
    target: { type: 'string', value: 'TARGET', help: 'cpu (default); emu: also the CUDA kernels (kernels.cu) for the SIMT emulator, and kernels.fatbin where nvcc exists; cuda: that with nvcc required, the fatbin listed for the cuda device. An emu/cuda artifact infers on cpu, emu and cuda; its training program is the fused CUDA one, for emu and cuda only' },
    'max-batch': { type: 'string', value: 'N', help: "largest batch the artifact runs (default: the train block's batch, else 128)" },
    cpu: { type: 'string', value: 'LEVEL', help: "the instruction set kernels.cpu.so may use: native (default: this machine's AVX-512 or AVX2/FMA), avx2, avx512, or portable (baseline x86-64, loads on any x86-64). plan.json lists the features it needs (cpuFeatures); loading on a machine without them fails with ERR_NINCC_CPU naming them" },
    precision: { type: 'string', value: 'P', help: PRECISION_HELP },
    input: { type: 'string', value: 'T', help: BUILD_INPUT_HELP },
    tuned: { type: 'string', value: 'FILE|DIR', help: "apply the per-layer configurations `nincc tune` chose: a tune.json, or an artifact directory holding one. It must have been tuned for this model, max batch and precision; report.txt says per kernel whether its configuration was tuned, predicted or default" },
    gpu: { type: 'string', value: 'NAME', help: `with --tuned: the GPU whose entry to apply (default: the file's only one). ${Object.keys(GPUS).join(', ')} (the profile model's GPUs), with --target emu|cuda at bf16: also the GPU the weight gradients choose their split counts for, the fewest waves × each block's work by the profile's time model (docs/profile.md), at each kernel's resident blocks a SM by ptxas's registers where nvcc exists (report.txt lists the counts, R and waves); another split count sums in another order, so dW's bits depend on it (default: the counts for no GPU)` },
    'no-tuned': { type: 'boolean', help: "--target cuda without --tuned applies by itself the timed tuning `nincc tune` recorded on a GPU of this name for this model, max batch and precision (the per-user cache, docs/profile.md#nincc-tune-per-layer-configurations); --no-tuned builds the defaults" },
    quiet: { type: 'boolean', short: 'q', help: 'print nothing but errors' },
  },
  async run(args) {
    const file = onePositional(args, build, 'spec file');
    const target = (stringOption(args, 'target') ?? 'cpu') as Target;
    if (!TARGETS.includes(target)) throw new UsageError(`unknown target '${target}' (available: ${TARGETS.join(', ')})`);
    const cpu = (stringOption(args, 'cpu') ?? 'native') as CpuLevel;
    if (!CPU_LEVELS.includes(cpu)) throw new UsageError(`unknown --cpu '${cpu}' (available: ${CPU_LEVELS.join(', ')})`);
    const maxBatch = intOption(args, 'max-batch');
    const precision = precisionOption(args);
    const input = inputOption(args);
    const out = stringOption(args, 'out');
    const quiet = args.values.quiet === true;
    const tunedPath = stringOption(args, 'tuned');
    const gpu = stringOption(args, 'gpu');
    const splitsFor = gpu !== undefined && target !== 'cpu' && GPUS[gpu.toLowerCase()] ? gpu.toLowerCase() : undefined;
    if (gpu !== undefined && tunedPath === undefined && splitsFor === undefined) throw new UsageError(`--gpu names the entry of --tuned (give --tuned FILE|DIR too) or, with --target emu|cuda, one of ${Object.keys(GPUS).join(', ')}`);
    const noTuned = args.values['no-tuned'] === true;
    if (noTuned && tunedPath !== undefined) throw new UsageError('--no-tuned and --tuned contradict each other: give one');
    const tuneFrom = tunedPath !== undefined ? { file: tunedPath, ...(gpu !== undefined ? { gpu } : {}) } : target === 'cuda' && !noTuned ? cachedTuningSource() : undefined;
    // The build runs in a worker thread (runtime/build.ts): this process stays responsive (Ctrl-C) meanwhile.
    try {
      const r = await buildSpec(file, { target, cpu, ...(precision ? { precision } : {}), ...(input === 'u8' ? { input } : {}), ...(out ? { outDir: out } : {}), ...(maxBatch ? { maxBatch } : {}), ...(tuneFrom ? { tuneFrom } : {}), ...(splitsFor ? { gpu: splitsFor } : {}), ...(quiet ? {} : { log: (l: string) => process.stderr.write(`${l}\n`) }) });
      if (r.warningReport) process.stderr.write(`${r.warningReport}\n`);
      if (!quiet) process.stdout.write(`built ${r.dir} (model ${r.plan.model}, max batch ${r.plan.maxBatch}, ${r.cached ? 'cached' : 'new'}, ${r.seconds.toFixed(1)} s)\n`);
      return 0;
    } catch (e) {
      if (e instanceof SpecError) {
        process.stderr.write(`${e.report}\n`);
        return 1;
      }
      if (e instanceof Error && 'code' in e && e.code === 'ERR_NINCC_SPEC') throw new UsageError(e.message);
      throw e;
    }
  },
};
