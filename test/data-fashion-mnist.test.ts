// Fashion-MNIST loader on the shipped mini subset (always) and on the system dataset (when
// scripts/install-deps.sh has installed it), plus each consistency error with its exact message.
import { afterAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeIdx, readIdxFile } from '../runtime/data/idx.js';
import {
  FASHION_MNIST_CLASS_NAMES,
  FASHION_MNIST_FILES,
  FASHION_MNIST_MEAN,
  FASHION_MNIST_STD,
  FASHION_MNIST_SYSTEM_DIR,
  loadFashionMnist,
  normalizeImages,
  resolveFashionMnistDir,
} from '../runtime/data/fashion-mnist.js';

const MINI = path.join(import.meta.dirname, 'data', 'fashion-mnist-mini');
const FULL_FILES = Object.values(FASHION_MNIST_FILES).flatMap((f) => [f.images, f.labels]);
const hasFullDataset = FULL_FILES.every((name) => fs.existsSync(path.join(FASHION_MNIST_SYSTEM_DIR, name)));
if (!hasFullDataset) {
  console.log(
    `skipping full Fashion-MNIST tests: ${FASHION_MNIST_SYSTEM_DIR} is missing or incomplete; run scripts/install-deps.sh`,
  );
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nincc-fashion-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A copy of the mini test split with one file replaced, for the consistency errors. */
function brokenCopy(name: string, replace: Partial<Record<'images' | 'labels', Uint8Array>>): string {
  const target = path.join(dir, name);
  fs.mkdirSync(target);
  for (const file of FULL_FILES) fs.copyFileSync(path.join(MINI, file), path.join(target, file));
  if (replace.images) fs.writeFileSync(path.join(target, FASHION_MNIST_FILES.test.images), replace.images);
  if (replace.labels) fs.writeFileSync(path.join(target, FASHION_MNIST_FILES.test.labels), replace.labels);
  return target;
}

function classHistogram(labels: Int32Array): number[] {
  const counts = new Array<number>(10).fill(0);
  for (const label of labels) counts[label]++;
  return counts;
}

describe('the shipped mini subset', () => {
  it('train: 6000 images of 1×28×28 in [0, 1], labels 0..9 with every class present', () => {
    const set = loadFashionMnist(MINI, 'train');
    expect(set.count).toBe(6000);
    expect(set.shape).toEqual([6000, 1, 28, 28]);
    expect(set.images.length).toBe(6000 * 784);
    expect(set.labels.length).toBe(6000);
    expect(set.classes).toBe(10);
    expect(set.classNames).toEqual(FASHION_MNIST_CLASS_NAMES);
    expect(Math.min(...set.labels)).toBe(0);
    expect(Math.max(...set.labels)).toBe(9);
    expect(classHistogram(set.labels)).toEqual([560, 643, 608, 612, 584, 594, 590, 617, 590, 602]);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of set.images) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    expect(lo).toBe(0);
    expect(hi).toBe(1);
  });

  it('test: 1000 examples; the first is an ankle boot, as in the full set', () => {
    const set = loadFashionMnist(MINI, 'test');
    expect(set.count).toBe(1000);
    expect(set.labels[0]).toBe(9);
    expect(set.classNames[set.labels[0]]).toBe('Ankle boot');
    expect(classHistogram(set.labels).every((n) => n > 50)).toBe(true);
  });

  it('limit keeps the first examples', () => {
    const all = loadFashionMnist(MINI, 'test');
    const some = loadFashionMnist(MINI, 'test', { limit: 10 });
    expect(some.count).toBe(10);
    expect(some.shape).toEqual([10, 1, 28, 28]);
    expect([...some.labels]).toEqual([...all.labels.subarray(0, 10)]);
    expect([...some.images]).toEqual([...all.images.subarray(0, 7840)]);
    expect(loadFashionMnist(MINI, 'test', { limit: 5000 }).count).toBe(1000);
    expect(() => loadFashionMnist(MINI, 'test', { limit: -1 })).toThrow(
      'loadFashionMnist: limit must be a non-negative integer, got -1',
    );
  });

  it('normalize applies (x - mean) / std', () => {
    const raw = loadFashionMnist(MINI, 'test', { limit: 3 });
    const norm = loadFashionMnist(MINI, 'test', { limit: 3, normalize: { mean: FASHION_MNIST_MEAN, std: FASHION_MNIST_STD } });
    for (let i = 0; i < raw.images.length; i += 97) {
      expect(norm.images[i]).toBeCloseTo((raw.images[i] - FASHION_MNIST_MEAN) / FASHION_MNIST_STD, 5);
    }
  });
});

describe('normalizeImages', () => {
  it('is pure and gives zero mean, unit variance with the data’s own statistics', () => {
    const input = Float32Array.of(0, 0.5, 1, 0.25);
    const copy = Float32Array.from(input);
    const mean = 0.4375;
    const std = Math.sqrt(input.reduce((s, x) => s + (x - mean) ** 2, 0) / input.length);
    const out = normalizeImages(input, mean, std);
    expect([...input]).toEqual([...copy]);
    expect(out).not.toBe(input);
    expect(out.reduce((s, x) => s + x, 0)).toBeCloseTo(0, 6);
    expect(out.reduce((s, x) => s + x * x, 0) / out.length).toBeCloseTo(1, 5);
    expect(() => normalizeImages(input, 0, 0)).toThrow('normalizeImages: std must be positive, got 0');
  });
});

