// The choice between the pointwise direct conv and the implicit GEMM for a BN-folded 1x1 conv
// (compiler/schedule/cpu-conv-algorithm.ts pointwiseGemmChoice): the GEMM from the batch whose output is
// past L2, as generated code (no library built) and as report.txt lines. Both run the same packed weights
// with the same bits (runtime/kernels-test/test_conv_direct.cc), so only the choice is checked here.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chooseConvAlgorithm, convAlgorithmReport, convPackedWeightsFloats, packedConvWeightsSize } from '../compiler/schedule/cpu-conv-algorithm.js';
import { compileModel, compileSpec } from '../compiler/pipeline.js';
import { root } from './cli-run.js';

const pointwise = (C: number, HW: number, K = C) => ({ C, H: HW, W: HW, K, R: 1, S: 1, sh: 1, sw: 1, ph: 0, pw: 0 });

function cpuSource(model: string, maxBatch: number) {
  const file = join(root, `models/${model}.model`);
  const compiled = compileModel(compileSpec(readFileSync(file, 'utf8'), file).model!, { target: 'cpu', maxBatch, sourceHash: 'test', libraries: {}, cpuFeatures: [] });
  return { cc: compiled.cpu.text, report: convAlgorithmReport(compiled.cpuPrograms) };
}

describe('pointwise direct conv or implicit GEMM', () => {
  it('takes the GEMM from the batch whose output is past 2 MiB, only for 1x1 stride-1 unpadded convs the direct conv could take', () => {
    // NIN's 96→96 on 56x56: 1.15 MiB an image, so from batch 2; its 256→256 on 28x28 (0.77 MiB) from 3.
    expect(chooseConvAlgorithm(pointwise(96, 56)).pointwiseGemm).toMatchObject({ fromBatch: 2 });
    expect(chooseConvAlgorithm(pointwise(256, 28)).pointwiseGemm).toMatchObject({ fromBatch: 3 });
    // nin-fashion's 32→32 on 28x28 (98 KiB an image): from 21, so not in an artifact that stops at 20.
    expect(chooseConvAlgorithm(pointwise(32, 28)).pointwiseGemm).toMatchObject({ fromBatch: 21 });
    expect(chooseConvAlgorithm({ ...pointwise(32, 28), maxBatch: 20 }).pointwiseGemm).toBeUndefined();
    expect(chooseConvAlgorithm({ ...pointwise(32, 28), maxBatch: 21 }).pointwiseGemm).toMatchObject({ fromBatch: 21 });
    // An image's output alone past the bound: the GEMM at every batch (ResNet-50's 64→256 on 56x56: 3.1 MiB).
    expect(chooseConvAlgorithm(pointwise(64, 56, 256)).pointwiseGemm).toMatchObject({ fromBatch: 1 });
    // Deeper than any ISA's direct conv (NIN's 384→384), strided, padded or 3x3: conv2d_forward runs the GEMM already.
    expect(chooseConvAlgorithm(pointwise(384, 56)).pointwiseGemm).toBeUndefined();
    expect(chooseConvAlgorithm({ ...pointwise(96, 56), sh: 2, sw: 2 }).pointwiseGemm).toBeUndefined();
    expect(chooseConvAlgorithm({ ...pointwise(96, 56), ph: 1, pw: 1 }).pointwiseGemm).toBeUndefined();
    expect(chooseConvAlgorithm({ ...pointwise(96, 56), R: 3, S: 3, ph: 1, pw: 1 }).pointwiseGemm).toBeUndefined();
    // The same packed weights serve both: nothing more is packed.
    expect(convPackedWeightsFloats(pointwise(96, 56))).toBe(packedConvWeightsSize(96, 96));
  });

  it("generates NIN's switch, with the bound static_asserted against conv_gemm.h's, and reports it", () => {
    const { cc, report } = cpuSource('nin', 16);
    const forward = (batchTest: string) =>
      new RegExp(
        String.raw`void k4_conv_infer\(const NinccArgs\* a\) \{\n  const Conv2dShape shape\{a->n, 96, 56, 56, 96, 1, 1, 1, 1, 0, 0\};\n` +
          String.raw`  static_assert\(conv_gemm_detail::kOutputPastL2Bytes == 2097152, [^\n]*\n` +
          String.raw`  if \(a->n < ${batchTest}\) conv2d_forward<packed_forward_paths\(Conv2dShape\{[^}]*\}\)>\(shape, [^\n]*PackedConvWeights\{[^\n]*\n` +
          String.raw`  else conv2d_forward_packed\(shape, /\*x=\*/arg<const float>\(a, 0\), /\*w=\*/arg<const float>\(a, 1\), [^\n]*\n\}`,
      );
    expect(cc).toMatch(forward('2'));
    expect(report.filter((l) => l.includes('implicit GEMM, not the pointwise direct conv'))).toEqual([
      expect.stringMatching(/^ {2}k4_conv_infer +1x1\/1 96→96 on 56x56, from batch 2: implicit GEMM, not the pointwise direct conv: its output is past L2/),
      expect.stringMatching(/^ {2}k7_conv_infer +1x1\/1 96→96 on 56x56, from batch 2: /),
      expect.stringMatching(/^ {2}k14_conv_infer +1x1\/1 256→256 on 28x28, from batch 3: /),
      expect.stringMatching(/^ {2}k17_conv_infer +1x1\/1 256→256 on 28x28, from batch 3: /),
    ]);
    // nin-fashion up to batch 16 (what bench:cpu runs) keeps the direct conv everywhere.
    const fashion = cpuSource('nin-fashion', 16);
    expect(fashion.cc).not.toContain('conv2d_forward_packed(');
    expect(fashion.report.join('\n')).not.toContain('not the pointwise direct conv');
  });
});
