// The per-channel mean and std estimate of donkey.lua, for a spec's `transform { mean … std … }`.
//
// What the Lua did (donkey.lua, "Estimate the per-channel mean/std"): with mean and std still nil,
// draw nSamples = 10000 training crops with trainLoader:sample(1) (class-balanced, random crop,
// random flip, values in [0, 1]) and average img[c]:mean() over them; then draw *another* 10000 crops
// and average img[c]:std() over those. torch's std() is the unbiased one (divides by n − 1), so the
// "std" is a mean of per-crop standard deviations, not the standard deviation of all pixels.
// Both are done here the same way, in float64 over the float32 crop values.
import type { SkipReport } from '../dataset.js';
import { DecodePool } from './decode-pool.js';
import { identityTransform } from './donkey.js';
import type { ImageList } from './folder.js';
import { ImageNetTrainSource, type Crop } from './sources.js';

export interface ChannelStats {
  readonly mean: number[];
  readonly std: number[];
  readonly samples: number; // crops per estimate (each estimate has its own)
  readonly skipped: SkipReport;
}

export interface StatsOptions {
  readonly samples: number;
  readonly seed: number;
  readonly imageSize: number;
  readonly crop: Crop & { readonly channels: 1 | 3 };
  readonly workers: number;
  readonly onProgress?: (done: number, total: number) => void;
}

/** Mean over the pixels of one plane, and its unbiased standard deviation (torch's mean() and std()). */
export function planeMeanStd(v: Float32Array): { mean: number; std: number } {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i];
  const mean = sum / v.length;
  let sq = 0;
  for (let i = 0; i < v.length; i++) sq += (v[i] - mean) * (v[i] - mean);
  return { mean, std: Math.sqrt(sq / (v.length - 1)) };
}

export async function estimateChannelStats(list: ImageList, o: StatsOptions): Promise<ChannelStats> {
  const { channels } = o.crop;
  const plane = o.crop.height * o.crop.width;
  const chunk = 64;
  const pool = new DecodePool({ workers: o.workers, imageSize: o.imageSize, crop: o.crop, transform: identityTransform(channels) });
  try {
    const source = new ImageNetTrainSource(pool, list, { crop: o.crop, epochSize: Math.ceil(o.samples / chunk), sampling: 'balanced', prefetch: 2 });
    // The two estimates draw their own crops, as the Lua's two loops did: "epochs" 1 and 2 of the sampler.
    const estimate = async (pass: 1 | 2, pick: (s: { mean: number; std: number }) => number): Promise<number[]> => {
      const total = new Array<number>(channels).fill(0);
      let seen = 0;
      for await (const b of source.batches(pass, chunk, o.seed)) {
        if (!(b.images instanceof Float32Array)) throw new Error('internal error: the statistics pool decodes float crops');
        const n = Math.min(b.count, o.samples - seen);
        for (let i = 0; i < n; i++) {
          for (let c = 0; c < channels; c++) total[c] += pick(planeMeanStd(b.images.subarray((i * channels + c) * plane, (i * channels + c + 1) * plane)));
        }
        seen += n;
        o.onProgress?.(seen + (pass - 1) * o.samples, 2 * o.samples);
        if (seen >= o.samples) break;
      }
      return total.map((t) => t / seen);
    };
    const mean = await estimate(1, (s) => s.mean);
    const std = await estimate(2, (s) => s.std);
    return { mean, std, samples: o.samples, skipped: source.takeSkipped() };
  } finally {
    await pool.close();
  }
}

/** The block to paste into a spec, in the layout of models/nin.model's transform block. */
export function formatTransform(s: Pick<ChannelStats, 'mean' | 'std'>): string {
  const f = (xs: readonly number[]) => xs.map((x) => x.toFixed(14)).join(' ');
  return `transform { mean ${f(s.mean)}\n            std  ${f(s.std)} }`;
}
