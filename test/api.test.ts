// The TypeScript API's argument checks and Torch7-rule initialisation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSpec, type Built } from './reference/artifacts.js';
import { load, type Model } from '../runtime/model.js';

const spec = `model api {
  input 2x6x6
  conv(2, 4, 3, 3, 1, 1, 1, 1) bn(4) relu maxpool(2, 2)
  view(-1) linear(36, 5) logsoftmax
}
`;

describe('runtime API', () => {
  let built: Built;
  let m: Model;
  beforeAll(async () => {
    built = buildSpec('api', spec, 4);
    m = await load(built.dir, { device: 'cpu', seed: 3 });
  });
  afterAll(() => m?.dispose());
  const images = (n: number) => new Float32Array(n * 72).fill(0.5);

  it('initialises parameters by Torch7 rules, reproducibly from the seed', async () => {
    const w = m.getTensor('conv1.weight');
    const bound = 1 / Math.sqrt(3 * 3 * 2);
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...w.map(Math.abs))).toBeGreaterThan(bound * 0.8);
    const gamma = m.getTensor('bn2.weight');
    expect(gamma.every((g) => g >= 0 && g < 1)).toBe(true);
    expect([...m.getTensor('bn2.bias')]).toEqual([0, 0, 0, 0]);
    expect([...m.getTensor('bn2.running_var')]).toEqual([1, 1, 1, 1]);
    const lin = m.getTensor('linear6.weight');
    expect(Math.max(...lin.map(Math.abs))).toBeLessThanOrEqual(1 / 6);
    const again = await load(built.dir, { device: 'cpu', seed: 3 });
    const other = await load(built.dir, { device: 'cpu', seed: 4 });
    expect(again.getTensor('conv1.weight')).toEqual(w);
    expect(other.getTensor('conv1.weight')).not.toEqual(w);
    again.dispose();
    other.dispose();
  });

  it('rejects bad arguments with errors that say what is wrong', async () => {
    await expect(m.infer(new Float32Array(71))).rejects.toThrow('infer: images has 71 floats, not a whole number of 2×6×6 images (72 floats each)');
    await expect(m.infer([1, 2] as unknown as Float32Array)).rejects.toThrow('infer: images must be a Float32Array (N×2×6×6, NCHW), got an array of 2');
    const nan = images(1);
    nan[5] = NaN;
    await expect(m.infer(nan)).rejects.toThrow('infer: images[5] is NaN (image 0)');
    await expect(m.trainStep(images(2), [0, 5], { lr: 0.1 })).rejects.toThrow('trainStep: labels[1] is 5, outside 0..4');
    await expect(m.trainStep(images(2), [0], { lr: 0.1 })).rejects.toThrow('trainStep: 1 labels for 2 images');
    await expect(m.trainStep(images(5), [0, 1, 2, 3, 4], { lr: 0.1 })).rejects.toThrow('trainStep: batch 5 is over the maximum 4 this artifact was built for (rebuild with --max-batch 5)');
    await expect(m.trainStep(images(1), [0], { lr: -1 })).rejects.toThrow('trainStep: lr must be a finite non-negative number, got -1');
    expect(() => m.getTensor('conv9.weight')).toThrow(/no tensor named 'conv9.weight' \(this model has: conv1.weight, conv1.bias, bn2.weight/);
    expect(() => m.setTensor('conv1.bias', new Float32Array(3))).toThrow('conv1.bias: expected a Float32Array of 4 values (4), got Float32Array(3)');
    await expect(load(built.dir, { device: 'tpu' as 'cpu' })).rejects.toThrow(`device must be 'cpu', 'cuda' or 'emu', got "tpu"`);
  });

  it('infers more images than the maximum batch in chunks', async () => {
    const out = await m.infer(images(9));
    expect(out.length).toBe(45);
    expect(out.subarray(0, 5)).toEqual(out.subarray(40, 45));
  });

  it('gives each call its own result array (a single chunk returns the copied-out output itself)', async () => {
    const a = await m.infer(images(2));
    const kept = Float32Array.from(a);
    const b = await m.infer(images(3));
    expect(b).not.toBe(a);
    expect(a).toEqual(kept); // the second call did not write into the first result
    expect(b.length).toBe(15);
    expect(b.subarray(0, 10)).toEqual(a);
  });

  it('refuses use after dispose', async () => {
    const tmp = await load(built.dir);
    tmp.dispose();
    await expect(tmp.infer(images(1))).rejects.toThrow('this model was disposed');
  });
});
