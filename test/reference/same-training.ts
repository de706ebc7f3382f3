// Two loaded builds of one spec that must compute bitwise alike — a kernel variant against the one it
// replaces (the wide tiles, the halo): the same parameters, then every gradient of one step, the losses
// and tensors of SGD steps, and inference compared for exact equality.
import { expect } from 'vitest';
import type { Model } from '../../runtime/model.js';

/** `b` takes `a`'s tensors, both run forwardBackward, every parameter gradient must agree: their names. */
export async function expectSameGradients(a: Model, b: Model, images: Float32Array, labels: Int32Array): Promise<string[]> {
  for (const t of a.tensorNames()) b.setTensor(t, a.getTensor(t));
  await Promise.all([a, b].map((m) => m.forwardBackward(images, labels)));
  const grads = a.info.params.map((t) => t.name);
  for (const t of grads) expect(Array.from(b.getGradient(t)), t).toEqual(Array.from(a.getGradient(t)));
  return grads;
}

/** `steps` SGD steps on both: equal losses, then every tensor and the inference of `n` images equal. */
export async function expectSameSteps(a: Model, b: Model, images: Float32Array, labels: Int32Array, n: number, steps = 3): Promise<void> {
  const losses = await Promise.all(
    [a, b].map(async (m) => {
      const out: number[] = [];
      for (let i = 0; i < steps; i++) out.push((await m.trainStep(images, labels, { lr: 0.05, momentum: 0.9 })).loss);
      return out;
    }),
  );
  expect(losses[1]).toEqual(losses[0]);
  for (const t of a.tensorNames()) expect(Array.from(b.getTensor(t)), t).toEqual(Array.from(a.getTensor(t)));
  const [ya, yb] = await Promise.all([a, b].map((m) => m.infer(images, n)));
  expect(Array.from(yb)).toEqual(Array.from(ya));
}
