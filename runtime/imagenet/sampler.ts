// Which image each training sample is and how it is cropped, decided from (seed, epoch, sample) alone so
// the batches never depend on which decode worker finished first, and a resumed run sees the same ones.
import { uniformStream } from '../init.js';
import { epochOrder } from '../dataset.js';
import type { CropDraws } from './donkey.js';
import type { ImageList } from './folder.js';

/**
 * balanced: Torch's dataLoader:sample — a class uniformly, then an image of it uniformly.
 * uniform: an image uniformly from the whole training set.
 */
export type Sampling = 'balanced' | 'uniform';

export const SAMPLINGS: readonly Sampling[] = ['balanced', 'uniform'];

/** murmur3's finaliser: spreads neighbouring seeds far apart before they seed mulberry32. */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The random stream of one sample of one epoch; it also supplies the replacement when a file cannot be read. */
export function sampleStream(seed: number, epoch: number, sample: number): () => number {
  return uniformStream(mix32(mix32(mix32(seed >>> 0) ^ epoch) ^ sample));
}

export function drawCrop(next: () => number): CropDraws {
  const uY = next();
  const uX = next();
  const uFlip = next();
  return { uY, uX, uFlip };
}

/** A file index by the sampling rule. */
export function drawImage(list: ImageList, sampling: Sampling, next: () => number): number {
  if (sampling === 'uniform') return Math.floor(next() * list.files.length);
  const withImages = list.classCount.length;
  // Every training class has images (an empty one is a layout error), so a uniform class is safe.
  const c = Math.floor(next() * withImages);
  return list.classStart[c] + Math.floor(next() * list.classCount[c]);
}

/** How one epoch picks its samples: `epochSize` batches drawn by a rule, or one shuffled pass. */
export interface EpochPlan {
  readonly steps: number;
  readonly samples: number; // in the whole epoch
  /** The first choice for sample k and the stream its crop and any replacements come from. */
  pick(k: number): { file: number; next: () => number };
  /** Another image, when the chosen one could not be read. */
  replace(next: () => number): number;
}

export function epochPlan(list: ImageList, o: { epoch: number; seed: number; batch: number; epochSize?: number; sampling: Sampling }): EpochPlan {
  if (o.epochSize !== undefined) {
    return {
      steps: o.epochSize,
      samples: o.epochSize * o.batch,
      pick(k) {
        const next = sampleStream(o.seed, o.epoch, k);
        return { file: drawImage(list, o.sampling, next), next };
      },
      replace: (next) => drawImage(list, o.sampling, next),
    };
  }
  // Whole passes: each image once, in the order the in-memory trainer also uses.
  const order = epochOrder(list.files.length, o.seed, o.epoch);
  return {
    steps: Math.ceil(list.files.length / o.batch),
    samples: list.files.length,
    pick(k) {
      return { file: order[k], next: sampleStream(o.seed, o.epoch, k) };
    },
    replace: (next) => drawImage(list, 'uniform', next),
  };
}
