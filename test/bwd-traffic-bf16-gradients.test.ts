// Data gradients stored in bf16 (issue #15; lower/train-fused.ts FusedTrainOptions.bf16Gradients): a conv's data
// gradient writes dX rounded to bf16 where dX is the gradient of a pending BN's value that a conv produced, and that
// conv's grad_rebuild pass or gradient kernels widen each load and rebuild dY' from it in fp32. The BN's Σdz, Σdz·x̂
// partials stay sums of the unrounded accumulators. Not bitwise (the rebuild starts from the rounded dX): the float64
// bound of test/emu-conv-mma-grad-bn.test.ts carries the rounding. Here, in CI: the lowering (which gradients, their
// dtypes, sizes and readers), the generated stores and loads, and the off switch.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Ablations } from '../compiler/ablations.js';
import { compileModel, compileSpec, type Compiled } from '../compiler/pipeline.js';
import { opBuffers } from '../compiler/lower/ops.js';
import type { KernelStep } from '../compiler/lower/program-ir.js';

function compile(source: string, file: string, precision: 'fp32' | 'bf16', ablations?: Ablations): Compiled {
  const r = compileSpec(source, file);
  if (!r.model) throw new Error(`${file}: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  return compileModel(r.model, { target: 'emu', maxBatch: 4, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision, ...(ablations ? { ablations } : {}) });
}

const training = (c: Compiled) => {
  const p = c.lowered.programs.find((q) => q.name === 'train_forward_backward');
  if (!p) throw new Error('no training program');
  return p;
};
const reads = (s: KernelStep, id: string) => opBuffers(s.op, s.consts).some((b) => b.dir !== 'out' && s.buffers[b.name] === id);

const NIN = readFileSync('models/nin.model', 'utf8');
let ninBf16: Compiled | undefined;
const ninBf16Compiled = () => (ninBf16 ??= compile(NIN, 'models/nin.model', 'bf16'));

describe('data gradients stored in bf16 in the lowering', () => {
  it('nin.model bf16: each 1×1 conv\'s data gradient writes bf16, ⌈C·H·W/2⌉ words an image, read as bf16 only by the conv before it (its pass, or its fused-rebuild gradients)', () => {
    const c = ninBf16Compiled();
    const p = training(c);
    const decl = new Map(c.lowered.memory.buffers.map((b) => [b.id, b]));
    const stored = p.steps.filter((s) => s.op === 'conv_dgrad_fused' && s.consts.dxBf16 === true);
    // The 1×1 convs' inputs are a conv's output with a pending BN; the k×k convs' (11, 21, 31) a max pool's output.
    expect(stored.map((s) => s.layer)).toEqual([37, 34, 27, 24, 17, 14, 7, 4]);
    for (const s of stored) {
      if (s.op !== 'conv_dgrad_fused') continue;
      const dx = s.buffers.dx;
      expect(decl.get(dx)?.dtype, s.kernel).toBe('bf16');
      expect(decl.get(dx)?.size, s.kernel).toBe(Math.ceil((s.consts.C * s.consts.H * s.consts.W) / 2));
      const readers = p.steps.filter((r) => reads(r, dx));
      const before = s.layer - 3; // the conv whose output this is the gradient of (conv, bn, relu per layer)
      const expected = s.consts.C >= 128 ? [`grad_rebuild@${before}`] : before === 1 ? [`conv_wgrad_fused@${before}`] : [`conv_dgrad_fused@${before}`, `conv_wgrad_fused@${before}`];
      expect(readers.map((r) => `${r.op}@${r.layer}`).sort(), s.kernel).toEqual(expected);
      for (const r of readers) expect((r.consts as { gBf16?: boolean }).gBf16, r.kernel).toBe(true);
    }
    // plan.json says it: the data gradient's dx argument is a bf16 ref.
    const planSteps = c.plan.programs.train_forward_backward.steps;
    for (const s of stored) expect(planSteps.find((q) => q.kernel === s.kernel)?.args[s.args.indexOf(s.buffers.dx!)]?.dtype, s.kernel).toBe('bf16');
  });

  it('bf16Gradients false: the same steps, every data gradient in fp32 and no reader told otherwise; fp32 builds have none', () => {
    const on = training(ninBf16Compiled());
    const off = training(compile(NIN, 'models/nin.model', 'bf16', { bf16Gradients: false }));
    expect(off.steps.map((s) => s.kernel)).toEqual(on.steps.map((s) => s.kernel));
    expect(off.steps.some((s) => 'dxBf16' in s.consts)).toBe(false);
    // Only the passes' dY' is read as bf16 g (bf16Rebuilt), not a data gradient.
    expect(off.steps.some((s) => s.op === 'grad_rebuild' && 'gBf16' in s.consts)).toBe(false);
    expect(off.steps.filter((s) => (s.op === 'conv_dgrad_fused' || s.op === 'conv_wgrad_fused') && s.consts.gBf16).length).toBe(18);
    expect(training(compile(NIN, 'models/nin.model', 'fp32')).steps.some((s) => 'dxBf16' in s.consts)).toBe(false);
  });
});

describe('the generated kernels', () => {
  it('a data gradient stored bf16 rounds dx as it stores it and sums the BN partials from the unrounded value; each grad_rebuild reading one widens its loads', () => {
    const cuda = ninBf16Compiled().cuda;
    if (!cuda) throw new Error('no cuda kernels');
    const writers = cuda.kernels.filter((k) => /conv_dgrad_fused/.test(k.name) && /nincc::bf16\* dx\b/.test(k.params));
    expect(writers.map((k) => k.name).sort()).toEqual(['k14_conv_dgrad_fused', 'k17_conv_dgrad_fused', 'k24_conv_dgrad_fused', 'k27_conv_dgrad_fused', 'k34_conv_dgrad_fused', 'k37_conv_dgrad_fused', 'k4_conv_dgrad_fused', 'k7_conv_dgrad_fused']);
    for (const k of writers) {
      const text = k.body.join('\n');
      expect(text, k.name).toMatch(/if \(valid\) nincc::st\(&dx\[at\], nincc::to_bf16\(dv\)\);/);
      expect(text, k.name).toMatch(/const float dz = .*\? dv : 0\.0f;/);
      expect(k.fused, k.name).toMatch(/dx stored bf16/);
    }
    const passes = cuda.kernels.filter((k) => /grad_rebuild/.test(k.name) && /const nincc::bf16\* g\b/.test(k.params));
    expect(passes.map((k) => k.name).sort()).toEqual(['k11_grad_rebuild', 'k14_grad_rebuild', 'k21_grad_rebuild', 'k24_grad_rebuild', 'k31_grad_rebuild', 'k34_grad_rebuild']);
    for (const k of passes) {
      const text = k.body.join('\n');
      expect(text, k.name).toMatch(/nincc::bf16_to_float\(nincc::ld\(&g\[at\]\)\)/);
      expect(text, k.name).not.toMatch(/[^(]nincc::ld\(&g\[/);
    }
  });
});
