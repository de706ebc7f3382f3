// `nincc profile`'s library half: one inference batch and one training step of an emu artifact run
// with the emulator's profile counters on (sampled blocks, scaled to the grid: docs/profile.md), then
// the time model (time-model.ts) per kernel on one GPU, with occupancy from ptxas's report when the
// build had nvcc. Sampled launches compute garbage: the run is for its counts only.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Plan } from '../../compiler/emit/plan.js';
import { load, syntheticImages } from '../model.js';
import type { GpuSpec } from './gpus.js';
import { SHARED_ALONG } from './l2-reuse-hbm.js';
import { launchResidentBlocks } from './occupancy.js';
import { COALESCING_COUNTERS, coalescing, type CoalescingCounts, type KernelCoalescing } from './profile-coalescing.js';
import { predictKernel, type KernelCounts, type Prediction } from './time-model.js';

export interface ProfileOptions {
  readonly gpu: GpuSpec;
  readonly batch: number;
  /** Blocks run per class (interior, edge) of each launch; 0 runs them all. */
  readonly sample: number;
  /** Told as each phase starts and when it has been emulated (how many launches, how long). */
  readonly onProgress?: (line: string) => void;
}

export type Phase = 'infer' | 'train';

export interface KernelProfile {
  readonly kernel: string;
  readonly phase: Phase;
  /** The spec layer and line the plan names for the kernel's step. */
  readonly source: string;
  readonly launches: number;
  /** What emulating the kernel's sampled blocks cost here, ms (not a prediction). */
  readonly emulatedMillis: number;
  readonly counts: KernelCounts & CoalescingCounts & { readonly shared_bank_conflicts: number };
  /** Requested bytes against sectors moved, loads and stores (profile-coalescing.ts). */
  readonly coalescing: KernelCoalescing;
  /** Blocks resident per SM (ptxas registers and shared memory), or undefined when the build had no nvcc. */
  readonly blocksPerSm?: number;
  readonly prediction: Prediction;
}

export interface ProfileReport {
  readonly model: string;
  readonly gpu: string;
  readonly batch: number;
  readonly sample: number;
  readonly kernels: readonly KernelProfile[];
  /** Predicted µs of one inference batch (BN folding excluded: it runs once per weight change) and one training step. */
  readonly inferMicros: number;
  readonly trainMicros: number;
  readonly occupancyKnown: boolean;
}

type CounterLine = Record<string, number> & { kernel: string; grid: number[]; emulated_ms?: number };

const COUNTERS = ['blocks', 'ffma', 'mma_tf32_m16n8k8', 'mma_bf16_m16n8k16', 'global_load_sectors', 'global_store_sectors', 'async_copy_sectors', 'shared_load_wavefronts', 'shared_store_wavefronts', 'shared_bank_conflicts', 'atomic_operations', 'threadfences', 'unique_global_sectors', ...SHARED_ALONG, 'block_sectors_halo_x', ...COALESCING_COUNTERS] as const;
type Counter = (typeof COUNTERS)[number];

/** The JSON lines NINCC_EMU_PROFILE appended, from line `from` on. */
function counterLines(file: string, from: number): CounterLine[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(from)
    .map((l, i) => {
      try {
        return JSON.parse(l) as CounterLine;
      } catch (e) {
        throw new Error(`${file}:${from + i + 1}: not a line of profile counters (${(e as Error).message})`);
      }
    });
}

/** Per kernel and arch, registers and static shared memory from report.txt's ptxas table (absent without nvcc). */
export function ptxasResources(report: string, arch: string): Map<string, { registers: number; sharedBytes: number }> {
  const out = new Map<string, { registers: number; sharedBytes: number }>();
  for (const m of report.matchAll(/^ {2}(sm_\d+) (\S+)\s+(\d+) registers,\s+(\d+) B smem/gm))
    if (m[1] === arch) out.set(m[2], { registers: Number(m[3]), sharedBytes: Number(m[4]) });
  return out;
}

/** Sums each kernel's launches (a kernel is one step, so this only adds repeated calls, on the same grid: the HBM model needs it). */
function summed(lines: readonly CounterLine[]): Map<string, { launches: number; emulatedMillis: number; grid: number[]; counts: Record<Counter, number> }> {
  const by = new Map<string, { launches: number; emulatedMillis: number; grid: number[]; counts: Record<Counter, number> }>();
  for (const l of lines) {
    const row = by.get(l.kernel) ?? { launches: 0, emulatedMillis: 0, grid: l.grid, counts: Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Record<Counter, number> };
    if (row.grid.join() !== l.grid.join()) throw new Error(`kernel ${l.kernel} launched on grids [${row.grid}] and [${l.grid}]: the HBM model takes one grid per kernel`);
    row.launches++;
    row.emulatedMillis += l.emulated_ms ?? 0;
    for (const c of COUNTERS) row.counts[c] += l[c] ?? 0;
    by.set(l.kernel, row);
  }
  return by;
}

