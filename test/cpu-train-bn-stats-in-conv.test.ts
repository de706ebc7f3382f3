// Issue #19 (i19y): the cpuBnStatsInConv opt-in, cpu training's BN statistics from the per-tile sums the conv's GEMM
// epilogue records (runtime/include/nincc/cpu/bn_moments.h; kernel checks on 1, 2 and all threads, bit for bit across
// them, with and without AVX-512: runtime/kernels-test/test_batchnorm.cc check_statistics_from_conv). What the
// training program and the rendered source say, and the float64-reference suite with the A/B on 2 threads.
import './reference/two-threads.js';
import { describe, expect, it } from 'vitest';
import type { Ablations } from '../compiler/ablations.js';
import { compileModel, compileSpec } from '../compiler/pipeline.js';
import { BN_STATS_IN_CONV, bnStatsInConvSuite } from './reference/bn-stats-in-conv.js';

function compileCpu(ablations?: Ablations) {
  const r = compileSpec(BN_STATS_IN_CONV, 'bn_stats_in_conv.model', { device: 'cpu' });
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return compileModel(r.model, { target: 'cpu', maxBatch: 4, sourceHash: 'test', libraries: {}, cpuFeatures: [], ...(ablations ? { ablations } : {}) });
}
const trainSteps = (compiled: ReturnType<typeof compileCpu>) => compiled.lowered.programs.find((p) => p.name === 'train_forward_backward')!.steps;

describe('BN statistics from the conv epilogues: the training program (no compile)', () => {
  it('off by default: no conv records sums, no BN reads any', () => {
    const compiled = compileCpu();
    const consts = trainSteps(compiled).map((s) => s.consts as Record<string, unknown>);
    expect(consts.some((c) => c.bnMoments !== undefined || c.convMoments !== undefined)).toBe(false);
    expect(compiled.cpu.text).not.toContain('ConvMoments');
  });

  it('opted in: each conv before a BN records the sums that BN reads, the residual block\'s closing BN too', () => {
    const compiled = compileCpu({ cpuBnStatsInConv: true });
    const steps = trainSteps(compiled);
    const convs = steps.filter((s) => s.op === 'conv_fwd');
    const bns = steps.filter((s) => s.op === 'bn_fwd_train');
    expect(convs.map((s) => s.consts.bnMoments)).toEqual([true, true, true, true]);
    expect(bns.map((s) => s.consts.convMoments)).toEqual([true, true, true, true]);
    expect(bns.some((s) => s.consts.residual === true)).toBe(true);
    expect(bns.map((s) => s.buffers.moments)).toEqual(convs.map((s) => s.buffers.bn_moments));
    // 6 floats (3 doubles) a channel and 8-pixel tile of an image: the first conv's 24 channels on 144 positions.
    expect(compiled.lowered.memory.buffers.find((b) => b.id === convs[0].buffers.bn_moments)!.size).toBe(24 * 18 * 6);
    expect(compiled.cpu.text.match(/ConvMoments::over\(/g)?.length).toBe(8);
    expect(compiled.cpu.text).toContain('static_assert(kBnMomentMinTilePixels == 8, "compiler/lower/ops.ts BN_MOMENT_MIN_TILE_PIXELS");');
  });
});

bnStatsInConvSuite('2 threads', true);
