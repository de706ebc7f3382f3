// `nincc tune SPEC|DIR [--predict GPU]`: per layer and pass, the configuration knobs' variants timed on this
// machine's GPU (or predicted for one) and the winners written into the artifact's tune.json, which
// `nincc build --tuned DIR` applies, and a cuda build on the same GPU by itself (issue #15).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GPUS } from '../../runtime/profile/gpus.js';
import { predictedTimer } from '../../runtime/profile/tune-predict.js';
import { cacheTimedEntry, cudaGpuName, timedTimer } from '../../runtime/profile/tune-timed.js';
import { tuneVariants, type VariantTimer } from '../../runtime/profile/tune-variants.js';
import { knobHelp, TUNE_FILE, TUNE_KNOB_NAMES } from '../../compiler/tune/tune-record.js';
import type { TuneRow } from '../../compiler/tune/tune-choose.js';
import { intOption, onePositional, stringOption, UsageError, type Command } from '../command.js';
import { prepareArtifact } from '../artifact-arg.js';

/** The table: one row per (layer, pass), the default's µs, each knob's variant's (— where it changes nothing), the choice. */
function table(rows: readonly TuneRow[]): string[] {
  const head = `  ${'layer:pass'.padEnd(12)} ${'default µs'.padStart(10)} ${TUNE_KNOB_NAMES.map((k) => `${k} off`.padStart(Math.max(10, k.length + 4))).join(' ')}  choice`;
  return [
    head,
    ...rows.map((r) => {
      const cells = TUNE_KNOB_NAMES.map((k) => (r.variants[k] === undefined ? '—' : r.variants[k]!.toFixed(2)).padStart(Math.max(10, k.length + 4)));
      const off = Object.entries(r.choice).filter(([, on]) => !on).map(([k]) => `${k} off`);
      return `  ${r.key.padEnd(12)} ${r.baseline.toFixed(2).padStart(10)} ${cells.join(' ')}  ${off.join(', ') || 'default'}`;
    }),
  ];
}

/** --layers 1,4,9: Torch indices of conv layers. */
function layersOption(text: string | undefined): Set<number> | undefined {
  if (text === undefined) return undefined;
  const parts = text.split(',');
  if (!parts.every((p) => /^[1-9][0-9]*$/.test(p.trim()))) throw new UsageError(`--layers: expected layer numbers separated by commas (e.g. 1,4,9), got '${text}'`);
  return new Set(parts.map((p) => Number(p.trim())));
}

