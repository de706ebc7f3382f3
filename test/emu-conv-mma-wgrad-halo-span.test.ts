// The input halo stagings of the bf16 k×k weight gradients that cover several slices
// (compiler/backends/cuda/conv-mma-wgrad-halo-span.ts) against the one-slice halo they replace (`haloSpan: false`).
// A's values and the k order are those of a one-slice halo, so the two builds must agree bitwise: every
// gradient of a training step. The edge cases: 7×5 planes (a 256-position staging runs over 7 images, past
// the batch: its spare positions' loads are clamped), a batch of 3 on grids sized for 4 split 4 ways (26
// positions a split: every staging is cut short by the split's end, and the splits start mid-image), a
// pending BN+ReLU on the input of the 3×3 conv, partial tiles (M = C·R·S of 36 and 126; N of 9 and 6).
// CI checks the staging lengths chosen (no build); the two emu builds and the bitwise comparison run with
// NINCC_TEST_FULL=1.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileModel, compileSpec, type Compiled } from '../compiler/pipeline.js';
import { chooseHaloSpan, stagedPerPosition } from '../compiler/backends/cuda/conv-mma-wgrad-halo-span.js';
import { load } from '../runtime/model.js';
import { randomizeAffine, rng, uniform } from './reference/artifacts.js';
import { buildEmuVariants, type EmuVariants } from './reference/emu-variants.js';

const INPUT = [4, 7, 5] as const;
const CLASSES = 3;
// conv1 4→9 3×3 pad 1, conv4 9→14 5×5 pad 2, conv7 14→6 3×3 pad 1: all 7×5.
const SPEC = `model halo_span {
  input ${INPUT.join('x')}
  conv(4, 9, 3, 3, 1, 1, 1, 1)  bn(9)  relu
  conv(9, 14, 5, 5, 1, 1, 2, 2)  bn(14)  relu
  conv(14, 6, 3, 3, 1, 1, 1, 1)
  view(-1)  linear(${6 * 7 * 5}, ${CLASSES})  logsoftmax
}`;

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-wgrad-halo-span.test.ts: the two emu builds and the bitwise comparison run with NINCC_TEST_FULL=1; CI checks the compiled kernels');

/** The build's compiled cuda kernels, without g++ or nvcc (the CI case). */
function compiled(oneSlice: boolean): Compiled {
  const r = compileSpec(SPEC, 'halo_span.model', { device: 'emu' });
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return compileModel(r.model, { target: 'emu', maxBatch: 4, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision: 'bf16', ...(oneSlice ? { ablations: { haloSpan: false } as const } : {}) });
}

/** Each weight-gradient kernel's positions per halo staging, by kernel name. */
const stagings = (c: Compiled) =>
  new Map((c.cuda?.kernels ?? []).filter((k) => k.name.endsWith('_conv_wgrad_fused')).map((k) => [k.name, Number(/, (\d+) positions a staging,/.exec(k.tile ?? '')?.[1] ?? 0)]));

// NIN's 5×5 weight gradient (k11: 96→256 on 28×28, the 256-tall tile of 512 threads).
const NIN_5X5 = { C: 96, H: 28, W: 28, P: 28, Q: 28, R: 5, S: 5, sh: 1, sw: 1, ph: 2, pw: 2 };

describe('halo stagings of several slices (compiled, no build)', () => {
  it('the 3×3 convs stage 256 positions at a time, the 5×5 one 32; haloSpan: false stages 32 everywhere', () => {
    expect(Object.fromEntries(stagings(compiled(false)))).toEqual({ k1_conv_wgrad_fused: 256, k4_conv_wgrad_fused: 32, k7_conv_wgrad_fused: 256 });
    expect(Object.fromEntries(stagings(compiled(true)))).toEqual({ k1_conv_wgrad_fused: 32, k4_conv_wgrad_fused: 32, k7_conv_wgrad_fused: 32 });
  });

  it("NIN's 5×5: 256 positions a staging copy 1.9 elements a position and channel where 32 copied 6.3", () => {
    const span = chooseHaloSpan(NIN_5X5, 256, 512, true), one = chooseHaloSpan(NIN_5X5, 256, 512, false);
    expect([span?.positions, one?.positions]).toEqual([256, 32]);
    expect(stagedPerPosition(NIN_5X5, span!.layout, 256)).toBeCloseTo(1.93, 2);
    expect(stagedPerPosition(NIN_5X5, one!.layout, 32)).toBeCloseTo(6.27, 2);
  });
});

describe.runIf(FULL)('halo stagings of several slices on emu (NINCC_TEST_FULL=1)', () => {
  let builds: EmuVariants<keyof typeof VARIANTS> | undefined;
  let dirs: EmuVariants<keyof typeof VARIANTS>['dirs'];
  const VARIANTS = { span: {}, one: { haloSpan: false } } as const;
  beforeAll(() => {
    builds = buildEmuVariants(SPEC, 'halo_span.model', VARIANTS);
    dirs = builds.dirs;
  }, 300_000);
  afterAll(() => builds?.remove());

  it('one training step: every gradient is bitwise that of the one-slice halo', async () => {
    const n = 3; // below the grids' maximum of 4
    const next = rng(71);
    const images = uniform(n * INPUT[0] * INPUT[1] * INPUT[2], -1.5, 1.5, next);
    const labels = Int32Array.from({ length: n }, (_, i) => (i + 2) % CLASSES);
    const [span, one] = await Promise.all([dirs.span, dirs.one].map((d) => load(d, { device: 'emu', seed: 29 })));
    try {
      randomizeAffine(span, rng(73)); // non-trivial BN γ and β: the pending transforms matter
      for (const t of span.tensorNames()) one.setTensor(t, span.getTensor(t));
      await Promise.all([span, one].map((m) => m.forwardBackward(images, labels)));
      const grads = span.info.params.map((t) => t.name);
      expect(grads.length).toBe(12); // 3 convs, 2 BNs and the linear, weights and biases: all compared
      for (const t of grads) expect(Array.from(span.getGradient(t)), t).toEqual(Array.from(one.getGradient(t)));
      // The comparison means something: the spanning layers' weight gradients are not all zero.
      for (const t of ['conv1.weight', 'conv7.weight']) expect(span.getGradient(t).some((v) => v !== 0), t).toBe(true);
    } finally {
      await Promise.all([span, one].map((m) => m.dispose()));
    }
  }, 300_000);
});
