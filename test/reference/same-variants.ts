// Two emu bf16 builds of one spec (emu-variants.ts), an optimization's switch on and off, that must compute bitwise
// alike (same-training.ts): one step's every gradient, then SGD steps, every tensor and inference.
import { expect } from 'vitest';
import type { Ablations } from '../../compiler/ablations.js';
import { load } from '../../runtime/model.js';
import { randomizeAffine, rng, uniform } from './artifacts.js';
import { buildEmuVariants } from './emu-variants.js';
import { expectSameGradients, expectSameSteps } from './same-training.js';

/** What a comparison needs: the spec, its file name, its input (C, H, W), classes and the two builds' ablations. */
export interface SameVariants {
  readonly spec: string;
  readonly file: string;
  readonly input: readonly [number, number, number];
  readonly classes: number;
  readonly on: Ablations;
  readonly off: Ablations;
  /** A weight whose gradient must not be all zero, so that the comparison means something. */
  readonly live: string;
  /** The GPU both builds are for (their weight-gradient splits and tiles), if any. */
  readonly gpu?: string;
  /** The batch run (3 unless given), on grids for one more. */
  readonly batch?: number;
}

/** Builds both, loads them (a batch of 3, or `batch`, on grids for one more), randomizes the BN affines, and expects them bitwise alike. */
export async function expectSameVariants(v: SameVariants, seed: number): Promise<void> {
  const n = v.batch ?? 3;
  const builds = buildEmuVariants(v.spec, v.file, { on: v.on, off: v.off }, v.gpu ? { on: v.gpu, off: v.gpu } : {}, 'bf16', n + 1);
  const images = uniform(n * v.input[0] * v.input[1] * v.input[2], -1.5, 1.5, rng(seed));
  const labels = Int32Array.from({ length: n }, (_, i) => (2 * i + 1) % v.classes);
  const [on, off] = await Promise.all([builds.dirs.on, builds.dirs.off].map((d) => load(d, { device: 'emu', seed: seed + 1 })));
  try {
    randomizeAffine(on, rng(seed + 2));
    const grads = await expectSameGradients(on, off, images, labels);
    expect(grads.length).toBeGreaterThanOrEqual(4);
    expect(on.getGradient(v.live).some((x) => x !== 0), `${v.live}'s gradient`).toBe(true);
    await expectSameSteps(on, off, images, labels, n);
  } finally {
    await Promise.all([on, off].map((m) => m.dispose()));
    builds.remove();
  }
}

/**
 * Builds both, loads them as expectSameVariants does (the same tensors in both), runs one step: every gradient but
 * `reordered`'s is bitwise the `off` build's, those (summed in another order by `on`) within 2^-12 of their largest
 * magnitude (a few 2^-24 of it each for a reordered fp32 sum; far below a wrong pairing of operands); then a second step
 * of `on` is bitwise its first (deterministic).
 */
export async function expectReorderedVariants(v: SameVariants, reordered: readonly string[], seed: number): Promise<void> {
  const builds = buildEmuVariants(v.spec, v.file, { on: v.on, off: v.off }, v.gpu ? { on: v.gpu, off: v.gpu } : {});
  const n = 3;
  const images = uniform(n * v.input[0] * v.input[1] * v.input[2], -1.5, 1.5, rng(seed));
  const labels = Int32Array.from({ length: n }, (_, i) => (2 * i + 1) % v.classes);
  const [on, off] = await Promise.all([builds.dirs.on, builds.dirs.off].map((d) => load(d, { device: 'emu', seed: seed + 1 })));
  try {
    randomizeAffine(on, rng(seed + 2));
    for (const t of on.tensorNames()) off.setTensor(t, on.getTensor(t));
    await Promise.all([on, off].map((m) => m.forwardBackward(images, labels)));
    const first = new Map(on.info.params.map((t) => [t.name, Array.from(on.getGradient(t.name))]));
    for (const t of on.info.params) {
      const a = first.get(t.name)!, b = Array.from(off.getGradient(t.name));
      if (!reordered.includes(t.name)) {
        expect(a, t.name).toEqual(b);
        continue;
      }
      expect(b.some((x) => x !== 0), `${t.name}'s gradient`).toBe(true);
      const scale = Math.max(...b.map(Math.abs));
      const worst = Math.max(...a.map((x, i) => Math.abs(x - b[i])));
      expect(worst, t.name).toBeLessThanOrEqual(scale * 2 ** -12);
    }
    await on.forwardBackward(images, labels);
    for (const t of on.info.params) expect(Array.from(on.getGradient(t.name)), t.name).toEqual(first.get(t.name));
  } finally {
    await Promise.all([on, off].map((m) => m.dispose()));
    builds.remove();
  }
}
