// Issue #19 (i19t): the cpu training's BN forwards take their batch statistics in one pass over x (batchnorm.h
// channel_moments<true>); the cpuBnOnePassStats ablation brings back the two passes. What the training program and
// the rendered source say, without compiling (numerics: runtime/kernels-test/test_batchnorm.cc
// check_one_pass_statistics, and the zoo suites' train steps against the float64 reference).
import { describe, expect, it } from 'vitest';
import type { Ablations } from '../compiler/ablations.js';
import { compileModel, compileSpec } from '../compiler/pipeline.js';
import { FUSED_BLOCKS } from './reference/specs.js';

function compileCpu(ablations?: Ablations) {
  const r = compileSpec(FUSED_BLOCKS, 'fused_blocks.model', { device: 'cpu' });
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return compileModel(r.model, { target: 'cpu', maxBatch: 4, sourceHash: 'test', libraries: {}, cpuFeatures: [], ...(ablations ? { ablations } : {}) });
}
const bnForwards = (compiled: ReturnType<typeof compileCpu>) =>
  compiled.lowered.programs.find((p) => p.name === 'train_forward_backward')!.steps.filter((s) => s.op === 'bn_fwd_train');

describe('cpu training BN statistics in one pass (report only, no compile)', () => {
  it('by default every BN forward (plain, +ReLU, closing a residual block, in a concat slot) calls the one-pass kernel', () => {
    const compiled = compileCpu();
    const steps = bnForwards(compiled);
    expect(steps.length).toBeGreaterThan(2);
    expect(steps.some((s) => s.consts.residual === true) && steps.some((s) => s.consts.outTotal !== undefined)).toBe(true);
    expect(steps.every((s) => s.consts.twoPassStats === undefined)).toBe(true);
    expect(compiled.cpu.text.match(/batchnorm_forward_train\(/g)?.length).toBe(steps.length);
    expect(compiled.cpu.text).not.toContain('batchnorm_forward_train<false>');
  });

  it('the cpuBnOnePassStats ablation renders every BN forward with the two passes', () => {
    const compiled = compileCpu({ cpuBnOnePassStats: false });
    const steps = bnForwards(compiled);
    expect(steps.every((s) => s.consts.twoPassStats === true)).toBe(true);
    expect(compiled.cpu.text.match(/batchnorm_forward_train<false>\(/g)?.length).toBe(steps.length);
    expect(compiled.cpu.text).not.toMatch(/batchnorm_forward_train\(/);
  });
});