describe('consistency errors', () => {
  const labels = readIdxFile(path.join(MINI, FASHION_MNIST_FILES.test.labels));
  const images = readIdxFile(path.join(MINI, FASHION_MNIST_FILES.test.images));

  it('images and labels disagree in count', () => {
    const short = encodeIdx({ dims: [999], data: labels.data.subarray(0, 999) });
    const target = brokenCopy('count-mismatch', { labels: short });
    expect(() => loadFashionMnist(target, 'test')).toThrow(
      `${path.join(target, FASHION_MNIST_FILES.test.images)} has 1000 images but ` +
        `${path.join(target, FASHION_MNIST_FILES.test.labels)} has 999 labels`,
    );
  });

  it('a label outside 0..9', () => {
    const bad = Uint8Array.from(labels.data);
    bad[17] = 10;
    const target = brokenCopy('bad-label', { labels: encodeIdx({ dims: [1000], data: bad }) });
    expect(() => loadFashionMnist(target, 'test')).toThrow(
      `${path.join(target, FASHION_MNIST_FILES.test.labels)}: label 10 at index 17 is outside 0..9`,
    );
  });

  it('images that are not 28×28', () => {
    const wide = encodeIdx({ dims: [1000, 28 * 28, 1], data: images.data });
    const target = brokenCopy('bad-dims', { images: wide });
    expect(() => loadFashionMnist(target, 'test')).toThrow(
      `${path.join(target, FASHION_MNIST_FILES.test.images)}: expected images of 28×28 (dims [N, 28, 28]), got dims [1000, 784, 1]`,
    );
  });

  it('labels that are not 1-D', () => {
    const target = brokenCopy('bad-label-dims', { labels: encodeIdx({ dims: [500, 2], data: labels.data }) });
    expect(() => loadFashionMnist(target, 'test')).toThrow(
      `${path.join(target, FASHION_MNIST_FILES.test.labels)}: expected a 1-D label file, got dims [500, 2]`,
    );
  });
});

describe('resolveFashionMnistDir', () => {
  it('accepts a directory holding the four files', () => {
    expect(resolveFashionMnistDir(MINI)).toBe(MINI);
  });

  it('explains a missing directory and an incomplete one', () => {
    const nowhere = path.join(dir, 'nowhere');
    expect(() => resolveFashionMnistDir(nowhere)).toThrow(
      `Fashion-MNIST not found: ${nowhere} does not exist; pass a directory holding ` +
        `${FULL_FILES.join(', ')} (or --data fashion-mnist for the system copy)`,
    );
    const partial = path.join(dir, 'partial');
    fs.mkdirSync(partial);
    fs.copyFileSync(path.join(MINI, FASHION_MNIST_FILES.train.images), path.join(partial, FASHION_MNIST_FILES.train.images));
    expect(() => resolveFashionMnistDir(partial)).toThrow(
      `Fashion-MNIST in ${partial} is incomplete (missing train-labels-idx1-ubyte.gz, ` +
        `t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz); pass a directory`,
    );
    expect(() => loadFashionMnist(partial, 'train')).toThrow(/is incomplete \(missing train-labels-idx1-ubyte\.gz/);
  });

  it('without the system dataset, "fashion-mnist" says to run install-deps', () => {
    // Point the system location somewhere empty, so the message is checked whether or not the package is installed.
    process.env.NINCC_FASHION_MNIST_DIR = '/nonexistent/fashion-mnist';
    try {
      expect(() => resolveFashionMnistDir('fashion-mnist')).toThrow(
        'Fashion-MNIST not found: /nonexistent/fashion-mnist does not exist; run scripts/install-deps.sh (apt-get install dataset-fashion-mnist)',
      );
    } finally {
      delete process.env.NINCC_FASHION_MNIST_DIR;
    }
  });

  it.skipIf(!hasFullDataset)('"fashion-mnist" means the system install', () => {
    expect(resolveFashionMnistDir('fashion-mnist')).toBe(FASHION_MNIST_SYSTEM_DIR);
    expect(resolveFashionMnistDir()).toBe(FASHION_MNIST_SYSTEM_DIR);
  });
});

describe.skipIf(!hasFullDataset)('the full system dataset', () => {
  it('has 60000 training and 10000 test examples with balanced classes', () => {
    const train = loadFashionMnist(resolveFashionMnistDir('fashion-mnist'), 'train');
    expect(train.count).toBe(60000);
    expect(classHistogram(train.labels)).toEqual(new Array(10).fill(6000));
    const test = loadFashionMnist(FASHION_MNIST_SYSTEM_DIR, 'test');
    expect(test.count).toBe(10000);
    expect(classHistogram(test.labels)).toEqual(new Array(10).fill(1000));
  });

  it('training pixel statistics match FASHION_MNIST_MEAN and FASHION_MNIST_STD', () => {
    const { images } = loadFashionMnist(FASHION_MNIST_SYSTEM_DIR, 'train');
    let sum = 0;
    let sumSq = 0;
    for (const v of images) {
      sum += v;
      sumSq += v * v;
    }
    const mean = sum / images.length;
    expect(mean).toBeCloseTo(FASHION_MNIST_MEAN, 3);
    expect(Math.sqrt(sumSq / images.length - mean * mean)).toBeCloseTo(FASHION_MNIST_STD, 3);
  });

  it('the mini subset is exactly the first records of each full file', () => {
    for (const split of ['train', 'test'] as const) {
      for (const kind of ['images', 'labels'] as const) {
        const name = FASHION_MNIST_FILES[split][kind];
        const mini = readIdxFile(path.join(MINI, name));
        const full = readIdxFile(path.join(FASHION_MNIST_SYSTEM_DIR, name));
        expect(mini.dims.slice(1), name).toEqual(full.dims.slice(1));
        expect(Buffer.from(mini.data).equals(Buffer.from(full.data.subarray(0, mini.data.length))), name).toBe(true);
      }
    }
  });
});
