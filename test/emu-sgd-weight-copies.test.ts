// The SGD update writing the bf16 weight copies (compiler/backends/cuda/sgd-weight-bf16.ts, lower/sgd-weight-copies.ts):
// the copies' conversion launches leave the training step for the program train_weight_copies, which the runtime runs
// only after the weights were written some other way (runtime/model.ts). The chain: NIN's 11×11/4 stem on 3 channels
// (a forward copy only, W' of x space-to-depth: `rows` tiles, 8 filters in tiles of 4), a 3×3 conv on 8 channels (a
// channel-major forward copy with a tap-major data-gradient copy: no tile, its conversions stay), a 5×5 on 32 → 32
// (both copies tap-major: `groups` tiles), a 3×3 on 32 → 20 (a channel-major data-gradient copy: its conversions stay),
// parameters at offsets that are not multiples of 4 (the plain update's loose elements). CI: the programs and kernels
// compiled, the plain update's ranges. NINCC_TEST_FULL=1: two emu builds (g++), the steps bitwise those of
// `sgdWeightCopies: false`, and after each way of writing the weights the next step's gradients too.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sgdRanges } from '../compiler/backends/cuda/sgd.js';
import { load, type Model } from '../runtime/model.js';
import { randomizeAffine, rng, uniform } from './reference/artifacts.js';
import { buildEmuVariants, compileEmuVariant, type EmuVariants } from './reference/emu-variants.js';
import { expectSameGradients, expectSameSteps } from './reference/same-training.js';
import type { Compiled } from '../compiler/pipeline.js';

const INPUT = [3, 37, 29] as const;
const CLASSES = 3;
const SPEC = `model sgd_copies {
  input ${INPUT.join('x')}
  conv(3, 8, 11, 11, 4, 4, 5, 5)  bn(8)  relu
  conv(8, 32, 3, 3, 1, 1, 1, 1)  relu
  conv(32, 32, 5, 5, 1, 1, 2, 2)  bn(32)  relu
  conv(32, 20, 3, 3, 1, 1, 0, 0)  relu
  view(-1)  linear(960, ${CLASSES})  logsoftmax
}`;
const FULL = process.env.NINCC_TEST_FULL === '1';

const program = (c: Compiled, name: string) => c.lowered.programs.find((p) => p.name === name);
const kernelsOf = (c: Compiled, name: string) => (program(c, name)?.steps ?? []).map((s) => s.kernel);

describe('the SGD update writing the bf16 weight copies (compiled, no build)', () => {
  it('the convs a tile fits update their weights and copies in sgd_update; their conversions move to train_weight_copies; the others keep theirs', () => {
    const on = compileEmuVariant(SPEC, 'sgd_copies.model');
    expect(kernelsOf(on, 'sgd_update')).toEqual(['k_sgd_update', 'k1_sgd_conv_bf16', 'k6_sgd_conv_bf16']);
    expect(kernelsOf(on, 'train_weight_copies').sort()).toEqual(['k1_conv_weight_bf16', 'k6_conv_weight_bf16', 'k6_conv_weight_bf16_2']);
    expect(kernelsOf(on, 'train_forward_backward').filter((k) => k.includes('weight_bf16')).sort()).toEqual(['k4_conv_weight_bf16', 'k4_conv_weight_bf16_2', 'k9_conv_weight_bf16', 'k9_conv_weight_bf16_2']);
    const fused = new Map((on.cuda?.kernels ?? []).map((k) => [k.name, k]));
    expect(fused.get('k1_sgd_conv_bf16')?.fused).toMatch(/forward s2d\) from 4 filters a block/);
    expect(fused.get('k6_sgd_conv_bf16')?.fused).toMatch(/forward taps, data gradient taps\) from 16 of 32 filters × 32 channels a block/);
    expect(fused.get('k4_conv_weight_bf16')?.fused).not.toMatch(/tap-major/); // 8 channels: channel-major, with a tap-major data-gradient copy
    expect(fused.get('k9_conv_weight_bf16_2')?.fused).not.toMatch(/tap-major/); // 20 filters
    // The copies' stores are 16-byte chunks; the plain update skips the two convs' weights.
    for (const k of ['k1_sgd_conv_bf16', 'k6_sgd_conv_bf16']) expect(fused.get(k)!.body.join('\n'), k).toMatch(/nincc::st\(reinterpret_cast<int4\*>\(wb\)/);
    const plain = program(on, 'sgd_update')!.steps[0];
    expect(plain.op === 'sgd_update' && plain.consts.skip).toEqual([0, 8 * 3 * 11 * 11, 8 * 3 * 121 + 8 + 16 + 8 * 32 * 9 + 32, 32 * 32 * 25]);
    const off = compileEmuVariant(SPEC, 'sgd_copies.model', { sgdWeightCopies: false });
    expect(kernelsOf(off, 'sgd_update')).toEqual(['k_sgd_update']);
    expect(program(off, 'train_weight_copies')).toBeUndefined();
    expect(kernelsOf(off, 'train_forward_backward').filter((k) => k.includes('weight_bf16'))).toHaveLength(7);
  });

  it('the plain update\'s ranges are the parameter space less the skipped weights, in order', () => {
    expect(sgdRanges(100)).toEqual([{ start: 0, end: 100 }]);
    expect(sgdRanges(100, [0, 10, 13, 50])).toEqual([{ start: 10, end: 13 }, { start: 63, end: 100 }]);
    expect(sgdRanges(100, [5, 95])).toEqual([{ start: 0, end: 5 }]);
    expect(() => sgdRanges(100, [50, 10, 0, 10])).toThrow(/not in order/);
  });
});

