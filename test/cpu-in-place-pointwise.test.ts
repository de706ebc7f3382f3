// The inPlacePointwise ablation (compiler/ablations.ts) as generated code: by default a packed 1x1 conv's implicit GEMM
// call lets conv_gemm.h read a batch-1 call's pixel tiles from x in place (reads_in_place: NIN's 256-, 384- and
// 1024-channel 1x1s); with the switch off each such call passes in_place_pointwise=false, and no other conv's call does.
// The kernel's numerics (float64 reference, 1, 2 and all threads, and the same bits either way) are
// runtime/kernels-test/test_conv_gemm.cc's.
import { describe, expect, it } from 'vitest';
import { compiledNin, kernelSource as kernel } from './cpu-nin-compiled.js';

describe('inPlacePointwise', () => {
  it('leaves the batch-1 1x1 tiles in place by default, and gathers them in every packed 1x1 call when ablated', () => {
    const on = compiledNin(), off = compiledNin({ inPlacePointwise: false });
    // NIN's last 1x1 (1024 channels on 7x7): conv2d_forward with its packed weights.
    expect(kernel(on.cpu.text, 'k37_conv_infer')).toMatch(/conv2d_forward<packed_forward_paths\(Conv2dShape\{[^}]*\}\)>\(shape, [^\n]*PackedConvWeights\{[^\n]*, true\);/);
    expect(kernel(off.cpu.text, 'k37_conv_infer')).toMatch(
      /conv2d_forward<packed_forward_paths\(Conv2dShape\{[^}]*\}\)>\(shape, [^\n]*PackedConvWeights\{[^\n]*, true, ConvOutput\{\}, \/\*narrow_tails=\*\/true, \/\*in_place_pointwise=\*\/false\);/,
    );
    // The eight 1x1s' packed calls carry it (the 96->96 ones twice: the direct conv below batch 2, the GEMM from it); conv1 does not.
    expect(off.cpu.text.match(/in_place_pointwise=\*\/false/g)!.length).toBeGreaterThanOrEqual(8);
    expect(kernel(off.cpu.text, 'k1_conv_infer')).not.toContain('in_place_pointwise');
    expect(on.cpu.text).not.toContain('in_place_pointwise');
    const step = off.lowered.programs.flatMap((p) => p.steps).find((s) => s.kernel === 'k37_conv_infer')!;
    expect(step.consts).toMatchObject({ gatheredPointwise: true });
  });
});
