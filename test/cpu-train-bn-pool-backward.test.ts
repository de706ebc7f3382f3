// Issue #19 (i19D): a max pool that alone reads a BN+ReLU's output leaves its backward to the BN's (lower/train.ts
// poolsBnRelu, runtime/include/nincc/cpu/bn_pool_backward.h); the cpuBnPoolBackward ablation keeps the pool's own
// pass. What the training program and the rendered source say, without compiling (numerics, bit for bit the two
// kernels and against float64: runtime/kernels-test/test_batchnorm.cc check_relu_maxpool_backward); with
// NINCC_TEST_FULL=1, NIN_SMALL built both ways trains bitwise alike.
import { afterAll, describe, expect, it } from 'vitest';
import type { Ablations } from '../compiler/ablations.js';
import { compileModel, compileSpec } from '../compiler/pipeline.js';
import { buildSpec, loadBuilt, randomizeAffine, removeBuilds, rng, uniform } from './reference/artifacts.js';
import { expectSameGradients, expectSameSteps } from './reference/same-training.js';
import { NIN_SMALL, ODDS_AND_ENDS } from './reference/specs.js';

function compileCpu(spec: string, ablations?: Ablations) {
  const r = compileSpec(spec, 'spec.model', { device: 'cpu' });
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return compileModel(r.model, { target: 'cpu', maxBatch: 4, sourceHash: 'test', libraries: {}, cpuFeatures: [], ...(ablations ? { ablations } : {}) });
}
const backward = (compiled: ReturnType<typeof compileCpu>) =>
  compiled.lowered.programs
    .find((p) => p.name === 'train_forward_backward')!
    .steps.filter((s) => /pool_bwd|bn_bwd|bn_relu/.test(s.op))
    .map((s) => `${s.op}@${s.layer}`);

describe('cpu training: the max pool after a BN+ReLU backward in the BN\'s pass (report only, no compile)', () => {
  it('NIN\'s three pools: one bn_relu_maxpool_bwd each, with the pool\'s gradient and argmax, no maxpool_bwd', () => {
    const compiled = compileCpu(NIN_SMALL);
    const steps = backward(compiled);
    expect(steps.filter((s) => s.startsWith('bn_relu_maxpool_bwd'))).toEqual(['bn_relu_maxpool_bwd@28', 'bn_relu_maxpool_bwd@18', 'bn_relu_maxpool_bwd@8']); // the backward's order
    expect(steps.some((s) => s.startsWith('maxpool_bwd'))).toBe(false);
    const train = compiled.lowered.programs.find((p) => p.name === 'train_forward_backward')!.steps;
    const pooled = train.find((s) => s.op === 'bn_relu_maxpool_bwd' && s.layer === 8)!;
    const pool = train.find((s) => s.op === 'maxpool_fwd' && s.layer === 10)!;
    expect(pooled.buffers.argmax).toBe(pool.buffers.argmax);
    expect(pooled.buffers.y).toBe(pool.buffers.x); // the BN+ReLU's output, the pool's input
    expect(pooled.consts).toMatchObject({ C: 5, H: 18, W: 17, K: 5, P: 9, Q: 9, R: 3, S: 3, sh: 2, sw: 2, ph: 1, pw: 1 });
    expect(compiled.cpu.text.match(/batchnorm_relu_maxpool_backward\(bn, shape,/g)?.length).toBe(3);
    expect(compiled.cpu.text).toContain('const BatchNormShape bn{shape.batch, shape.channels, shape.in_plane()};');
  });

  it('the cpuBnPoolBackward ablation keeps every pool\'s own backward pass and the BN+ReLU backward reading it', () => {
    const steps = backward(compileCpu(NIN_SMALL, { cpuBnPoolBackward: false }));
    expect(steps.filter((s) => s.startsWith('maxpool_bwd'))).toEqual(['maxpool_bwd@30', 'maxpool_bwd@20', 'maxpool_bwd@10']);
    expect(steps.some((s) => s.startsWith('bn_relu_maxpool_bwd'))).toBe(false);
  });

  it('takes no pool whose input is not a BN+ReLU\'s alone: after a conv+ReLU, after a BN without ReLU', () => {
    const steps = backward(compileCpu(ODDS_AND_ENDS));
    expect(steps.filter((s) => s.startsWith('maxpool_bwd'))).toEqual(['maxpool_bwd@9', 'maxpool_bwd@3']);
    expect(steps.some((s) => s.startsWith('bn_relu_maxpool_bwd'))).toBe(false);
  });
});

// Two native cpu builds of NIN_SMALL: minutes on the shared 2-core machine, over CI's budget.
const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/cpu-train-bn-pool-backward.test.ts: the two-build A/B is skipped in CI (two native builds); NINCC_TEST_FULL=1 runs it');
afterAll(() => removeBuilds());

describe('cpu training: the pool backward in the BN\'s pass against its own pass, whole model', () => {
  it.runIf(FULL)('NIN_SMALL (batch 3): every gradient of a step, three SGD steps\' losses and tensors, and inference bitwise alike (NINCC_TEST_FULL=1)', async () => {
    const [on, off] = [buildSpec('nin_small_pooled', NIN_SMALL, 4), buildSpec('nin_small_pool_pass', NIN_SMALL, 4, { cpuBnPoolBackward: false })];
    const [a, b] = await Promise.all([on, off].map((built) => loadBuilt(built, 7)));
    try {
      randomizeAffine(a, rng(11));
      const n = 3;
      const images = uniform(n * 3 * 69 * 67, -1.5, 1.5, rng(13));
      const labels = Int32Array.from({ length: n }, (_, i) => (3 * i + 1) % 10);
      await expectSameGradients(a, b, images, labels);
      expect(a.getGradient('bn8.weight').some((x) => x !== 0)).toBe(true); // the first BN+ReLU backward that takes its pool's
      await expectSameSteps(a, b, images, labels, n);
    } finally {
      await Promise.all([a, b].map((m) => m.dispose()));
    }
  }, 1_800_000);
});