if (!FULL) console.warn('test/emu-sgd-weight-copies.test.ts: the two emu builds and the bitwise comparisons run with NINCC_TEST_FULL=1; CI checks the compiled programs');
describe.runIf(FULL)('the SGD update writing the bf16 weight copies on emu (NINCC_TEST_FULL=1)', () => {
  const VARIANTS = { on: {}, off: { sgdWeightCopies: false } } as const;
  let builds: EmuVariants<keyof typeof VARIANTS> | undefined;
  let scratch = '';
  beforeAll(() => {
    builds = buildEmuVariants(SPEC, 'sgd_copies.model', VARIANTS);
    scratch = mkdtempSync(join(tmpdir(), 'nincc-sgd-copies-'));
  }, 900_000);
  afterAll(() => {
    builds?.remove();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  const n = 3; // below the grids' maximum of 4
  const images = uniform(n * INPUT[0] * INPUT[1] * INPUT[2], -1.5, 1.5, rng(97));
  const labels = Int32Array.from({ length: n }, (_, i) => (i + 1) % CLASSES);
  const loaded = () => Promise.all([builds!.dirs.on, builds!.dirs.off].map((d) => load(d, { device: 'emu', seed: 37 })));

  it('a step\'s gradients, then three SGD steps and inference: bitwise those of the conversion launches', async () => {
    const [on, off] = await loaded();
    try {
      randomizeAffine(on, rng(101));
      await expectSameGradients(on, off, images, labels);
      for (const t of ['conv1.weight', 'conv4.weight', 'conv6.weight', 'conv9.weight']) expect(on.getGradient(t).some((v) => v !== 0), t).toBe(true);
      await expectSameSteps(on, off, images, labels, n);
    } finally {
      await Promise.all([on, off].map((m) => m.dispose()));
    }
  }, 900_000);

  it('after a step, each way of writing the weights (initParameters, setTensor, writeSpace, loadWeights) leaves the next step\'s gradients those of the conversion launches', async () => {
    const [on, off] = await loaded();
    const both = (f: (m: Model) => unknown) => Promise.all([on, off].map(async (m) => f(m)));
    const sameGradients = async (after: string) => {
      await both((m) => m.forwardBackward(images, labels));
      for (const t of on.info.params) expect(Array.from(on.getGradient(t.name)), `${t.name} after ${after}`).toEqual(Array.from(off.getGradient(t.name)));
    };
    const step = () => both((m) => m.trainStep(images, labels, { lr: 0.05, momentum: 0.9 }));
    try {
      randomizeAffine(on, rng(101));
      for (const t of on.tensorNames()) off.setTensor(t, on.getTensor(t));
      const next = rng(5);
      await step();
      await both((m) => m.initParameters(3));
      await sameGradients('initParameters');
      await step();
      const w7 = uniform(32 * 32 * 25, -0.05, 0.05, next);
      await both((m) => m.setTensor('conv6.weight', w7));
      await sameGradients('setTensor');
      await step();
      const space = uniform(on.info.spaces.param, -0.05, 0.05, next);
      await both((m) => m.writeSpace('param', 0, space));
      await sameGradients('writeSpace');
      const file = join(scratch, 'before.safetensors');
      await off.save(file);
      await step();
      await both((m) => m.loadWeights(file));
      await sameGradients('loadWeights');
    } finally {
      await Promise.all([on, off].map((m) => m.dispose()));
    }
  }, 900_000);
});
