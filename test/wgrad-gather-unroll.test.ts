// The k×k bf16 weight gradients that gather their input from global memory (no input halo: vgg-16's 3×3s on 128×128
// tiles) unroll the gather 4 pairs of rows at a time (ablation wgradGatherUnrollBy4, compiler/backends/cuda/conv-mma-grad.ts):
// unrolled whole, ptxas kept every row's tap and bounds across the slice loop and spilled k8/k11/k13/k15 at 255 registers
// on sm_80 and sm_90 (bench/RESULTS.md i15v). The pragma is the only change: the same loads, products and order, and the
// emulator's NINCC_UNROLL and NINCC_UNROLL_BY(n) are both empty, so an emu build is bitwise the old (its preprocessed
// source is the same). Compiled kernel text only, no build (a few s).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileModel, compileSpec, type Compiled } from '../compiler/pipeline.js';
import { changedKernels } from './reference/emu-variants.js';

const GATHER = "// Stage A: rows are taps crs = (c, r, s), one a warp instruction, the lanes along its positions j: the input under the tap, its pending transform applied.";
const vgg = (ablations: Record<string, boolean>): Compiled => {
  const r = compileSpec(readFileSync('models/vgg-16.model', 'utf8'), 'vgg-16.model', { device: 'emu' });
  return compileModel(r.model!, { target: 'emu', maxBatch: 128, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision: 'bf16', ablations });
};
/** The line after the gather's comment: the pairs' loop's unroll pragma. */
const gatherUnroll = (c: Compiled, name: string) => {
  const body = c.cuda!.kernels.find((k) => k.name === name)!.body.map((s) => s.trim());
  return body[body.indexOf(GATHER.trim()) + 1];
};
const GATHERED = ['k3_conv_wgrad_fused', 'k8_conv_wgrad_fused', 'k11_conv_wgrad_fused', 'k13_conv_wgrad_fused', 'k15_conv_wgrad_fused'];

describe('the k×k gathered weight gradients unrolled 4 pairs at a time (wgradGatherUnrollBy4; compiled kernels, no build)', () => {
  it('vgg-16 bf16: the 3×3s with no halo take NINCC_UNROLL_BY(4), off NINCC_UNROLL; nothing else changes', () => {
    const on = vgg({}), off = vgg({ wgradGatherUnrollBy4: false });
    for (const name of GATHERED) {
      expect(gatherUnroll(on, name), name).toBe('NINCC_UNROLL_BY(4)');
      expect(gatherUnroll(off, name), name).toBe('NINCC_UNROLL');
    }
    expect(new Set(changedKernels(on, off))).toEqual(new Set(GATHERED));
    // The pragma is the whole difference.
    for (const name of GATHERED) {
      const [a, b] = [on, off].map((c) => c.cuda!.kernels.find((k) => k.name === name)!.body);
      expect(a.map((s) => s.replace('NINCC_UNROLL_BY(4)', 'NINCC_UNROLL'))).toEqual(b);
    }
  });

  it("the emulator ignores both pragmas (an emu build's kernels are the same code either way)", () => {
    const h = readFileSync('runtime/include/nincc/device/emu/device.h', 'utf8');
    expect(h).toMatch(/^#define NINCC_UNROLL\s*$/m);
    expect(h).toMatch(/^#define NINCC_UNROLL_BY\(n\)\s*$/m);
  });
});
