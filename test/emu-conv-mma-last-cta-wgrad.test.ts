// The bf16 weight gradients that sum their own batch splits (compiler/backends/cuda/conv-mma-last-cta-wgrad.ts:
// the last split block of each output tile, by an integer ticket after a fence) against the wgrad_reduce launch
// they replace (`wgradLastSplit: false`). The order of the sum is the same, so the two builds must agree bitwise:
// every gradient of a step, and the weights after two SGD steps back to back (the tickets must be 0 again after
// each weight gradient for the second step to be right). Edge cases: a batch of 3 on grids sized for 4, split 4
// ways (one split's share is cut short), partial tiles (C·R·S of 36, 9 and 126; K of 9, 14 and 6), convs with a
// bias gradient. A step cut short inside a weight gradient (NINCC_EMU_CUT_SHORT) must not spoil the next one
// (plan.json `tickets`). CI checks the compiled programs (no build); the emu builds and the bitwise comparisons
// run with NINCC_TEST_FULL=1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Compiled } from '../compiler/pipeline.js';
import { load } from '../runtime/model.js';
import { randomizeAffine, rng, uniform } from './reference/artifacts.js';
import { buildEmuVariants, compileEmuVariant, type EmuVariants } from './reference/emu-variants.js';

const INPUT = [4, 7, 5] as const;
const CLASSES = 3;
// conv1 4→9 3×3 pad 1 and conv4 9→14 1×1 (7×5), conv7 14→6 3×3 stride 2 pad 1 (4×3; no BN after it: its bias
// gradient is a real sum).
const SPEC = `model last_split {
  input ${INPUT.join('x')}
  conv(4, 9, 3, 3, 1, 1, 1, 1)  bn(9)  relu
  conv(9, 14, 1, 1)  bn(14)  relu
  conv(14, 6, 3, 3, 2, 2, 1, 1)
  view(-1)  linear(${6 * 4 * 3}, ${CLASSES})  logsoftmax
}`;

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-last-cta-wgrad.test.ts: the two emu builds and the bitwise comparisons run with NINCC_TEST_FULL=1; CI checks the compiled programs');

const compiled = (precision: 'bf16' | 'fp32', reduce: boolean): Compiled =>
  compileEmuVariant(SPEC, 'last_split.model', reduce ? { wgradLastSplit: false } : {}, precision);

/** The training program's kernels in order. */
const trainKernels = (c: Compiled) => c.lowered.programs.find((p) => p.name === 'train_forward_backward')!.steps.map((s) => s.kernel);

describe('weight gradients that sum their own splits (compiled, no build)', () => {
  it('bf16: no wgrad_reduce launch, each weight gradient takes the tickets and writes dW; wgradLastSplit: false and fp32 keep the launch', () => {
    const folded = compiled('bf16', false);
    expect(trainKernels(folded).filter((k) => k.includes('wgrad'))).toEqual(['k7_conv_wgrad_fused', 'k4_conv_wgrad_fused', 'k1_conv_wgrad_fused']);
    for (const k of ['k1', 'k4', 'k7']) {
      expect(folded.cuda!.source.fused.get(`${k}_conv_wgrad_fused`)).toContain('last split block of each tile');
      const body = folded.cuda!.source.text.split(` ${k}_conv_wgrad_fused(`)[1].split('NINCC_EXPORT')[0];
      expect(body).toContain('float* tickets');
      expect(body).toContain('atomicInc(reinterpret_cast<unsigned*>(tickets) + blockIdx.y * gridDim.x + blockIdx.x, 3u) == 3u');
    }
    const tickets = folded.lowered.memory.buffers.filter((b) => b.id.endsWith('wgrad.tickets'));
    expect(tickets.map((b) => b.space)).toEqual(['fixed']);
    // The runtime zeroes them before the run after a failed one.
    const t = tickets[0];
    expect(folded.plan.tickets).toEqual([{ space: 'fixed', offset: t.offset, size: t.size, dtype: 'f32' }]);
    expect(compiled('bf16', true).plan.tickets).toBeUndefined();
    for (const c of [compiled('bf16', true), compiled('fp32', false)])
      expect(trainKernels(c).filter((k) => k.includes('wgrad'))).toEqual(['k7_conv_wgrad_fused', 'k7_wgrad_reduce', 'k4_conv_wgrad_fused', 'k4_wgrad_reduce', 'k1_conv_wgrad_fused', 'k1_wgrad_reduce']);
  });
});

