// One training step of two built emu artifacts (an optimization's switch on and off, built once for a bitwise check and
// a profile): the same weights and random BN affines, every gradient bitwise alike; and the FULL-only case of such a switch.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ablations } from '../../compiler/ablations.js';
import type { ProfileReport } from '../../runtime/profile/run-profile.js';
import { load } from '../../runtime/model.js';
import { randomizeAffine, rng, uniform } from './artifacts.js';
import type { Compiled } from '../../compiler/pipeline.js';
import { buildEmuVariants, changedKernels, compileEmuVariant, type EmuVariants } from './emu-variants.js';
import { profileDir } from './wgrad-frag-profile.js';

type Counts = ProfileReport['kernels'][number]['counts'];

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

/** A switch's emu case: its spec, the switch-off ablations, the step's seed and the weight-gradient kernel it profiles. */
export interface SwitchCase {
  readonly spec: string;
  readonly file: string;
  readonly off: Ablations;
  readonly input: readonly [number, number, number];
  readonly classes: number;
  readonly seed: number;
  readonly kernel: string;
  /** The batch stepped and profiled (default 3, on grids for 4). */
  readonly n?: number;
}

/**
 * Builds the switch on and off once (grids for batch 4, stepped at `n`, 3 unless said), then: one step, every gradient bitwise alike (14 for the
 * specs' 3 convs, 3 BNs and the linear); and `profile` on both builds' counters of `kernel` at batch 3.
 */
export function describeSwitchOnEmu(title: string, c: SwitchCase, stepTitle: string, profileTitle: string, profile: (on: Counts, off: Counts) => void): void {
  describe(title, () => {
    let builds: EmuVariants<'on' | 'off'>;
    beforeAll(() => {
      builds = buildEmuVariants(c.spec, c.file, { on: {}, off: c.off });
    }, 900_000);
    afterAll(() => builds?.remove());

    it(stepTitle, async () => {
      const grads = await expectSameStepDirs(builds.dirs.on, builds.dirs.off, { input: c.input, classes: c.classes, n: c.n ?? 3, seed: c.seed, live: 'conv4.weight' });
      expect(grads.length).toBe(14);
    }, 600_000);

    it(profileTitle, () => {
      const counts = (dir: string) => profileDir(dir, c.n ?? 3).find((k) => k.kernel === c.kernel)!.counts;
      profile(counts(builds.dirs.on), counts(builds.dirs.off));
    }, 900_000);
  });
}

/** The CI check of such a switch: `marker` in `kernel`'s body on, `offMarker` instead off, and no other kernel changed. */
export function expectSwitchText(c: Pick<SwitchCase, 'spec' | 'file' | 'off' | 'kernel'>, marker: string, offMarker: string): void {
  const on = compileEmuVariant(c.spec, c.file), off = compileEmuVariant(c.spec, c.file, c.off);
  const body = (x: Compiled) => (x.cuda?.kernels ?? []).find((k) => k.name === c.kernel)!.body.join('\n');
  expect(body(on)).toContain(marker);
  expect(body(off)).not.toContain(marker);
  expect(body(off)).toContain(offMarker);
  expect(changedKernels(on, off)).toEqual([c.kernel]);
}

/** NIN's kernels (bf16, H100) whose body holds `marker`. */
export function ninKernelsWith(marker: string): string[] {
  const nin = compileEmuVariant(readFileSync('models/nin.model', 'utf8'), 'nin.model', {}, 'bf16', 'h100');
  return (nin.cuda?.kernels ?? []).filter((k) => k.body.join('\n').includes(marker)).map((k) => k.name);
}

/**
 * The tap-major weight gradients' emu spec: a 3×3 of `channels` → 128 on `hw`×`hw` behind a 1×1 (a pending BN/ReLU on its
 * input) and before another, with padding; `classes` outputs.
 */
export const tapsLayerSpec = (name: string, channels: number, hw: number, classes: number) => `model ${name} {
  input 8x${hw}x${hw}
  conv(8, ${channels}, 1, 1, 1, 1, 0, 0)  bn(${channels})  relu
  conv(${channels}, 128, 3, 3, 1, 1, 1, 1)  bn(128)  relu
  conv(128, 16, 1, 1, 1, 1, 0, 0)  bn(16)  relu
  view(-1)  linear(${16 * hw * hw}, ${classes})  logsoftmax
}`;