export const tuneCommand: Command = {
  name: 'tune',
  summary: "Choose each conv layer's configuration (per pass) by timing the candidates, and record the winners in the artifact's tune.json for nincc build --tuned.",
  usage: 'SPEC|DIR [--predict GPU [--sample N] | --runs N --warmup N] [--batch N] [--layers L,L,…] [--check-batch N]',
  details:
    `For each conv layer and pass (forward, data gradient, weight gradient) and each per-layer knob (${TUNE_KNOB_NAMES.join(', ')}), ` +
    'builds the variant with the knob flipped, checks its gradients against the default build on emu on a small batch (bitwise where the summation ' +
    'order is unchanged, else within a bound), times both, and keeps the faster per layer and pass. Without --predict they are timed on this ' +
    "machine's GPU (the cuda device: events around each launch, the median per kernel of --runs runs after --warmup), and a variant must win by " +
    'more than 2%; the winners are filed under the GPU\'s driver name made a key (NVIDIA H100 80GB HBM3 → nvidia-h100-80gb-hbm3) as "timed", ' +
    'in the artifact and in the per-user cache, where nincc build SPEC --target cuda on a GPU of that name finds them by itself. ' +
    "--predict GPU times them by the profile model's per-kernel prediction on emu instead (nincc profile; docs/profile.md for its error), filed under that name. " +
    `The winners go to DIR/${TUNE_FILE}; nincc build SPEC --tuned DIR [--gpu KEY] applies them, and report.txt then says per kernel ` +
    'whether its configuration was tuned, predicted or default. A spec is built for --precision bf16 at --max-batch N first (--target cuda, or emu with --predict). ' +
    `The knobs: ${TUNE_KNOB_NAMES.map(knobHelp).join('; ')}.`,
  options: {
    predict: { type: 'string', value: 'GPU', help: `choose by the profile model's prediction for ${Object.keys(GPUS).join(', ')} on emu, without a GPU (default: time on this machine's GPU)` },
    runs: { type: 'string', value: 'N', help: 'on the GPU: timed runs of each build, the median taken per kernel (default 10)' },
    warmup: { type: 'string', value: 'N', help: 'on the GPU: untimed runs of each build first (default 3)' },
    batch: { type: 'string', value: 'N', help: 'the batch the kernels are timed at: a spec is built for it (default 128); a DIR\'s max batch by default, and at most' },
    sample: { type: 'string', value: 'N', help: 'with --predict: blocks run per class of each launch (default 2; 0 runs every block, slowly)' },
    layers: { type: 'string', value: 'L,L,…', help: 'tune only these conv layers (Torch module indices, as report.txt names them k<L>_…); the others keep the defaults' },
    'check-batch': { type: 'string', value: 'N', help: "images of each variant's output check against the default build (default 2; 0 skips it)" },
  },
  async run(args) {
    const target = onePositional(args, tuneCommand, 'spec file or bf16 artifact directory');
    const gpuName = stringOption(args, 'predict');
    const batchGiven = intOption(args, 'batch');
    const checkBatch = intOption(args, 'check-batch', 0) ?? 2;
    const layers = layersOption(stringOption(args, 'layers'));
    let timer: VariantTimer;
    let how: string;
    if (gpuName !== undefined) {
      if (args.values.runs !== undefined || args.values.warmup !== undefined) throw new UsageError('--runs and --warmup time on the GPU: leave them out with --predict');
      const gpu = GPUS[gpuName.toLowerCase()];
      if (!gpu) throw new UsageError(`--predict: unknown GPU '${gpuName}': one of ${Object.keys(GPUS).join(', ')}`);
      const sample = intOption(args, 'sample', 0) ?? 2;
      timer = predictedTimer(gpuName.toLowerCase(), gpu, sample);
      how = `on ${gpu.name}, predicted (${sample === 0 ? 'every block run' : `${sample} blocks per class run, scaled to the grid`})`;
    } else {
      if (args.values.sample !== undefined) throw new UsageError('--sample is the profile model\'s: give it with --predict GPU');
      const runs = intOption(args, 'runs', 1) ?? 10;
      const warmup = intOption(args, 'warmup', 0) ?? 3;
      // Before anything is built: without a GPU, say so at once.
      const hardware = cudaGpuName();
      timer = timedTimer(hardware, { runs, warmup });
      how = `timed on ${hardware} (median of ${runs} runs after ${warmup} warm-up)`;
    }
    const dir = await prepareArtifact(target, { maxBatch: batchGiven ?? 128, device: timer.target, precision: 'bf16', withoutCpuLibrary: true });
    const batch = batchGiven ?? (JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as { maxBatch: number }).maxBatch;
    const progress = (line: string) => process.stderr.write(`tune: ${line}\n`);
    const r = await tuneVariants(dir, { batch, checkBatch, onProgress: progress, ...(layers ? { layers } : {}) }, timer);
    const cached = r.entry.how === 'timed' ? cacheTimedEntry(r.entry) : undefined;
    const out = [
      `${dir} ${how}, batch ${batch}: µs per layer and pass, summed over its kernels (inference and training)`,
      ...table(r.rows),
      '',
      `wrote ${r.file} (${r.rows.length} layer-pass configuration${r.rows.length === 1 ? '' : 's'} for ${timer.key}); apply it with: nincc build SPEC --tuned ${dir}${cached ? ` --gpu ${timer.key}` : ''}`,
      ...(cached ? [`and ${cached}, which nincc build SPEC --target cuda on this GPU applies by itself (--no-tuned leaves it out)`] : []),
    ];
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  },
};