describe.runIf(FULL)('weight gradients that sum their own splits on emu (NINCC_TEST_FULL=1)', () => {
  const VARIANTS = { folded: {}, reduce: { wgradLastSplit: false } } as const;
  let builds: EmuVariants<keyof typeof VARIANTS> | undefined;
  beforeAll(() => {
    builds = buildEmuVariants(SPEC, 'last_split.model', VARIANTS);
  }, 600_000);
  afterAll(() => builds?.remove());

  it('a step\'s gradients, then the weights after two SGD steps, bitwise those of the wgrad_reduce build', async () => {
    const n = 3; // below the grids' maximum of 4
    const next = rng(91);
    const images = uniform(n * INPUT[0] * INPUT[1] * INPUT[2], -1.5, 1.5, next);
    const labels = Int32Array.from({ length: n }, (_, i) => (i + 1) % CLASSES);
    const [folded, reduce] = await Promise.all([builds!.dirs.folded, builds!.dirs.reduce].map((d) => load(d, { device: 'emu', seed: 31 })));
    try {
      randomizeAffine(folded, rng(93));
      for (const t of folded.tensorNames()) reduce.setTensor(t, folded.getTensor(t));
      await Promise.all([folded, reduce].map((m) => m.forwardBackward(images, labels)));
      const grads = folded.info.params.map((t) => t.name);
      expect(grads.length).toBe(12);
      for (const t of grads) expect(Array.from(folded.getGradient(t)), t).toEqual(Array.from(reduce.getGradient(t)));
      for (const t of ['conv1.weight', 'conv4.weight', 'conv7.weight', 'conv7.bias']) expect(folded.getGradient(t).some((v) => v !== 0), t).toBe(true);
      for (let step = 0; step < 2; ++step) {
        await Promise.all([folded, reduce].map((m) => m.trainStep(images, labels, { lr: 0.05, momentum: 0.9 })));
        for (const t of grads) expect(Array.from(folded.getTensor(t)), `${t} after step ${step + 1}`).toEqual(Array.from(reduce.getTensor(t)));
      }
    } finally {
      await Promise.all([folded, reduce].map((m) => m.dispose()));
    }
  }, 600_000);

  it('a step cut short inside a weight gradient leaves no stale ticket: the next step is bitwise that of the wgrad_reduce build', async () => {
    // conv4's weight gradient runs one block and fails (NINCC_EMU_CUT_SHORT) in both builds, so both keep the same
    // running statistics and half-written gradients; the folded build's block has taken its tile's ticket, which
    // the runtime must zero before the next run (plan.json `tickets`) or that tile sums a stale split.
    const n = 4;
    const next = rng(95);
    const images = uniform(n * INPUT[0] * INPUT[1] * INPUT[2], -1.5, 1.5, next);
    const labels = Int32Array.from({ length: n }, (_, i) => i % CLASSES);
    const [folded, reduce] = await Promise.all([builds!.dirs.folded, builds!.dirs.reduce].map((d) => load(d, { device: 'emu', seed: 37 })));
    try {
      randomizeAffine(folded, rng(97));
      for (const t of folded.tensorNames()) reduce.setTensor(t, folded.getTensor(t));
      process.env.NINCC_EMU_CUT_SHORT = 'k4_conv_wgrad_fused:1';
      try {
        for (const m of [folded, reduce]) await expect(m.trainStep(images, labels, { lr: 0.05, momentum: 0.9 })).rejects.toThrow('k4_conv_wgrad_fused`: cut short after 1 block(s)');
      } finally {
        delete process.env.NINCC_EMU_CUT_SHORT;
      }
      for (let step = 0; step < 2; ++step) {
        await Promise.all([folded, reduce].map((m) => m.trainStep(images, labels, { lr: 0.05, momentum: 0.9 })));
        for (const t of folded.tensorNames()) expect(Array.from(folded.getTensor(t)), `${t} after good step ${step + 1}`).toEqual(Array.from(reduce.getTensor(t)));
      }
    } finally {
      await Promise.all([folded, reduce].map((m) => m.dispose()));
    }
  }, 600_000);
});
