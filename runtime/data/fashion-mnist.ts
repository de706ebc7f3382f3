// Fashion-MNIST loader: the four IDX files Debian's dataset-fashion-mnist installs, as NCHW float
// images in [0, 1] plus int32 labels. Normalisation is a separate pure step (normalizeImages).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readIdxFile } from './idx.js';

export type FashionMnistSplit = 'train' | 'test';

/** Where `apt-get install dataset-fashion-mnist` (scripts/install-deps.sh) puts the files. */
export const FASHION_MNIST_SYSTEM_DIR = '/usr/share/datasets/fashion-mnist';
/** The name `--data fashion-mnist` stands for. */
export const FASHION_MNIST_DATA_NAME = 'fashion-mnist';

export const FASHION_MNIST_FILES: Record<FashionMnistSplit, { images: string; labels: string }> = {
  train: { images: 'train-images-idx3-ubyte.gz', labels: 'train-labels-idx1-ubyte.gz' },
  test: { images: 't10k-images-idx3-ubyte.gz', labels: 't10k-labels-idx1-ubyte.gz' },
};

export const FASHION_MNIST_CLASS_NAMES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;

export const FASHION_MNIST_SIDE = 28;

/** Pixel mean and standard deviation of the 60000 training images scaled to [0, 1]. */
export const FASHION_MNIST_MEAN = 0.286;
export const FASHION_MNIST_STD = 0.353;

export interface FashionMnistSet {
  split: FashionMnistSplit;
  /** count × 1 × 28 × 28, row-major; [0, 1] unless opts.normalize was given. */
  images: Float32Array;
  labels: Int32Array;
  count: number;
  shape: [number, 1, number, number];
  classes: 10;
  classNames: readonly string[];
}

export interface LoadFashionMnistOptions {
  /** Keep only the first `limit` examples (after validating the whole files). */
  limit?: number;
  /** Apply normalizeImages with these statistics, e.g. FASHION_MNIST_MEAN / FASHION_MNIST_STD. */
  normalize?: { mean: number; std: number };
}

/** (x - mean) / std on a copy; the input is left as it was. */
export function normalizeImages(images: Float32Array, mean: number, std: number): Float32Array {
  if (!(std > 0)) throw new Error(`normalizeImages: std must be positive, got ${std}`);
  const out = new Float32Array(images.length);
  const scale = 1 / std;
  for (let i = 0; i < images.length; i++) out[i] = (images[i] - mean) * scale;
  return out;
}

/**
 * Turns a `--data` argument into a directory holding the four IDX files: the name
 * "fashion-mnist" means the system install, anything else is a path. Throws with what to do next.
 */
export function resolveFashionMnistDir(data: string = FASHION_MNIST_DATA_NAME): string {
  const isSystem = data === FASHION_MNIST_DATA_NAME;
  // NINCC_FASHION_MNIST_DIR moves the system copy (a shared data disk; tests of the missing-data path).
  const dir = isSystem ? (process.env.NINCC_FASHION_MNIST_DIR ?? FASHION_MNIST_SYSTEM_DIR) : path.resolve(data);
  const hint = isSystem
    ? `run scripts/install-deps.sh (apt-get install dataset-fashion-mnist), or pass --data <dir> with the IDX files`
    : `pass a directory holding ${allFileNames().join(', ')} (or --data fashion-mnist for the system copy)`;
  if (!fs.existsSync(dir)) {
    throw new Error(`Fashion-MNIST not found: ${dir} does not exist; ${hint}`);
  }
  const missing = allFileNames().filter((name) => findIdxFile(dir, name) === undefined);
  if (missing.length > 0) {
    throw new Error(`Fashion-MNIST in ${dir} is incomplete (missing ${missing.join(', ')}); ${hint}`);
  }
  return dir;
}

function allFileNames(): string[] {
  return Object.values(FASHION_MNIST_FILES).flatMap((f) => [f.images, f.labels]);
}

/** Accepts the gzipped name or, for someone who gunzipped the files, the name without `.gz`. */
function findIdxFile(dir: string, gzName: string): string | undefined {
  for (const candidate of [gzName, gzName.replace(/\.gz$/, '')]) {
    const full = path.join(dir, candidate);
    if (fs.existsSync(full)) return full;
  }
  return undefined;
}

/** Loads one split from `dir` and checks it is what Fashion-MNIST must be. */
export function loadFashionMnist(
  dir: string,
  split: FashionMnistSplit,
  opts: LoadFashionMnistOptions = {},
): FashionMnistSet {
  const names = FASHION_MNIST_FILES[split];
  if (!names) throw new Error(`loadFashionMnist: split must be 'train' or 'test', got '${String(split)}'`);
  const imagesPath = findIdxFile(dir, names.images) ?? path.join(dir, names.images);
  const labelsPath = findIdxFile(dir, names.labels) ?? path.join(dir, names.labels);
  if (!fs.existsSync(imagesPath) || !fs.existsSync(labelsPath)) resolveFashionMnistDir(dir); // throws with a hint

  const images = readIdxFile(imagesPath);
  const [imageCount, rows, cols] = images.dims;
  if (images.dims.length !== 3 || rows !== FASHION_MNIST_SIDE || cols !== FASHION_MNIST_SIDE) {
    throw new Error(
      `${imagesPath}: expected images of ${FASHION_MNIST_SIDE}×${FASHION_MNIST_SIDE} (dims [N, 28, 28]), got dims [${images.dims.join(', ')}]`,
    );
  }
  const labels = readIdxFile(labelsPath);
  if (labels.dims.length !== 1) {
    throw new Error(`${labelsPath}: expected a 1-D label file, got dims [${labels.dims.join(', ')}]`);
  }
  if (labels.dims[0] !== imageCount) {
    throw new Error(`${imagesPath} has ${imageCount} images but ${labelsPath} has ${labels.dims[0]} labels`);
  }
  const classCount = FASHION_MNIST_CLASS_NAMES.length;
  const badLabel = labels.data.findIndex((label) => label >= classCount);
  if (badLabel >= 0) {
    throw new Error(`${labelsPath}: label ${labels.data[badLabel]} at index ${badLabel} is outside 0..${classCount - 1}`);
  }

  const count = keepCount(imageCount, opts.limit);
  const pixels = count * FASHION_MNIST_SIDE * FASHION_MNIST_SIDE;
  let unit: Float32Array = new Float32Array(pixels);
  for (let i = 0; i < pixels; i++) unit[i] = images.data[i] / 255;
  if (opts.normalize) unit = normalizeImages(unit, opts.normalize.mean, opts.normalize.std);

  return {
    split,
    images: unit,
    labels: Int32Array.from(labels.data.subarray(0, count)),
    count,
    shape: [count, 1, FASHION_MNIST_SIDE, FASHION_MNIST_SIDE],
    classes: 10,
    classNames: FASHION_MNIST_CLASS_NAMES,
  };
}

function keepCount(available: number, limit: number | undefined): number {
  if (limit === undefined) return available;
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new Error(`loadFashionMnist: limit must be a non-negative integer, got ${limit}`);
  }
  return Math.min(limit, available);
}