export async function profileArtifact(dir: string, options: ProfileOptions): Promise<ProfileReport> {
  const plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as Plan;
  let report = '';
  try {
    report = readFileSync(join(dir, 'report.txt'), 'utf8');
  } catch {
    // no report: occupancy unknown, as without nvcc
  }
  const resources = ptxasResources(report, options.gpu.arch);
  const steps = new Map(Object.values(plan.programs).flatMap((p) => p.steps.map((s) => [s.kernel, s] as const)));

  const work = mkdtempSync(join(tmpdir(), 'nincc-profile-'));
  const file = join(work, 'counters.jsonl');
  const saved = { path: process.env.NINCC_EMU_PROFILE, sample: process.env.NINCC_EMU_PROFILE_SAMPLE };
  const phases: { phase: Phase; lines: CounterLine[] }[] = [];
  const model = await load(dir, { device: 'emu' });
  try {
    if (options.batch > model.maxBatch) throw new Error(`--batch ${options.batch} is over the artifact's maximum ${model.maxBatch} (rebuild with --max-batch ${options.batch})`);
    process.env.NINCC_EMU_PROFILE = file;
    process.env.NINCC_EMU_PROFILE_SAMPLE = String(options.sample);
    const images = syntheticImages(model, options.batch, (i) => Math.sin(i * 0.37));
    // The first inference also folds BN into the convs: those launches are left out of the batch's time.
    await model.infer(images.subarray(0, model.imageElements));
    let seen = counterLines(file, 0).length;
    const emulated = async (phase: Phase, what: string, run: () => Promise<unknown>) => {
      options.onProgress?.(`${what}…`);
      const started = Date.now();
      await run();
      const lines = counterLines(file, seen);
      seen += lines.length;
      phases.push({ phase, lines });
      options.onProgress?.(`${what}: ${lines.length} launches emulated in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    };
    await emulated('infer', `inference batch of ${options.batch}`, () => model.infer(images));
    if (model.trainable) {
      const labels = Int32Array.from({ length: options.batch }, (_, i) => i % model.info.classes);
      await emulated('train', `training step of ${options.batch}`, () => model.trainStep(images, labels, { lr: 0 }));
    }
  } finally {
    if (saved.path === undefined) delete process.env.NINCC_EMU_PROFILE;
    else process.env.NINCC_EMU_PROFILE = saved.path;
    if (saved.sample === undefined) delete process.env.NINCC_EMU_PROFILE_SAMPLE;
    else process.env.NINCC_EMU_PROFILE_SAMPLE = saved.sample;
    await model.dispose();
    rmSync(work, { recursive: true, force: true });
  }

  // The bf16 weight copies' conversion runs before the first step only (then the SGD update writes them): left out as BN folding is.
  const once = new Set((plan.programs.train_weight_copies?.steps ?? []).map((s) => s.kernel));
  const kernels: KernelProfile[] = [];
  for (const { phase, lines } of phases) {
    for (const [kernel, { launches, emulatedMillis, grid, counts }] of summed(lines.filter((l) => !once.has(l.kernel)))) {
      const step = steps.get(kernel);
      const res = resources.get(kernel);
      const launch = step?.launch;
      const blocksPerSm = res && launch ? launchResidentBlocks(launch, res, options.gpu) : undefined;
      const c = { kernel, grid, ...counts };
      kernels.push({ kernel, phase, source: step?.source ?? '', launches, emulatedMillis, counts: c, coalescing: coalescing(c), ...(blocksPerSm ? { blocksPerSm } : {}), prediction: predictKernel(c, options.gpu, blocksPerSm ?? 1) });
    }
  }
  const total = (phase: Phase) => kernels.filter((k) => k.phase === phase).reduce((s, k) => s + k.prediction.micros, 0);
  return { model: plan.model, gpu: options.gpu.name, batch: options.batch, sample: options.sample, kernels, inferMicros: total('infer'), trainMicros: total('train'), occupancyKnown: resources.size > 0 };
}
