// A labelled image set in memory (NCHW float32, already normalised) and the loaders behind `--data`.
import { existsSync, statSync } from 'node:fs';
import { loadFashionMnist, resolveFashionMnistDir } from './data/fashion-mnist.js';

export interface LabelledImages {
  readonly name: string;
  readonly images: Float32Array; // count × C × H × W, normalised with the spec's transform
  readonly labels: Int32Array;
  readonly count: number;
  readonly shape: readonly number[]; // C, H, W
  readonly classes: number;
}

export interface Transform {
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

/** (x − mean[c]) / std[c] per channel, in place. */
export function normalizeInPlace(images: Float32Array, shape: readonly number[], t: Transform): void {
  const [c, h, w] = shape;
  const plane = h * w;
  for (let i = 0; i < images.length; i++) {
    const ch = Math.floor(i / plane) % c;
    images[i] = (images[i] - t.mean[ch]) / t.std[ch];
  }
}

/** `--data fashion-mnist` (the system copy) or a directory with the four Fashion-MNIST IDX files. */
export function loadLabelledImages(data: string, split: 'train' | 'test', transform: Transform | undefined, limit?: number): LabelledImages {
  if (data !== 'fashion-mnist' && (!existsSync(data) || !statSync(data).isDirectory())) {
    throw new Error(`--data ${data}: not a directory (expected 'fashion-mnist' or a directory of Fashion-MNIST IDX files)`);
  }
  const dir = resolveFashionMnistDir(data);
  const set = loadFashionMnist(dir, split, limit !== undefined ? { limit } : {});
  const shape = [1, 28, 28];
  const images = set.images;
  if (transform) normalizeInPlace(images, shape, transform);
  return { name: `${dir} (${split})`, images, labels: set.labels, count: set.count, shape, classes: set.classes };
}
