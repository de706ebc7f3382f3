// The spreadWeightPrefetch ablation (compiler/ablations.ts) as generated code: by default a packed conv's implicit GEMM
// call lets conv_gemm.h prefetch the next weight panel from every pixel tile's product of a sweep (forward_tasks: NIN's
// 384- and 1024-channel 1x1s at batch 1, whose weights stream from memory); with the switch off every packed GEMM call
// passes spread_weight_prefetch=false (after the two flags before it), and no Winograd call does. The kernel's numerics
// (float64 reference, 1, 2 and all threads, and the same bits either way) are runtime/kernels-test/test_conv_gemm.cc's.
import { describe, expect, it } from 'vitest';
import { compiledNin, kernelSource as kernel, packedGemmCalls as gemmCalls } from './cpu-nin-compiled.js';

describe('spreadWeightPrefetch', () => {
  it('spreads the weight prefetches by default, and prefetches in the last tile only in every packed GEMM call when ablated', () => {
    const on = compiledNin(), off = compiledNin({ spreadWeightPrefetch: false });
    expect(kernel(on.cpu.text, 'k37_conv_infer')).toMatch(/conv2d_forward<packed_forward_paths\(Conv2dShape\{[^}]*\}\)>\(shape, [^\n]*PackedConvWeights\{[^\n]*, true\);/);
    expect(kernel(off.cpu.text, 'k37_conv_infer')).toMatch(
      /conv2d_forward<packed_forward_paths\(Conv2dShape\{[^}]*\}\)>\(shape, [^\n]*PackedConvWeights\{[^\n]*, true, ConvOutput\{\}, \/\*narrow_tails=\*\/true, \/\*in_place_pointwise=\*\/true, \/\*spread_weight_prefetch=\*\/false\);/,
    );
    expect(gemmCalls(off.cpu.text)).toBeGreaterThanOrEqual(9);
    expect(off.cpu.text.match(/spread_weight_prefetch=\*\/false/g)).toHaveLength(gemmCalls(off.cpu.text));
    expect(off.cpu.text).not.toMatch(/conv2d_forward_winograd<WinogradKind::\w+>\([^\n]*spread_weight_prefetch/);
    expect(on.cpu.text).not.toContain('spread_weight_prefetch');
    const step = off.lowered.programs.flatMap((p) => p.steps).find((s) => s.kernel === 'k37_conv_infer')!;
    expect(step.consts).toMatchObject({ lastTileWeightPrefetch: true });
  });
});
