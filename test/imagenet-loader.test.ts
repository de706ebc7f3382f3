// The ImageNet folder loader: class order, layout errors, skipped-file counts, the exact evaluation
// count, determinism across worker counts with a fixed seed, the prefetch ring, and the mean/std estimate.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataLayoutError, listImageFolder, openImageNetFolder, type ImageNetFolder } from '../runtime/imagenet/folder.js';
import { DecodePool } from '../runtime/imagenet/decode-pool.js';
import { decodeResized } from '../runtime/imagenet/decode.js';
import { estimateChannelStats, formatTransform } from '../runtime/imagenet/channel-stats.js';
import { drawCrop, drawImage, sampleStream } from '../runtime/imagenet/sampler.js';
import { ImageFolderEvalSource, ImageNetTrainSource, prefetched } from '../runtime/imagenet/sources.js';
import { trainHookReference, torchMeanStd } from './imagenet/donkey-reference.js';
import { collect } from './imagenet/collect.js';
import { CLASSES, makeImageNetFolder, makeSolidFolder, type TestFolder } from './imagenet/make-folder.js';

const crop = { channels: 3 as const, width: 32, height: 32 };
const transform = { mean: [0.5, 0.45, 0.4], std: [0.25, 0.25, 0.25] };
const work = mkdtempSync(join(tmpdir(), 'nincc-imagenet-loader-'));

describe('ImageNet folder layout', () => {
  let made: TestFolder;
  let folder: ImageNetFolder;
  beforeAll(async () => {
    made = await makeImageNetFolder(join(work, 'imagenet'));
    folder = openImageNetFolder(made.root);
  });

  it('numbers classes in byte order, lists image files by extension and sorts them', () => {
    expect(folder.train.classes).toEqual([...CLASSES]);
    expect(folder.val.classes).toEqual([...CLASSES]);
    expect(folder.train.files.length).toBe(made.good.train.length + made.bad.train.length);
    expect(folder.train.files.some((f) => f.endsWith('README.txt'))).toBe(false);
    expect(folder.train.files.filter((f) => f.includes('/Zebra/')).map((f) => f.split('/').pop())).toEqual(['z_200x500.JPEG', 'z_300x200.JPEG', 'z_gray.JPEG', 'z_truncated.JPEG']);
    folder.train.files.forEach((f, i) => expect(f.split('/').at(-2)).toBe(CLASSES[folder.train.labels[i]]));
    expect([...folder.train.classCount]).toEqual([4, 4, 3]);
  });

  it('names the path of an empty class directory, a missing val/ and a validation class training lacks', () => {
    const root = join(work, 'broken');
    mkdirSync(join(root, 'train', 'cat'), { recursive: true });
    mkdirSync(join(root, 'train', 'dog'), { recursive: true });
    expect(() => openImageNetFolder(root)).toThrow(`${join(root, 'val')}: missing`);
    mkdirSync(join(root, 'val', 'cat'), { recursive: true });
    expect(() => openImageNetFolder(root)).toThrow(new DataLayoutError(`${join(root, 'train', 'cat')}: empty class directory (no .JPEG, .jpg, .png, .ppm or .bmp files)`));
    expect(() => listImageFolder(join(made.root, 'val'), ['Zebra', 'apple'])).toThrow(`${join(made.root, 'val', 'Äpfel')}: class 'Äpfel' is not one of the 2 training classes`);
    expect(() => listImageFolder(join(root, 'nope'))).toThrow(`${join(root, 'nope')}: no such directory`);
    rmSync(root, { recursive: true });
  });
});

