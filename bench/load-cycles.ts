// Load/infer/dispose cycles of one artifact (issue #21: 10,000 cycles of nin-fashion in under 3
// minutes, RSS flat after warm-up), and models dropped without dispose() (freed by the finalizer).
// Build and run:  npx tsc -p tsconfig.json && node dist/bench/load-cycles.js --cycles 10000
// Prints one JSON line per measurement. test/load-cycles.test.ts runs the same functions with fewer cycles.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { buildArtifact } from '../compiler/build.js';
import { compileSpec } from '../compiler/pipeline.js';
import { load } from '../runtime/model.js';
import { refuseStaleAddon } from './addon-fresh.js';

export interface CycleReport {
  readonly cycles: number;
  readonly warmup: number;
  readonly seconds: number;
  readonly msPerCycle: number; // wall time over all cycles, warm-up included
  readonly cpuMsPerCycle: number; // this process's CPU time (all threads): what contention for the cores does not inflate
  readonly rssAfterWarmupMiB: number;
  readonly rssEndMiB: number;
  readonly heldSamplesMiB: readonly number[]; // RSS less V8's empty heap, after a full collection, every tenth of the cycles after warm-up
  readonly growthMiB: number; // of those: median of the last three samples minus median of the first three
}

const HELD_SAMPLES = 11;
const median3 = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[1]!;

const rssMiB = () => process.memoryUsage().rss / 2 ** 20;
// RSS less the part of V8's heap that holds nothing: V8 doubles its young generation when enough
// survives (heapTotal 33 -> 49 MiB at about cycle 430 in one run, heapUsed flat at 14 MiB), a step
// of 16 MiB that says nothing about what models hold; memory a leak holds is in use, so it stays.
const heldMiB = () => {
  const u = process.memoryUsage();
  return (u.rss - (u.heapTotal - u.heapUsed)) / 2 ** 20;
};
// A full collection before each RSS reading, also where node runs without --expose-gc (vitest's
// forks): otherwise the reading depends on when V8 last collected, which is noise of several MiB.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

/** `cycles` times: load the artifact, infer one image, dispose. Memory held is sampled from `warmup` cycles to the end. */
export async function loadInferDisposeCycles(dir: string, cycles: number, warmup: number): Promise<CycleReport> {
  const probe = await load(dir);
  const image = new Float32Array(probe.imageElements).fill(0.25);
  await probe.dispose();
  // Medians of three samples at each end, not two single readings: a leak raises every sample, and
  // one reading taken just before V8 grew its heap once made a flat run look like 16 MiB of growth.
  const every = Math.max(1, Math.floor((cycles - warmup) / (HELD_SAMPLES - 1)));
  const samples: number[] = [];
  let rssAfterWarmupMiB = 0;
  const sample = () => {
    collect();
    if (samples.length === 0) rssAfterWarmupMiB = rssMiB();
    samples.push(heldMiB());
  };
  if (warmup === 0) sample();
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  for (let i = 0; i < cycles; i++) {
    const m = await load(dir);
    await m.infer(image);
    await m.dispose();
    if (i + 1 >= warmup && (i + 1 - warmup) % every === 0 && i + 1 < cycles) sample();
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStarted);
  sample();
  if (samples.length < 6) throw new Error(`load cycles: ${cycles - warmup} cycles after warm-up give ${samples.length} memory samples; growth needs at least 6`);
  const growthMiB = median3(samples.slice(-3)) - median3(samples.slice(0, 3));
  return { cycles, warmup, seconds, msPerCycle: (seconds * 1000) / cycles, cpuMsPerCycle: (cpu.user + cpu.system) / 1000 / cycles, rssAfterWarmupMiB, rssEndMiB: rssMiB(), heldSamplesMiB: samples, growthMiB };
}

/** Loads `count` models and infers once with each, never calling dispose(): the finalizer must free them. */
export async function droppedModels(dir: string, count: number): Promise<{ count: number; rssBeforeMiB: number; rssPeakMiB: number }> {
  const rssBeforeMiB = rssMiB();
  let rssPeakMiB = rssBeforeMiB;
  const probe = await load(dir);
  const image = new Float32Array(probe.imageElements).fill(0.25);
  await probe.dispose();
  for (let i = 0; i < count; i++) {
    const m = await load(dir);
    await m.infer(image);
    rssPeakMiB = Math.max(rssPeakMiB, rssMiB());
  }
  return { count, rssBeforeMiB, rssPeakMiB };
}

/** Builds a spec file for the cpu (a cache hit when nothing changed) and returns the artifact directory. */
export function buildCpuArtifact(specFile: string, outDir: string): string {
  const source = readFileSync(specFile, 'utf8');
  const r = compileSpec(source, specFile);
  if (!r.model) throw new Error(`${specFile}: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  return buildArtifact(r.model, source, { outDir, target: 'cpu' }).dir;
}

async function main(): Promise<void> {
  refuseStaleAddon();
  const { values } = parseArgs({
    options: {
      spec: { type: 'string', default: 'models/nin-fashion.model' },
      out: { type: 'string', default: 'build/load-cycles' },
      cycles: { type: 'string', default: '10000' },
      warmup: { type: 'string', default: '100' },
      dropped: { type: 'string', default: '200' },
    },
  });
  const dir = buildCpuArtifact(values.spec!, values.out!);
  const report = await loadInferDisposeCycles(dir, Number(values.cycles), Number(values.warmup));
  process.stdout.write(JSON.stringify({ spec: values.spec, ...report }) + '\n');
  const dropped = await droppedModels(dir, Number(values.dropped));
  process.stdout.write(JSON.stringify({ spec: values.spec, dropped: dropped.count, rssBeforeMiB: dropped.rssBeforeMiB, rssPeakMiB: dropped.rssPeakMiB }) + '\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
