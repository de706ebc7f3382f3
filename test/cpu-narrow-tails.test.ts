// The narrowTails ablation (compiler/ablations.ts) as generated code: by default a packed conv's implicit
// GEMM or pointwise direct call lets conv_gemm.h multiply a short last pixel tile through only the
// registers its columns reach, and a last 1-4 columns as weights-in-lanes products (tail_split: NIN's 7x7,
// 14x14 and 28x28 planes at batch 1); with the switch off each such call passes narrow_tails=false. The
// kernels' numerics (float64 reference, 1, 2 and all threads, and the same bits either way) are
// runtime/kernels-test/test_conv_gemm.cc's and test_conv_direct.cc's.
import { describe, expect, it } from 'vitest';
import { compiledNin, kernelSource as kernel, packedGemmCalls as gemmCalls } from './cpu-nin-compiled.js';

const compiled = (ablate: boolean) => compiledNin(ablate ? { narrowTails: false } : undefined);

describe('narrowTails', () => {
  it('leaves the short pixel tiles to the kernels by default, and turns them off in every packed GEMM call when ablated', () => {
    const on = compiled(false), off = compiled(true);
    // NIN's last 1x1 (1024 channels on 7x7): conv2d_forward, whose packed GEMM has 49 = 32 + 16 + 1 columns at batch 1.
    expect(kernel(on.cpu.text, 'k37_conv_infer')).toMatch(/conv2d_forward<packed_forward_paths\(Conv2dShape\{[^}]*\}\)>\(shape, [^\n]*PackedConvWeights\{[^\n]*, true\);/);
    expect(kernel(off.cpu.text, 'k37_conv_infer')).toMatch(/conv2d_forward<packed_forward_paths\(Conv2dShape\{[^}]*\}\)>\(shape, [^\n]*PackedConvWeights\{[^\n]*, true, ConvOutput\{\}, \/\*narrow_tails=\*\/false\);/);
    // Every packed GEMM call (conv1, the eight 1x1s, and the 96->96 1x1s' GEMM from batch 2 up) carries it, no Winograd call does.
    expect(gemmCalls(off.cpu.text)).toBeGreaterThanOrEqual(9);
    expect(off.cpu.text.match(/narrow_tails=\*\/false/g)).toHaveLength(gemmCalls(off.cpu.text));
    expect(off.cpu.text).not.toMatch(/conv2d_forward_winograd<WinogradKind::\w+>\([^\n]*narrow_tails/);
    expect(on.cpu.text).not.toContain('narrow_tails');
    const step = off.lowered.programs.flatMap((p) => p.steps).find((s) => s.kernel === 'k37_conv_infer')!;
    expect(step.consts).toMatchObject({ wideTails: true });
  });
});