describe('streaming sources', () => {
  let made: TestFolder;
  let folder: ImageNetFolder;
  const pools: DecodePool[] = [];
  const pool = (workers: number) => {
    const p = new DecodePool({ workers, imageSize: 40, crop, transform });
    pools.push(p);
    return p;
  };
  beforeAll(async () => {
    made = await makeImageNetFolder(join(work, 'streams'));
    folder = openImageNetFolder(made.root);
  });
  afterAll(() => Promise.all(pools.map((p) => p.close())));

  it('a whole pass trains on as many images as the folder lists, replacing and counting each unreadable one', async () => {
    const source = new ImageNetTrainSource(pool(2), folder.train, { crop, sampling: 'balanced', prefetch: 2 });
    expect(source.steps(5)).toBe(3);
    const { images, labels } = await collect(source.batches(1, 5, 7));
    expect(labels.map((l) => l.length)).toEqual([5, 5, 1]);
    expect(images.every((x) => x.every(Number.isFinite))).toBe(true);
    const skipped = source.takeSkipped();
    expect(skipped.count).toBe(made.bad.train.length);
    expect([...skipped.files.keys()].sort()).toEqual([...made.bad.train].sort());
    expect(source.takeSkipped().count).toBe(0); // reported once, then reset
  });

  it('the same seed gives the same batches whatever the number of workers; another seed does not', async () => {
    const opts = { crop, sampling: 'balanced' as const, prefetch: 1, epochSize: 3 };
    const a = await collect(new ImageNetTrainSource(pool(1), folder.train, opts).batches(2, 4, 11));
    const b = await collect(new ImageNetTrainSource(pool(3), folder.train, { ...opts, prefetch: 3 }).batches(2, 4, 11));
    expect(b.labels).toEqual(a.labels);
    b.images.forEach((x, i) => expect(x).toEqual(a.images[i]));
    const c = await collect(new ImageNetTrainSource(pool(2), folder.train, opts).batches(2, 4, 12));
    expect(c.images.some((x, i) => x.some((v, j) => v !== a.images[i][j]))).toBe(true);
  });

  it('a shard decodes only its rank\'s share of each batch, exactly as the whole batch has it (data-parallel ranks)', async () => {
    const opts = { crop, sampling: 'balanced' as const, prefetch: 1 };
    const whole = await collect(new ImageNetTrainSource(pool(2), folder.train, opts).batches(1, 5, 7));
    const shares: { images: Float32Array[]; labels: number[][] }[] = [];
    for (const rank of [0, 1]) {
      const totals: number[] = [];
      const source = new ImageNetTrainSource(pool(2), folder.train, opts);
      const images: Float32Array[] = [];
      const labels: number[][] = [];
      for await (const b of source.batches(1, 5, 7, 0, { rank, size: 2 })) {
        if (!(b.images instanceof Float32Array)) throw new Error('a float pool gives float batches');
        images.push(b.images.slice());
        labels.push([...b.labels]);
        totals.push(b.total!);
      }
      expect(totals).toEqual([5, 5, 1]);
      shares.push({ images, labels });
    }
    expect(shares[0].labels.map((l) => l.length)).toEqual([2, 2, 0]);
    whole.labels.forEach((l, i) => expect([...shares[0].labels[i], ...shares[1].labels[i]]).toEqual(l));
    whole.images.forEach((x, i) => expect(Float32Array.from([...shares[0].images[i], ...shares[1].images[i]])).toEqual(x));
  });

  it('samples epochSize batches class-balanced: sample k is exactly the draw of its own stream', async () => {
    const source = new ImageNetTrainSource(pool(2), folder.train, { crop, sampling: 'balanced', prefetch: 2, epochSize: 2 });
    const { images, labels } = await collect(source.batches(3, 3, 5));
    expect(labels.map((l) => l.length)).toEqual([3, 3]);
    const plane = 3 * 32 * 32;
    for (let k = 0; k < 6; k++) {
      const next = sampleStream(5, 3, k);
      let file = drawImage(folder.train, 'balanced', next);
      let draws = drawCrop(next);
      while (made.bad.train.includes(folder.train.files[file])) {
        file = drawImage(folder.train, 'balanced', next);
        draws = drawCrop(next);
      }
      expect(labels[Math.floor(k / 3)][k % 3]).toBe(folder.train.labels[file]);
      const ref = trainHookReference(await decodeResized(folder.train.files[file], 40, 3), 32, 32, draws, transform.mean, transform.std);
      const got = images[Math.floor(k / 3)].subarray((k % 3) * plane, (k % 3 + 1) * plane);
      let worst = 0;
      for (let i = 0; i < plane; i++) worst = Math.max(worst, Math.abs(got[i] - ref.out[i]));
      expect(worst).toBeLessThan(2e-6);
    }
  });

  it('evaluates every readable validation image once, in order, in batches including the last partial one', async () => {
    const source = new ImageFolderEvalSource(pool(2), folder.val, { crop, prefetch: 1 });
    const { labels } = await collect(source.batches(3));
    const readable = folder.val.files.filter((f) => !made.bad.val.includes(f));
    expect(labels.flat()).toEqual(readable.map((f) => folder.val.labels[folder.val.files.indexOf(f)]));
    expect(labels.flat().length).toBe(made.good.val.length);
    expect(source.takeSkipped()).toEqual({ count: 1, files: new Map([[made.bad.val[0], expect.any(String)]]) });
    await collect(source.batches(3)); // a second pass counts again (each epoch reports its own)
    expect(source.takeSkipped().count).toBe(1);
  });
});

