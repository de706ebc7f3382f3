// The choice of a training 1x1 conv's weight gradient (compiler/schedule/cpu-train-wgrad-1x1.ts): dy unpacked
// (runtime/include/nincc/cpu/conv_wgrad_1x1.h) on planes of whole 32-pixel tiles with a grouped dw, else the GEMM,
// as generated code (each call static_asserts the header's rule equal to this one; no library built here) and as
// report.txt lines. Both forms give the same bits (runtime/kernels-test/test_conv.cc check_wgrad_1x1).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Ablations } from '../compiler/ablations.js';
import { compileModel, compileSpec } from '../compiler/pipeline.js';
import { wgrad1x1Applies, wgrad1x1Report } from '../compiler/schedule/cpu-train-wgrad-1x1.js';
import { root } from './cli-run.js';

const pointwise = (C: number, HW: number, K = C) => ({ C, H: HW, W: HW, K, P: HW, Q: HW, R: 1, S: 1, sh: 1, sw: 1, ph: 0, pw: 0 });

describe('1x1 training weight gradient: dy unpacked or the GEMM', () => {
  it('takes the unpacked form only for 1x1 stride-1 unpadded convs on whole-tile planes with a grouped dw', () => {
    expect(wgrad1x1Applies(pointwise(96, 56))).toBe(true); // NIN's 56x56 = 98 tiles
    expect(wgrad1x1Applies(pointwise(256, 28))).toBe(false); // 784 = 24.5 tiles
    expect(wgrad1x1Applies(pointwise(384, 14))).toBe(false);
    expect(wgrad1x1Applies(pointwise(32, 8))).toBe(true); // 64 = 2 tiles
    expect(wgrad1x1Applies(pointwise(400, 8, 410))).toBe(false); // dw 164000 floats: past the grouped bound
    expect(wgrad1x1Applies({ ...pointwise(96, 56), sh: 2, sw: 2, P: 28, Q: 28 })).toBe(false);
    expect(wgrad1x1Applies({ ...pointwise(96, 56), R: 3, S: 3, ph: 1, pw: 1 })).toBe(false);
  });

  const compileNin = (ablations?: Ablations) => {
    const file = join(root, 'models/nin.model');
    return compileModel(compileSpec(readFileSync(file, 'utf8'), file).model!, { target: 'cpu', maxBatch: 16, sourceHash: 'test', libraries: {}, cpuFeatures: [], ...(ablations ? { ablations } : {}) });
  };

  it("generates NIN's weight gradients with the rule static_asserted against the header's, and reports it", () => {
    const compiled = compileNin();
    const asserts = [...compiled.cpu.text.matchAll(/static_assert\(wgrad_1x1_applies\(Conv2dShape\{1, (\d+), (\d+), (\d+), (\d+), (\d+), \d+, \d+, \d+, \d+, \d+\}\) == (true|false)/g)];
    const chosen = asserts.filter((m) => m[6] === 'true').map((m) => `${m[1]}→${m[4]} ${m[2]}x${m[3]} ${m[5]}x${m[5]}`);
    expect(chosen).toEqual(['96→96 56x56 1x1', '96→96 56x56 1x1']);
    expect(asserts.length).toBe(compiled.cpu.text.split('conv2d_backward_weights<').length - 1); // every conv's weight gradient
    const report = wgrad1x1Report(compiled.cpuPrograms);
    expect(report[0]).toBe('CPU training weight gradients of 1x1 convs:');
    expect(report.filter((l) => l.includes('dy unpacked')).map((l) => l.trim().split(' ')[0])).toEqual(['k7_conv_bwd_weight', 'k4_conv_bwd_weight']); // the backward's order
    expect(report.find((l) => l.includes('1x1 256→256 on 28x28'))).toMatch(/implicit GEMM \(conv_wgrad\.h\): 28x28 pixels are not whole tiles of 32/);
    expect(report.length).toBe(1 + 8); // NIN's eight 1x1 convs
    expect(report.filter((l) => l.includes('dy unpacked')).every((l) => l.includes('prefetched a few lines every 4 pixels of each tile product'))).toBe(true);
    expect(compiled.cpu.text).not.toContain('conv2d_backward_weights<false');
  });

  // The cpuWgradSpreadPrefetch ablation: the unpacked form's prefetches in one burst per tile product
  // (bitwise the same dw: test_conv.cc check_wgrad_1x1); the GEMM's calls are unchanged.
  it('the cpuWgradSpreadPrefetch ablation renders the unpacked form with burst prefetches and reports it', () => {
    const compiled = compileNin({ cpuWgradSpreadPrefetch: false });
    const calls = [...compiled.cpu.text.matchAll(/static_assert\(wgrad_1x1_applies\(Conv2dShape\{1, (\d+), \d+, \d+, (\d+),[^\n]*\n[^\n]*\n[^\n]*conv2d_backward_weights<(true|false), weight_gradient_paths\(Conv2dShape\{[^}]*\}, \d+\)>\(shape/g)];
    expect(calls.length).toBe(12); // NIN's twelve convs
    expect(calls.filter((m) => m[3] === 'false').map((m) => `${m[1]}→${m[2]}`)).toEqual(['96→96', '96→96']);
    const report = wgrad1x1Report(compiled.cpuPrograms).filter((l) => l.includes('dy unpacked'));
    expect(report.length).toBe(2);
    expect(report.every((l) => l.includes('prefetched in one burst per tile product (cpuWgradSpreadPrefetch off)'))).toBe(true);
  });
});
