// How a global batch and the gradient space are split between ranks (runtime/distributed/shard.ts).
import { describe, expect, it } from 'vitest';
import { inMemoryTrainSource, type Batch } from '../runtime/dataset.js';
import { gradientBuckets, rankShare } from '../runtime/distributed/shard.js';

describe('rankShare', () => {
  it('tiles a batch in rank order with shares differing by at most one', () => {
    for (const [count, size] of [[64, 2], [25, 2], [7, 3], [3, 4], [128, 8]]) {
      const shares = Array.from({ length: size }, (_, r) => rankShare(count, r, size));
      let next = 0;
      for (const s of shares) {
        expect(s.first).toBe(next);
        next += s.count;
      }
      expect(next).toBe(count);
      const counts = shares.map((s) => s.count);
      expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    }
    expect(rankShare(25, 0, 2)).toEqual({ first: 0, count: 12 });
    expect(rankShare(25, 1, 2)).toEqual({ first: 12, count: 13 });
  });
});

describe('gradientBuckets', () => {
  // Tensors as a plan lays them out: ascending offsets, some padding between them.
  const params = [
    { name: 'conv1.weight', offset: 0, size: 800 },
    { name: 'conv1.bias', offset: 800, size: 32 },
    { name: 'conv2.weight', offset: 848, size: 9216 },
    { name: 'conv2.bias', offset: 10064, size: 64 },
    { name: 'fc.weight', offset: 10128, size: 1280 },
    { name: 'fc.bias', offset: 11408, size: 10 },
  ];

  it('goes from the last layer to the first and tiles the tensors\' span without overlap', () => {
    const buckets = gradientBuckets(params, 1000);
    expect(buckets.map((b) => b.tensors)).toEqual([['fc.bias', 'fc.weight'], ['conv2.bias', 'conv2.weight'], ['conv1.bias', 'conv1.weight']]);
    let end = 11418;
    for (const b of buckets) {
      expect(b.offset + b.size).toBe(end);
      end = b.offset;
    }
    expect(end).toBe(0);
  });

  it('one bucket when the bucket size exceeds the model, one tensor each when it is 1', () => {
    expect(gradientBuckets(params, 1 << 20)).toEqual([{ offset: 0, size: 11418, tensors: params.map((p) => p.name).reverse() }]);
    expect(gradientBuckets(params, 1).map((b) => b.tensors.length)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(() => gradientBuckets(params, 0)).toThrow(/at least 1/);
  });
});

describe('a sharded in-memory source', () => {
  it('gives each rank its share of the same global batches, with the global count', async () => {
    const count = 11;
    const set = { name: 'set', images: new Float32Array(count * 4).map((_, i) => i), labels: Int32Array.from({ length: count }, (_, i) => i % 3), count, shape: [1, 2, 2], classes: 3 };
    const source = inMemoryTrainSource(set);
    const copy = (b: Batch) => ({ images: [...b.images], labels: [...b.labels], count: b.count, total: b.total });
    const whole = [];
    for await (const b of source.batches(2, 4, 9, 1)) whole.push(copy(b));
    const shares = [[], [], []] as ReturnType<typeof copy>[][];
    for (const rank of [0, 1, 2]) for await (const b of source.batches(2, 4, 9, 1, { rank, size: 3 })) shares[rank].push(copy(b));
    expect(whole.map((b) => b.count)).toEqual([4, 3]);
    expect(shares.map((s) => s.map((b) => b.count))).toEqual([[1, 1], [1, 1], [2, 1]]);
    whole.forEach((b, i) => {
      expect(shares.flatMap((s) => s[i].images)).toEqual(b.images);
      expect(shares.flatMap((s) => s[i].labels)).toEqual(b.labels);
      expect(shares.map((s) => s[i].total)).toEqual([b.count, b.count, b.count]);
    });
    expect(whole[0].total).toBeUndefined();
  });
});
