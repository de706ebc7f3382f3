// `nincc tune` on a GPU: each variant (a cuda bf16 artifact, tune-variants.ts) loaded on the cuda device and
// timed there: warm-up runs, then per kernel the median over the timed runs of its µs (the events around each
// launch, cuda_device.cc timeLaunches), an inference batch and a training step summed as --predict sums them.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { KernelTimes } from '../../compiler/tune/tune-choose.js';
import { gpuKey, tuneCacheFile } from '../../compiler/tune/tune-cache.js';
import type { TuneFile } from '../../compiler/tune/tune-record.js';
import { writeFileAtomicSync } from '../io/atomic-write.js';
import { load, syntheticImages } from '../model.js';
import { loadNative } from '../native.js';
import type { VariantTimer } from './tune-variants.js';

export interface TimedOptions {
  /** untimed runs first: the module's first launches, the caches and the clocks settle */
  readonly warmup: number;
  /** timed runs, the median taken per kernel */
  readonly runs: number;
}

/**
 * A timed variant must be faster by more than this fraction of the default's µs to win: run-to-run noise of
 * event-timed kernels is about a percent, and a false win costs more than a missed one.
 */
export const TIMED_MARGIN = 0.02;

/** Per kernel, the median over runs of its µs in each run (a kernel launched twice in a run counts twice). */
export function medianTimes(runs: readonly (readonly { kernel: string; micros: number }[])[]): KernelTimes {
  const perRun = runs.map((launches) => {
    const sums = new Map<string, number>();
    for (const l of launches) sums.set(l.kernel, (sums.get(l.kernel) ?? 0) + l.micros);
    return sums;
  });
  const out = new Map<string, number>();
  for (const kernel of new Set(perRun.flatMap((r) => [...r.keys()]))) {
    const values = perRun.map((r) => r.get(kernel) ?? 0).sort((a, b) => a - b);
    const mid = values.length >> 1;
    out.set(kernel, values.length % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2);
  }
  return out;
}

/** The GPU this process's cuda device opens, or an error saying why there is none (no libcuda, no GPU). */
export function cudaGpuName(): string {
  try {
    return loadNative().cudaGpuName();
  } catch (e) {
    throw new Error(`timing the candidates needs a GPU: ${(e as Error).message}; give --predict GPU to choose by the profile model instead`);
  }
}

export function timedTimer(hardware: string, o: TimedOptions): VariantTimer {
  return {
    key: gpuKey(hardware),
    how: 'timed',
    hardware,
    target: 'cuda',
    margin: TIMED_MARGIN,
    async time(dir: string, batch: number): Promise<KernelTimes> {
      const model = await load(dir, { device: 'cuda' });
      try {
        const images = syntheticImages(model, batch, (i) => Math.sin(i * 0.37));
        const labels = Int32Array.from({ length: batch }, (_, i) => i % model.info.classes);
        const once = async () => {
          await model.infer(images);
          // lr 0: the weights stay as they are, so every run times the same arithmetic.
          if (model.trainable) await model.trainStep(images, labels, { lr: 0 });
        };
        for (let i = 0; i < o.warmup; i++) await once();
        const runs = [];
        for (let i = 0; i < o.runs; i++) {
          if (!model.timeLaunches(true)) throw new Error(`${dir}: the ${model.info.device} device cannot time its launches`);
          await once();
          model.timeLaunches(false);
          runs.push(model.launchTimes());
        }
        return medianTimes(runs);
      } finally {
        await model.dispose();
      }
    },
  };
}

/** Files a timed entry in the per-user cache (tune-cache.ts), where a later cuda build on this GPU finds it; returns the file. */
export function cacheTimedEntry(entry: TuneFile['gpus'][string]): string {
  const file = tuneCacheFile(entry.gpu, entry.modelHash);
  mkdirSync(dirname(file), { recursive: true });
  const tune: TuneFile = { format: 'nincc-tune', version: 1, gpus: { [entry.gpu]: entry } };
  writeFileAtomicSync(file, `${JSON.stringify(tune, null, 2)}\n`);
  return file;
}