describe('prefetch ring', () => {
  it('keeps at most `slots` steps started ahead of the consumer and never hands out a slot in use', async () => {
    const started: number[] = [];
    const inUse = new Set<number>();
    const fill = async (step: number, slot: number) => {
      started.push(step);
      expect(inUse.has(slot)).toBe(false);
      await new Promise((r) => setTimeout(r, 5 * ((step * 7) % 3)));
      return { step, slot };
    };
    let consumed = 0;
    for await (const r of prefetched(10, 3, fill)) {
      expect(r.step).toBe(consumed);
      expect(Math.max(...started)).toBeLessThan(consumed + 3);
      inUse.add(r.slot);
      await new Promise((res) => setTimeout(res, 2));
      inUse.delete(r.slot);
      consumed++;
    }
    expect(consumed).toBe(10);
  });

  it('passes a failing step on to the consumer without an unhandled rejection', async () => {
    const fill = async (step: number) => {
      if (step === 2) throw new Error('step 2 broke');
      return step;
    };
    const got: number[] = [];
    await expect((async () => {
      for await (const s of prefetched(5, 4, fill)) got.push(s);
    })()).rejects.toThrow('step 2 broke');
    expect(got).toEqual([0, 1]);
  });
});

describe("donkey.lua's mean/std estimate", () => {
  it('is the mean of per-crop channel means and of per-crop unbiased stds, over two independent sets of crops', async () => {
    const made = await makeImageNetFolder(join(work, 'stats'));
    const list = listImageFolder(join(made.root, 'train'));
    const samples = 12;
    const s = await estimateChannelStats(list, { samples, seed: 4, imageSize: 40, crop, workers: 2 });
    const expected = { mean: [0, 0, 0], std: [0, 0, 0] };
    for (const pass of [1, 2] as const) {
      for (let k = 0; k < samples; k++) {
        const next = sampleStream(4, pass, k);
        let file = drawImage(list, 'balanced', next);
        let draws = drawCrop(next);
        while (made.bad.train.includes(list.files[file])) {
          file = drawImage(list, 'balanced', next);
          draws = drawCrop(next);
        }
        const ref = trainHookReference(await decodeResized(list.files[file], 40, 3), 32, 32, draws, [0, 0, 0], [1, 1, 1]);
        const ms = torchMeanStd(ref.out, 3, 32 * 32);
        for (let c = 0; c < 3; c++) {
          if (pass === 1) expected.mean[c] += ms.mean[c] / samples;
          else expected.std[c] += ms.std[c] / samples;
        }
      }
    }
    for (let c = 0; c < 3; c++) {
      expect(s.mean[c]).toBeCloseTo(expected.mean[c], 6);
      expect(s.std[c]).toBeCloseTo(expected.std[c], 6);
    }
    expect(formatTransform(s)).toMatch(/^transform \{ mean 0\.\d{14} 0\.\d{14} 0\.\d{14}\n {12}std {2}0\.\d{14} 0\.\d{14} 0\.\d{14} \}$/);
  });

  it('of a folder of one colour is that colour, with std 0', async () => {
    const root = join(work, 'solid');
    await makeSolidFolder(root, [51, 102, 204]);
    const s = await estimateChannelStats(listImageFolder(root), { samples: 10, seed: 1, imageSize: 40, crop, workers: 1 });
    expect(s.mean.map((m) => m * 255)).toEqual([expect.closeTo(51, 4), expect.closeTo(102, 4), expect.closeTo(204, 4)]);
    expect(s.std).toEqual([0, 0, 0]);
  });
});
