// `nincc profile SPEC|DIR --gpu h100 --batch 128`: the emulator's counters for each generated CUDA
// kernel of one inference batch and one training step, and the time model's prediction on a GPU.
import { GPUS } from '../../runtime/profile/gpus.js';
import { belowFullCoalescing, onlyAtTileFloor } from '../../runtime/profile/profile-coalescing.js';
import { profileArtifact, type KernelProfile, type ProfileReport } from '../../runtime/profile/run-profile.js';
import { writePredictions } from '../../runtime/profile/write-report.js';
import { intOption, onePositional, stringOption, UsageError, type Command } from '../command.js';
import { precisionOption, prepareArtifact, PRECISION_HELP } from '../artifact-arg.js';

/** The model's stated error (docs/profile.md): printed with every prediction. */
export const ERROR_BAND =
  'expected error: the pipe term is a lower bound; within about 1.5x for many-wave kernels with one dominant pipe, ' +
  'optimistic by up to 10x for latency-bound, low-occupancy or unpipelined kernels (load, barrier, compute: their unhidden phase is an assumed share). ' +
  'Not yet fitted on a GPU (bench/gpu/ncu.sh).';

const pct = (fraction: number) => `${(100 * fraction).toFixed(0)}%`;
const si = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)}G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(Math.round(n)));

function table(r: ProfileReport, phase: KernelProfile['phase']): string[] {
  const rows = r.kernels.filter((k) => k.phase === phase);
  if (rows.length === 0) return [];
  const total = rows.reduce((s, k) => s + k.prediction.micros, 0);
  const lines = [
    `${phase === 'infer' ? 'inference batch' : 'training step'} (batch ${r.batch}): predicted ${(total / 1000).toFixed(3)} ms, ${Math.round((r.batch / total) * 1e6).toLocaleString('en-US')} images/s`,
    `  ${'kernel'.padEnd(26)} ${'FFMA'.padStart(8)} ${'MMA'.padStart(7)} ${'gld sect'.padStart(9)} ${'gst sect'.padStart(9)} ${'ld eff'.padStart(6)} ${'st eff'.padStart(6)} ${'smem wf'.padStart(8)} ${'confl'.padStart(7)} ${'µs'.padStart(9)} ${'share'.padStart(6)}  bound  %peak  layer`,
  ];
  for (const k of rows) {
    const c = k.counts;
    const p = k.prediction;
    lines.push(
      `  ${k.kernel.padEnd(26)} ${si(c.ffma).padStart(8)} ${si(c.mma_bf16_m16n8k16 + c.mma_tf32_m16n8k8).padStart(7)} ${si(c.global_load_sectors).padStart(9)} ${si(c.global_store_sectors).padStart(9)} ${pct(k.coalescing.load.efficiency).padStart(6)} ${pct(k.coalescing.store.efficiency).padStart(6)} ` +
        `${si(c.shared_load_wavefronts + c.shared_store_wavefronts).padStart(8)} ${si(c.shared_bank_conflicts).padStart(7)} ${p.micros.toFixed(1).padStart(9)} ${((100 * p.micros) / total).toFixed(1).padStart(5)}%  ${p.bound.padEnd(6)} ${(100 * p.fractionOfPeak).toFixed(1).padStart(5)}  ${k.source}`,
    );
  }
  // Those whose only excess is where the tile cuts the outputs' runs (stores at their blocks' own sectors) are listed apart: inherent to the shape.
  const below = belowFullCoalescing(rows.filter((k) => !onlyAtTileFloor(k.coalescing)));
  const atFloor = belowFullCoalescing(rows.filter((k) => onlyAtTileFloor(k.coalescing)));
  lines.push(
    below.length === 0 && atFloor.length === 0
      ? '  global accesses: every kernel at full coalescing (each warp instruction touches the fewest sectors its bytes need)'
      : `  below full coalescing (sectors touched for the fewest the requested bytes need), most extra sectors first:${below.length === 0 ? ' none fixable' : ''}`,
    ...below.map((l) => `    ${l}`),
    ...(atFloor.length > 0 ? ["  below full coalescing only where the tile cuts the outputs' runs off the sector grid (each sector stored once by its block: inherent to the shape and tile):", ...atFloor.map((l) => `    ${l}`)] : []),
  );
  return lines;
}

