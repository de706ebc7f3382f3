// The API frictions of issues #16 and #21 as a user met them: overlapping calls, dispose during a
// run, defaulted and null options, typed errors with codes, asynchronous file I/O, shared memory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSpec, type Built } from './reference/artifacts.js';
import { API_CALLS } from './reference/specs.js';
import { ErrorCodes, InvalidArgumentError, isNinccError, load, NinccError, OutOfRangeError, type Model } from '../runtime/index.js';

/** Resolves true if the event loop ran a macrotask (a setImmediate) before `work` settled. */
async function yieldsToEventLoop(work: () => Promise<unknown>): Promise<boolean> {
  let ticked = false;
  setImmediate(() => (ticked = true));
  await work();
  return ticked;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('API calls as users make them', () => {
  let built: Built;
  let m: Model;
  let work: string;
  const images = (n: number, v = 0.5) => new Float32Array(n * 72).map((_, i) => v + (i % 7) * 0.01);
  beforeAll(async () => {
    built = buildSpec('calls', API_CALLS, 4);
    m = await load(built.dir, { seed: 2 });
    work = mkdtempSync(join(tmpdir(), 'nincc-api-calls-'));
  });
  afterAll(async () => {
    await m?.dispose();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('queues overlapping infer calls (was: "the model is busy") and gives each its own result', async () => {
    const inputs = [images(1, 0.1), images(3, 0.2), images(2, 0.3), images(9, 0.4)];
    const one = await Promise.all(inputs.map((x) => m.infer(x)));
    const sequential: Float32Array[] = [];
    for (const x of inputs) sequential.push(await m.infer(x));
    expect(one).toEqual(sequential);
    // A training step queued between two inferences runs in call order.
    const before = m.infer(images(1));
    const step = m.trainStep(images(2), [1, 3], { lr: 0.5 });
    const after = m.infer(images(1));
    const [b, , a] = await Promise.all([before, step, after]);
    expect(b).not.toEqual(a);
  });

  it('reads each chunk of a large call and each subarray from its own offset', async () => {
    const x = new Float32Array(9 * 72).map((_, i) => Math.sin(i * 0.1));
    const whole = await m.infer(x); // 9 images over a maximum batch of 4: chunks at offsets 0, 4, 8
    for (let i = 0; i < 9; i++) expect(await m.infer(x.subarray(i * 72, (i + 1) * 72))).toEqual(whole.subarray(i * 5, (i + 1) * 5));
  });

  it('lets dispose() wait for the run in flight (was: a synchronous throw), then refuses calls with ERR_NINCC_DISPOSED', async () => {
    const tmp = await load(built.dir);
    const running = tmp.infer(images(4));
    const disposed = tmp.dispose();
    expect(tmp.disposed).toBe(true);
    const late = await rejection(tmp.infer(images(1)));
    await expect(running).resolves.toHaveLength(20);
    await disposed;
    await tmp.dispose(); // twice is harmless
    expect(late).toBeInstanceOf(NinccError);
    expect((late as NinccError).code).toBe(ErrorCodes.disposed);
    expect(() => tmp.getTensor('conv1.weight')).toThrow('getTensor: this model was disposed');
  });

  it('refuses synchronous calls while an asynchronous one is queued, with ERR_NINCC_BUSY', async () => {
    const running = m.infer(images(2));
    let busy: unknown;
    try {
      m.setTensor('conv1.bias', new Float32Array(4));
    } catch (e) {
      busy = e;
    }
    await running;
    expect(busy).toBeInstanceOf(NinccError);
    expect((busy as NinccError).code).toBe(ErrorCodes.busy);
    expect((busy as Error).message).toBe('setTensor: 1 asynchronous call is queued or running on this model; await it first');
  });

  it('defaults trainStep options from the spec (was: a TypeError on undefined) and takes null for defaults', async () => {
    const a = await load(built.dir, null);
    const b = await load(built.dir, { seed: 1 });
    const x = images(2);
    const defaulted = await a.trainStep(x, [0, 4]);
    const explicit = await b.trainStep(x, [0, 4], { lr: 0.1, weightDecay: 5e-4, momentum: 0.5 });
    expect(defaulted.loss).toBe(explicit.loss);
    await a.trainStep(x, [0, 4], null);
    await b.trainStep(x, [0, 4], { lr: 0.1, weightDecay: 5e-4, momentum: 0.5 });
    expect(a.getTensor('conv1.weight')).toEqual(b.getTensor('conv1.weight'));
    await Promise.all([a.dispose(), b.dispose()]);
  });

  it('throws exported error classes with stable codes, naming the argument', async () => {
    const cases: [() => Promise<unknown>, new (...a: never[]) => Error, string, string][] = [
      [() => load(42 as unknown as string), InvalidArgumentError, ErrorCodes.invalidArgument, 'load: dir must be an artifact directory (a non-empty string), got number 42'],
      [() => load(built.dir, 'cpu' as unknown as object), InvalidArgumentError, ErrorCodes.invalidArgument, 'load: options must be an object, got "cpu"'],
      [() => load(built.dir, { seed: 1.5 }), InvalidArgumentError, ErrorCodes.invalidArgument, 'load: seed must be a non-negative integer, got number 1.5'],
      [() => load(join(work, 'nothing')), NinccError, ErrorCodes.runtime, `${join(work, 'nothing')}: not an artifact directory (no plan.json); build one with 'nincc build SPEC -o DIR'`],
      [() => load(built.dir, { weights: join(work, 'none.safetensors') }), NinccError, ErrorCodes.weights, `weights ${join(work, 'none.safetensors')}: no such file`],
      [() => m.infer('images' as unknown as Float32Array), InvalidArgumentError, ErrorCodes.invalidArgument, 'infer: images must be a Float32Array (N×2×6×6, NCHW), got "images"'],
      [() => m.infer(new Float32Array(71)), OutOfRangeError, ErrorCodes.outOfRange, 'infer: images has 71 floats, not a whole number of 2×6×6 images (72 floats each)'],
      [() => m.trainStep(images(1), [0], { lr: '0.1' as unknown as number }), InvalidArgumentError, ErrorCodes.invalidArgument, 'trainStep: options.lr must be a number, got "0.1"'],
      [() => m.trainStep(images(1), null as unknown as number[]), InvalidArgumentError, ErrorCodes.invalidArgument, 'trainStep: labels must be an Int32Array or an array of integers, got null'],
      [() => m.save(7 as unknown as string), InvalidArgumentError, ErrorCodes.invalidArgument, 'save: path must be a file path (a non-empty string), got number 7'],
      [() => m.save(join(work, 'x.safetensors'), { epoch: 3 } as unknown as Record<string, string>), InvalidArgumentError, ErrorCodes.invalidArgument, 'save: meta.epoch must be a string (safetensors metadata is a string map), got number 3'],
    ];
    for (const [p, cls, code, message] of cases) {
      const e = await rejection(p());
      expect(e.message).toBe(message);
      expect(e).toBeInstanceOf(cls);
      expect((e as NinccError).code).toBe(code);
      expect(isNinccError(e)).toBe(true);
    }
    // Argument mistakes are still TypeError / RangeError, as built-in APIs throw.
    expect(new InvalidArgumentError('x')).toBeInstanceOf(TypeError);
    expect(new OutOfRangeError('x')).toBeInstanceOf(RangeError);
  });

  it('saves and loads weights without blocking the event loop (was: synchronous I/O inside async functions)', async () => {
    const file = join(work, 'w.safetensors');
    expect(await yieldsToEventLoop(() => m.save(file, { note: 'async' }))).toBe(true);
    const other = await load(built.dir, { seed: 9 });
    let meta: Record<string, string> = {};
    expect(await yieldsToEventLoop(async () => (meta = await other.loadWeights(file)))).toBe(true);
    expect(meta.note).toBe('async');
    expect(other.getTensor('linear6.weight')).toEqual(m.getTensor('linear6.weight'));
    await other.dispose();
  });

  it('takes arrays over a SharedArrayBuffer (was: "Error: Invalid argument") with the same result', async () => {
    const plain = images(3);
    const shared = new Float32Array(new SharedArrayBuffer(plain.byteLength));
    shared.set(plain);
    expect(await m.infer(shared)).toEqual(await m.infer(plain));
    const labels = new Int32Array(new SharedArrayBuffer(8));
    labels.set([2, 3]);
    const viaShared = await load(built.dir, { seed: 4 });
    const viaPlain = await load(built.dir, { seed: 4 });
    const r1 = await viaShared.trainStep(shared.subarray(0, 144), labels);
    const r2 = await viaPlain.trainStep(plain.subarray(0, 144), [2, 3]);
    expect(r1.loss).toBe(r2.loss);
    const w = new Float32Array(new SharedArrayBuffer(16));
    w.set([1, 2, 3, 4]);
    viaShared.setTensor('conv1.bias', w);
    expect([...viaShared.getTensor('conv1.bias')]).toEqual([1, 2, 3, 4]);
    await Promise.all([viaShared.dispose(), viaPlain.dispose()]);
  });
});
