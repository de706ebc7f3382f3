// One training step of two built emu artifacts (an optimization's switch on and off, built once for a bitwise check and
// a profile): the same weights and random BN affines, every gradient bitwise alike.
import { expect } from 'vitest';
import { load } from '../../runtime/model.js';
import { randomizeAffine, rng, uniform } from './artifacts.js';

/** What a comparison steps: the input (C, H, W), the classes, the batch (one less than the grids'), the seed, and a weight whose gradient must be live. */
export interface StepCase {
  readonly input: readonly [number, number, number];
  readonly classes: number;
  readonly n: number;
  readonly seed: number;
  readonly live: string;
}

/** Loads both, steps them on one batch, and expects every gradient bitwise alike (and `live`'s not all zero); returns the gradients' names. */
export async function expectSameStepDirs(on: string, off: string, s: StepCase): Promise<string[]> {
  const images = uniform(s.n * s.input[0] * s.input[1] * s.input[2], -1.5, 1.5, rng(s.seed)), labels = Int32Array.from({ length: s.n }, (_, i) => (i + 1) % s.classes);
  const [a, b] = await Promise.all([on, off].map((d) => load(d, { device: 'emu', seed: s.seed + 1 })));
  try {
    randomizeAffine(a, rng(s.seed + 2));
    for (const t of a.tensorNames()) b.setTensor(t, a.getTensor(t));
    await Promise.all([a, b].map((m) => m.forwardBackward(images, labels)));
    const grads = a.info.params.map((t) => t.name);
    for (const t of grads) expect(Array.from(a.getGradient(t)), t).toEqual(Array.from(b.getGradient(t)));
    expect(a.getGradient(s.live).some((v) => v !== 0), `${s.live}'s gradient`).toBe(true);
    return grads;
  } finally {
    await Promise.all([a, b].map((m) => m.dispose()));
  }
}