export const profileCommand: Command = {
  name: 'profile',
  summary: "Predict a model's GPU time per kernel without a GPU: the emulator's counters (sampled blocks) fed to a time model of an A100, H100 or H200.",
  usage: 'SPEC|DIR [--gpu h100] [--batch N] [--precision P] [--sample N] [--json] [--write-report]',
  details:
    'Runs one inference batch and one training step of the generated CUDA on the emu device with profile counters on ' +
    '(docs/profile.md): N blocks per class (interior, edge) of each launch run and their counts are scaled to the grid. ' +
    'Per kernel it prints FFMAs, MMAs, global sectors loaded and stored, load and store efficiency (requested bytes over ' +
    'sectors moved), shared-memory wavefronts and bank conflicts, ' +
    "the predicted µs, the pipe that bounds it and that pipe's fraction of peak; then the kernels below full coalescing " +
    "(apart: those whose only excess is stores at their blocks' own sectors, where the tile cuts the outputs' runs: inherent to the shape) " +
    'and images/s. A spec is built for ' +
    '--target emu at --max-batch N and for --gpu (its bf16 weight gradients\' split counts), without the cpu library, first. Progress goes to stderr. ' + ERROR_BAND,
  options: {
    gpu: { type: 'string', value: 'GPU', help: `the GPU to predict for: ${Object.keys(GPUS).join(', ')} (default h100)` },
    batch: { type: 'string', value: 'N', help: 'the batch size (default 128)' },
    sample: { type: 'string', value: 'N', help: 'blocks run per class of each launch (default 2; 0 runs every block, slowly)' },
    precision: { type: 'string', value: 'P', help: PRECISION_HELP },
    json: { type: 'boolean', help: 'print the report as JSON' },
    'write-report': { type: 'boolean', help: "write the predictions into the artifact: predictions-GPU-bN.json and report.txt's per-kernel table" },
  },
  async run(args) {
    const target = onePositional(args, profileCommand, 'spec file or emu artifact directory');
    const gpuName = stringOption(args, 'gpu') ?? 'h100';
    const gpu = GPUS[gpuName.toLowerCase()];
    if (!gpu) throw new UsageError(`--gpu: unknown GPU '${gpuName}': one of ${Object.keys(GPUS).join(', ')}`);
    const batch = intOption(args, 'batch') ?? 128;
    const sample = intOption(args, 'sample', 0) ?? 2;
    const precision = precisionOption(args);
    const dir = await prepareArtifact(target, { maxBatch: batch, device: 'emu', withoutCpuLibrary: true, gpu: gpuName.toLowerCase(), ...(precision ? { precision } : {}) });
    const r = await profileArtifact(dir, { gpu, batch, sample, onProgress: (line) => process.stderr.write(`profile: ${line}
`) });
    if (args.values['write-report']) {
      const written = writePredictions(dir, gpuName.toLowerCase(), r, ERROR_BAND);
      process.stderr.write(`profile: wrote ${written.json} and the predicted column of ${written.report}\n`);
    }
    if (args.values.json) {
      process.stdout.write(`${JSON.stringify({ ...r, errorBand: ERROR_BAND }, null, 2)}\n`);
      return 0;
    }
    const out = [
      `${r.model} on ${r.gpu} (predicted from emulator counters; ${sample === 0 ? 'every block run' : `${sample} blocks per class run, scaled to the grid`})`,
      r.occupancyKnown ? 'occupancy: from ptxas registers and shared memory (report.txt)' : 'occupancy: unknown (built without nvcc): one block per SM assumed',
      '',
      ...table(r, 'infer'),
      '',
      ...table(r, 'train'),
      '',
      ERROR_BAND,
    ];
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  },
};
