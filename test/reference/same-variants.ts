// Two emu bf16 builds of one spec (emu-variants.ts), an optimization's switch on and off, that must compute bitwise
// alike (same-training.ts): one step's every gradient, then SGD steps, every tensor and inference; or, for a switch
// that sums some gradients in another order, alike but for those, which stay within a bound of the old.
import { expect } from 'vitest';
import type { Ablations } from '../../compiler/ablations.js';
import { load, type Model } from '../../runtime/model.js';
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

/** The images and labels of a comparison: a batch of 3 (or `batch`) on grids for one more. */
interface Batch {
  readonly images: Float32Array;
  readonly labels: Int32Array;
  readonly n: number;
}

/** Builds both, loads them, randomizes the new build's BN affines, runs `check`, then disposes and removes both. */
async function withVariants(v: Omit<SameVariants, 'live'>, seed: number, check: (on: Model, off: Model, batch: Batch) => Promise<void>): Promise<void> {
  const n = v.batch ?? 3;
  const builds = buildEmuVariants(v.spec, v.file, { on: v.on, off: v.off }, v.gpu ? { on: v.gpu, off: v.gpu } : {}, 'bf16', n + 1);
  const images = uniform(n * v.input[0] * v.input[1] * v.input[2], -1.5, 1.5, rng(seed));
  const labels = Int32Array.from({ length: n }, (_, i) => (2 * i + 1) % v.classes);
  const [on, off] = await Promise.all([builds.dirs.on, builds.dirs.off].map((d) => load(d, { device: 'emu', seed: seed + 1 })));
  try {
    randomizeAffine(on, rng(seed + 2));
    await check(on, off, { images, labels, n });
  } finally {
    await Promise.all([on, off].map((m) => m.dispose()));
    builds.remove();
  }
}

/** Builds both, loads them (a batch of 3, or `batch`, on grids for one more), randomizes the BN affines, and expects them bitwise alike. */
export async function expectSameVariants(v: SameVariants, seed: number): Promise<void> {
  await withVariants(v, seed, async (on, off, { images, labels, n }) => {
    const grads = await expectSameGradients(on, off, images, labels);
    expect(grads.length).toBeGreaterThanOrEqual(4);
    expect(on.getGradient(v.live).some((x) => x !== 0), `${v.live}'s gradient`).toBe(true);
    await expectSameSteps(on, off, images, labels, n);
  });
}

/** A switch that reorders some sums: the gradients it reaches, and how far each may move from the old build's. */
export interface ReorderedVariants extends Omit<SameVariants, 'live'> {
  /** The parameters whose gradients the new form computes in another order (each must be live in the old build). */
  readonly reordered: readonly string[];
  /** The largest difference allowed in a reordered parameter's gradient, read from the old build after the step. */
  readonly bound: (name: string, off: Model) => number;
}

/** A `bound` of `fraction` of the old build's largest gradient magnitude (2^-12 suits a reordered fp32 sum of exact bf16 products). */
export const fractionOfLargest = (fraction: number) => (name: string, off: Model): number => Math.max(...Array.from(off.getGradient(name)).map(Math.abs)) * fraction;

/**
 * Builds both, loads them (a batch of 3 on grids for 4) with the same weights and random BN affines, and runs one
 * step: every gradient the switch does not reach bitwise the old build's, those it does within `bound` of them; then a
 * second step of the new build bitwise its first (deterministic).
 */
export async function expectReorderedVariants(v: ReorderedVariants, seed: number): Promise<void> {
  await withVariants(v, seed, async (on, off, { images, labels }) => {
    for (const t of on.tensorNames()) off.setTensor(t, on.getTensor(t));
    await Promise.all([on, off].map((m) => m.forwardBackward(images, labels)));
    const first = new Map(on.info.params.map((t) => [t.name, Array.from(on.getGradient(t.name))]));
    for (const t of on.info.params) {
      const a = first.get(t.name)!, b = Array.from(off.getGradient(t.name));
      if (!v.reordered.includes(t.name)) {
        expect(a, t.name).toEqual(b);
        continue;
      }
      expect(b.some((x) => x !== 0), `${t.name}'s gradient`).toBe(true);
      const bound = v.bound(t.name, off);
      const worst = Math.max(...a.map((x, i) => Math.abs(x - b[i])));
      console.log(`${v.file} ${t.name}: worst ${worst.toExponential(3)}, bound ${bound.toExponential(3)}`);
      expect(worst, t.name).toBeLessThanOrEqual(bound);
    }
    await on.forwardBackward(images, labels);
    for (const t of on.info.params) expect(Array.from(on.getGradient(t.name)), t.name).toEqual(first.get(t.name));
  });
}
