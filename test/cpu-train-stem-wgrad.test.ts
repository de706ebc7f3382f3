// The choice of a training strided conv's weight gradient (compiler/schedule/cpu-train-stem-wgrad.ts): X unpacked
// (runtime/include/nincc/cpu/conv_wgrad_stem.h) for a strided conv of at most 4 input channels with a grouped dw,
// else the GEMM, as generated code (each call static_asserts the header's rule equal to this one; no library built
// here) and as report.txt lines. Both forms give the same bits (runtime/kernels-test/test_conv.cc check_wgrad_stem).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileModel, compileSpec } from '../compiler/pipeline.js';
import { wgradStemApplies, wgradStemReport } from '../compiler/schedule/cpu-train-stem-wgrad.js';
import { root } from './cli-run.js';

const ninStem = { C: 3, H: 224, W: 224, K: 96, P: 56, Q: 56, R: 11, S: 11, sh: 4, sw: 4, ph: 5, pw: 5 };

describe('strided training weight gradient: X unpacked or the GEMM', () => {
  it('takes the unpacked form only for strided convs of at most 4 input channels with a grouped dw', () => {
    expect(wgradStemApplies(ninStem)).toBe(true);
    expect(wgradStemApplies({ ...ninStem, sh: 1, sw: 1, P: 224, Q: 224 })).toBe(false); // stride 1
    expect(wgradStemApplies({ ...ninStem, C: 4 })).toBe(true);
    expect(wgradStemApplies({ ...ninStem, C: 5 })).toBe(false);
    expect(wgradStemApplies({ ...ninStem, C: 4, K: 400 })).toBe(false); // dw 193600 floats: past the grouped bound
    expect(wgradStemApplies({ ...ninStem, sh: 1, P: 224 })).toBe(true); // strided in one direction
  });

  it("generates NIN's weight gradients with the rule static_asserted against the header's, and reports it", () => {
    const file = join(root, 'models/nin.model');
    const compiled = compileModel(compileSpec(readFileSync(file, 'utf8'), file).model!, { target: 'cpu', maxBatch: 16, sourceHash: 'test', libraries: {}, cpuFeatures: [] });
    const asserts = [...compiled.cpu.text.matchAll(/static_assert\(wgrad_stem_applies\(Conv2dShape\{1, (\d+), (\d+), (\d+), (\d+), (\d+), \d+, (\d+), \d+, \d+, \d+\}\) == (true|false)/g)];
    const chosen = asserts.filter((m) => m[7] === 'true').map((m) => `${m[1]}→${m[4]} ${m[2]}x${m[3]} ${m[5]}x${m[5]}/${m[6]}`);
    expect(chosen).toEqual(['3→96 224x224 11x11/4']);
    expect(asserts.length).toBe(compiled.cpu.text.split('conv2d_backward_weights<').length - 1); // every conv's weight gradient
    const report = wgradStemReport(compiled.cpuPrograms);
    expect(report).toEqual([
      'CPU training weight gradients of strided convs:',
      expect.stringMatching(/^ {2}k1_conv_bwd_weight +11x11\/4x4 3→96 on 224x224: X unpacked from a padded phase-split copy, dy transposed \(conv_wgrad_stem\.h\): 363 taps against 96 channels/),
    ]);
  });
});
