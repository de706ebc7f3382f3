// The A/B check of a bf16 build against one with an optimization switched off (compiler/ablations.ts) where the
// two must compute bitwise alike: the same tensors in both, then one step's gradients, three SGD steps' losses and
// the tensors after them compared to the bit (test/emu-rebuild-pass.test.ts, test/bf16-storage-rebuilt.test.ts).
import { expect } from 'vitest';
import { load } from '../../runtime/model.js';
import { randomizeAffine, rng, uniform } from './artifacts.js';

/** Trains the emu artifacts `dirs` on 3 images of `input` (C, H, W) among `classes`, expecting them bitwise alike. */
export async function expectTrainsAlike(dirs: readonly [string, string], input: readonly [number, number, number], classes: number, seeds: { images: number; load: number; affine: number }): Promise<void> {
  const n = 3; // below the grid's maximum of 4
  const images = uniform(n * input[0] * input[1] * input[2], -1.5, 1.5, rng(seeds.images));
  const labels = Int32Array.from({ length: n }, (_, i) => (2 * i + 1) % classes);
  const models = await Promise.all(dirs.map((d) => load(d, { device: 'emu', seed: seeds.load })));
  try {
    randomizeAffine(models[0], rng(seeds.affine)); // non-trivial BN γ and β (init leaves β at 0)
    for (const t of models[0].tensorNames()) models[1].setTensor(t, models[0].getTensor(t));
    await Promise.all(models.map((m) => m.forwardBackward(images, labels)));
    for (const t of models[0].info.params) expect(Array.from(models[1].getGradient(t.name)), t.name).toEqual(Array.from(models[0].getGradient(t.name)));
    const losses = await Promise.all(
      models.map(async (m) => {
        const out: number[] = [];
        for (let i = 0; i < 3; i++) out.push((await m.trainStep(images, labels, { lr: 0.05, momentum: 0.9 })).loss);
        return out;
      }),
    );
    expect(losses[1]).toEqual(losses[0]);
    expect(losses[0][2]).toBeLessThan(losses[0][0]);
    for (const t of models[0].tensorNames()) expect(Array.from(models[1].getTensor(t)), t).toEqual(Array.from(models[0].getTensor(t)));
  } finally {
    await Promise.all(models.map((m) => m.dispose()));
  }
}
