// GPU benchmark, the nincc half: NIN training-step and inference images/s on one device at the given
// batch sizes (bench/gpu/run.sh runs it beside bench/gpu/torch_nin.py on the same card).
//   npx tsc -p tsconfig.json && node dist/bench/gpu/nincc.js [--device cuda] [--target cuda]
//     [--model models/nin.model] [--batches 128,1] [--runs 20] [--warmup 3] [--json FILE]
// A dry run where there is no GPU: --device cpu --target cpu --model models/nin-fashion.model --batches 2,1 --runs 2.
// Each timed run is one awaited infer() or trainStep() (host→device copy of the batch, the kernels,
// device→host copy of the output), so the figures include the transfers a user pays.
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildArtifact, TARGETS, type Target } from '../../compiler/build.js';
import { compileSpec } from '../../compiler/pipeline.js';
import { packageRoot } from '../../compiler/package-root.js';
import { load, type Device, type Model } from '../../runtime/model.js';
import { refuseStaleAddon } from '../addon-fresh.js';

const { values } = parseArgs({
  options: {
    device: { type: 'string', default: 'cuda' },
    target: { type: 'string', default: 'cuda' },
    model: { type: 'string', default: 'models/nin.model' },
    batches: { type: 'string', default: '128,1' },
    runs: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    work: { type: 'string', default: 'build/bench-gpu' },
    json: { type: 'string' },
  },
});
const device = values.device as Device;
const target = values.target as Target;
if (!TARGETS.includes(target)) throw new Error(`--target must be one of ${TARGETS.join(', ')}`);
const batches = values.batches.split(',').map(Number);
const runs = Number(values.runs);
const warmup = Number(values.warmup);

export interface Row {
  readonly engine: string;
  readonly mode: 'train' | 'infer';
  readonly batch: number;
  readonly imagesPerSecond?: number;
  readonly msPerRun?: number;
  readonly note?: string;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function time(run: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < warmup; i++) await run();
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await run();
    ms.push(performance.now() - t);
  }
  return median(ms);
}

async function main(): Promise<void> {
  refuseStaleAddon();
  const file = resolve(packageRoot(), values.model);
  const source = readFileSync(file, 'utf8');
  // The spec's name as given (relative to the repository, as `nincc build` run there names it), so the
  // artifact bench/gpu/run.sh built with `nincc build` is this build's cache hit.
  const r = compileSpec(source, values.model);
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  const maxBatch = Math.max(...batches);
  const built = buildArtifact(r.model, source, { outDir: resolve(packageRoot(), values.work, `${r.model.name}-${target}`), target, maxBatch, log: (l) => process.stderr.write(`${l}\n`) });
  process.stderr.write(`built ${built.dir} in ${built.seconds.toFixed(1)} s${built.cached ? ' (cached)' : ''}\n`);
  const model: Model = await load(built.dir, { device, seed: 1 });
  const engine = `nincc ${device}`;
  const rows: Row[] = [];
  const per = model.info.input.reduce((a, b) => a * b, 1);
  const classes = model.info.classes;
  try {
    for (const n of batches) {
      const images = Float32Array.from({ length: n * per }, (_, i) => Math.sin(i * 0.618) * 1.5);
      const labels = Int32Array.from({ length: n }, (_, i) => (i * 7919) % classes);
      for (const mode of ['train', 'infer'] as const) {
        try {
          const ms = await time(() => (mode === 'infer' ? model.infer(images) : model.trainStep(images, labels, { lr: 1e-3, momentum: 0.9, weightDecay: 5e-4 })));
          rows.push({ engine, mode, batch: n, msPerRun: ms, imagesPerSecond: (n * 1000) / ms });
        } catch (e) {
          rows.push({ engine, mode, batch: n, note: (e as Error).message.split('\n')[0].slice(0, 160) });
        }
        const row = rows[rows.length - 1];
        console.log(`${engine.padEnd(12)} ${mode.padEnd(5)} batch ${String(n).padStart(3)}  ${row.imagesPerSecond ? `${row.imagesPerSecond.toFixed(1).padStart(9)} images/s  (${row.msPerRun!.toFixed(2)} ms/run, median of ${runs})` : `n/a: ${row.note}`}`);
      }
    }
  } finally {
    model.dispose();
  }
  if (values.json) writeFileSync(values.json, JSON.stringify({ model: r.model.name, device, target, runs, rows }, null, 1) + '\n');
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exitCode = 1;
});
