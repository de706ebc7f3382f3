// The gradient rebuild folded into the weight gradient (compiler/lower/train-fused.ts FusedTrainOptions.rebuildInWgrad):
// where a grad_rebuild pass would rebuild a 1×1 conv's dY' (dReLU·dBN) before its gradients, its bf16 weight gradient
// (run first) rebuilds it in its B staging and the blocks of its first row tile store it, rounded to bf16, for the
// data gradient, which reads it as it read the pass's; a k×k conv keeps the pass. In CI: the lowering (which passes
// are left, who writes and reads dY') and the
// kernel's guarded store. On emu (NINCC_TEST_FULL=1): bitwise the gradients, steps and inference of the pass storing
// dY' in fp32 (`bf16Rebuilt: false`): the same rebuilt floats, the bias gradient summed from them unrounded in both.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Compiled } from '../compiler/pipeline.js';
import type { KernelStep } from '../compiler/lower/program-ir.js';
import { compile, reads, training } from './reference/bf16-storage-lowering.js';
import { expectSameVariants } from './reference/same-variants.js';

const NIN = readFileSync('models/nin.model', 'utf8');
/** The layers whose gradients a pass rebuilds in nin.model's bf16 build without the switch (test/emu-rebuild-pass.test.ts). */
const PASS_LAYERS = [37, 34, 31, 27, 24, 21, 17, 14, 11];
/** Those of them with a 1×1 kernel: their weight gradients rebuild dY' and store it; the 5×5 and 3×3 ones keep the pass. */
const FOLDED_LAYERS = [37, 34, 27, 24, 17, 14];

let ninBf16: Compiled | undefined;
/** nin.model's default bf16 build, compiled once for the tests that read it. */
const ninBf16Compiled = () => (ninBf16 ??= compile(NIN, 'models/nin.model', 'bf16'));

const step = (c: Compiled, op: string, layer: number): KernelStep => {
  const s = training(c).steps.find((q) => q.op === op && q.layer === layer);
  if (!s) throw new Error(`no ${op}@${layer}`);
  return s;
};

describe("dY' rebuilt and stored by the weight gradient (lowering and kernels)", () => {
  it("nin.model bf16: the 1×1 convs' passes gone, each one's weight gradient rebuilds dY' and writes it in bf16, read by its data gradient alone", () => {
    const c = ninBf16Compiled();
    const p = training(c);
    expect(p.steps.filter((s) => s.op === 'grad_rebuild').map((s) => s.layer)).toEqual([31, 21, 11]);
    const decl = new Map(c.lowered.memory.buffers.map((b) => [b.id, b]));
    const storing = p.steps.filter((s) => s.op === 'conv_wgrad_fused' && s.consts.dyOut === true);
    expect(storing.map((s) => s.layer)).toEqual(FOLDED_LAYERS);
    for (const layer of FOLDED_LAYERS) {
      const w = step(c, 'conv_wgrad_fused', layer), d = step(c, 'conv_dgrad_fused', layer);
      if (w.op !== 'conv_wgrad_fused' || d.op !== 'conv_dgrad_fused') continue;
      expect(w.consts.gBn && w.consts.gRelu, w.kernel).toBe(true);
      // g is the next layer's data gradient or pool backward, stored bf16 (bf16Gradients), but k37's (the average pool's, fp32).
      expect(w.consts.gBf16 === true, w.kernel).toBe(layer !== 37);
      const dy = w.buffers.dy_raw;
      expect(decl.get(dy)?.dtype, w.kernel).toBe('bf16');
      expect(decl.get(dy)?.size, w.kernel).toBe(Math.ceil((w.consts.K * w.consts.P * w.consts.Q) / 2));
      expect(d.buffers.g, d.kernel).toBe(dy);
      expect(d.consts.gBf16 === true && !d.consts.gBn && !d.consts.gRelu, d.kernel).toBe(true);
      expect(p.steps.indexOf(w), w.kernel).toBeLessThan(p.steps.indexOf(d));
      expect(p.steps.filter((r) => reads(r, dy)).map((r) => r.kernel), w.kernel).toEqual([d.kernel]);
    }
  });

  it("the kernel stores each rebuilt value once, from the blocks of the first row tile, rounded to bf16", () => {
    const k = ninBf16Compiled().cuda?.kernels.find((q) => q.name === 'k14_conv_wgrad_fused');
    expect(k?.params).toMatch(/nincc::bf16\* dy_raw\b/);
    const text = k?.body.join('\n') ?? '';
    expect(text).toContain('if (blockIdx.x == 0) nincc::st(&dy_raw[at], nincc::to_bf16(v));');
    // g, k17's data gradient stored bf16, widened as it is loaded.
    expect(text).toContain('v = nincc::bf16_to_float(nincc::ld(&g[at]));');
    expect(k?.fused).toContain("dY' stored (bf16) for the data gradient");
  });

  it('rebuildInWgrad: false keeps the nine passes and no weight gradient stores dY\'', () => {
    const p = training(compile(NIN, 'models/nin.model', 'bf16', { rebuildInWgrad: false }));
    expect(p.steps.filter((s) => s.op === 'grad_rebuild').map((s) => s.layer)).toEqual(PASS_LAYERS);
    expect(p.steps.some((s) => s.op === 'conv_wgrad_fused' && s.consts.dyOut === true)).toBe(false);
  });
});

// A 3×3 with a data gradient (stride 2: its data gradient skips taps; it keeps the pass, whose bf16 dY' would round its
// bias gradient against the fp32 build's: no bias), a 1×1 of 128 input channels
// (its pass folded into its weight gradient) and a 1×1 of 6 (it kept the fused rebuild); a batch of 3 on grids for 4
// leaves partial tiles.
const INPUT = [2, 7, 6] as const;
const CLASSES = 3;
const SPEC = `model rebuild_in_wgrad {
  input ${INPUT.join('x')}
  conv(2, 4, 3, 3, 1, 1, 1, 1)  bn(4)  relu
  conv(4, 6, 3, 3, 2, 2, 1, 1):noBias()  bn(6)  relu
  conv(6, 128, 1, 1)  bn(128)  relu
  conv(128, 6, 1, 1)  bn(6)  relu
  view(-1)  linear(72, ${CLASSES})  logsoftmax
}`;

describe("the emu spec's lowering", () => {
  it('the 1×1 of 128 channels (layer 10) is folded, the 3×3 (layer 4) keeps its pass', () => {
    const p = training(compile(SPEC, 'rebuild_in_wgrad.model', 'bf16'));
    expect(p.steps.filter((s) => s.op === 'conv_wgrad_fused' && s.consts.dyOut === true).map((s) => s.layer)).toEqual([10]);
    expect(p.steps.filter((s) => s.op === 'grad_rebuild').map((s) => s.layer)).toEqual([4]);
  });
});

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-rebuild-in-wgrad.test.ts: the emu A/B builds run with NINCC_TEST_FULL=1 (two emu builds); CI checks the lowering and kernels');

describe.runIf(FULL)("dY' rebuilt by the weight gradient on emu (NINCC_TEST_FULL=1)", () => {
  it('one training step, three SGD steps and inference: bitwise those of the pass storing dY\' in fp32', async () => {
    await expectSameVariants({ spec: SPEC, file: 'rebuild_in_wgrad.model', input: INPUT, classes: CLASSES, on: {}, off: { bf16Rebuilt: false }, live: 'conv10.weight' }, 97);
  }, 1_800_000); // two emu builds: over 10 minutes on the 2 shared cores at a load of 20
});
