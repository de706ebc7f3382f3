// Model.update and readSpace/writeSpace, the pieces data-parallel training is made of: forwardBackward
// then update is trainStep, and the whole-space accessors check their ranges.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSpec, type Built } from './reference/artifacts.js';
import { API_CALLS } from './reference/specs.js';
import { ErrorCodes, InvalidArgumentError, load, OutOfRangeError, type Model } from '../runtime/index.js';

describe('Model.update, readSpace, writeSpace', () => {
  let built: Built;
  const models: Model[] = [];
  const images = new Float32Array(4 * 72).map((_, i) => Math.sin(i * 0.37));
  const labels = new Int32Array([0, 3, 1, 4]);
  const space = (m: Model, s: 'param' | 'momentum' | 'state') => m.readSpace(s, 0, m.info.spaces[s]);
  beforeAll(() => {
    built = buildSpec('update', API_CALLS, 4);
  });
  afterAll(async () => {
    for (const m of models) await m.dispose();
  });

  it('forwardBackward then update gives the weights, momentum and statistics trainStep does, step after step', async () => {
    const [a, b] = await Promise.all([load(built.dir, { seed: 3 }), load(built.dir, { seed: 3 })]);
    models.push(a, b);
    for (let step = 0; step < 3; step++) {
      await a.trainStep(images, labels, { lr: 0.1, weightDecay: 5e-4, momentum: 0.5 });
      await b.forwardBackward(images, labels);
      await b.update({ lr: 0.1, weightDecay: 5e-4, momentum: 0.5 });
    }
    for (const s of ['param', 'momentum', 'state'] as const) expect(space(b, s)).toEqual(space(a, s));
    expect(space(a, 'momentum').some((v) => v !== 0)).toBe(true);
  });

  it('writeSpace of the grad space is what update applies', async () => {
    const m = await load(built.dir, { seed: 3 });
    models.push(m);
    const before = space(m, 'param');
    await m.forwardBackward(images, labels);
    m.writeSpace('grad', 0, new Float32Array(m.info.spaces.grad)); // zero gradients, no weight decay: nothing moves
    await m.update({ lr: 0.1, weightDecay: 0, momentum: 0.5 });
    expect(space(m, 'param')).toEqual(before);
  });

  it('refuses spaces and ranges it does not have', async () => {
    const m = models[0];
    expect(() => m.readSpace('param', 0, m.info.spaces.param + 1)).toThrow(OutOfRangeError);
    expect(() => m.readSpace('param', -1, 2)).toThrow(/outside the param space/);
    expect(() => m.writeSpace('act' as 'grad', 0, new Float32Array(1))).toThrow(InvalidArgumentError);
    expect(() => m.writeSpace('grad', 0, [1, 2] as unknown as Float32Array)).toThrow(/must be a Float32Array/);
    const pending = m.forwardBackward(images, labels);
    expect(() => m.readSpace('grad', 0, 1)).toThrow(expect.objectContaining({ code: ErrorCodes.busy }));
    await pending;
  });
});
