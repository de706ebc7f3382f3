// Two loaded builds of one spec that must compute bitwise alike — a kernel variant against the one it
// replaces (the wide tiles, the halo): the same parameters, then every gradient of one step, the losses
// and tensors of SGD steps, and inference compared for exact equality.
import { expect } from 'vitest';
import { load, type Model } from '../../runtime/model.js';
import { randomizeAffine, rng, uniform } from './artifacts.js';
import { profiledLaunches } from './emu-profile.js';

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

/**
 * The A/B tests' common run: loads builds `on` and `off` (emu, seed 23), randomizes `on`'s affine parameters, checks a
 * training step's gradients and three SGD steps bitwise alike, then gives each build's counters over one inference of
 * the same `n` images (BN folded first, unprofiled; one build at a time: the profile file is named by the environment).
 */
export async function sameStepsProfiledInference(dirs: { readonly on: string; readonly off: string }, input: readonly number[], classes: number, n = 3): Promise<{ on: Map<string, Record<string, number>>; off: Map<string, Record<string, number>> }> {
  const images = uniform(n * input.reduce((a, b) => a * b, 1), -1.5, 1.5, rng(71));
  const labels = Int32Array.from({ length: n }, (_, i) => (i + 1) % classes);
  const [on, off] = await Promise.all([dirs.on, dirs.off].map((d) => load(d, { device: 'emu', seed: 23 })));
  try {
    randomizeAffine(on, rng(29));
    await expectSameGradients(on, off, images, labels);
    await expectSameSteps(on, off, images, labels, n);
    const profiled = async (m: Model) => {
      await m.infer(images, n);
      return profiledLaunches(() => m.infer(images, n));
    };
    return { on: await profiled(on), off: await profiled(off) };
  } finally {
    await Promise.all([on, off].map((m) => m.dispose()));
  }
}
