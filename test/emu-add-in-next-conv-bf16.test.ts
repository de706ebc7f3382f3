// addInNextPointwiseConv on the bf16 tensor-core path (backends/cuda/conv-mma.ts, docs/design.md §4): a residual block's
// output that a stride-1 1×1 conv reads first has no add_apply pass in a bf16 build either; that conv's mma forward
// gathers A from the two branch ends, computing add_apply's sum (residual.ts endsSum: the same bits) before rounding it
// to bf16, and the blocks of its first output-channel tile store the sum for the block output's other readers. So a
// training step is bitwise the switch-off build's.
import { describe, expect, it } from 'vitest';
import { changedKernels, compileEmuVariant } from './reference/emu-variants.js';
import { expectAddSwitchesStep } from './reference/add-in-conv-step.js';
import { ADD_IN_NEXT_CONV } from './reference/specs.js';

const FILE = 'add_in_next_conv.model';
const OFF = { addInNextPointwiseConv: false } as const;
const trainSteps = (c: ReturnType<typeof compileEmuVariant>) => c.lowered.programs.find((p) => p.name === 'train_forward_backward')!.steps;

describe('addInNextPointwiseConv in bf16: the lowering and the tensor-core forward (no compile)', () => {
  const on = compileEmuVariant(ADD_IN_NEXT_CONV, FILE, {}, 'bf16');
  const off = compileEmuVariant(ADD_IN_NEXT_CONV, FILE, OFF, 'bf16');

  it("leaves the add read first by a 1×1 conv to that conv's bf16 forward, and the switch keeps its add_apply", () => {
    expect(trainSteps(on).filter((s) => s.op === 'add_apply').map((s) => s.kernel)).toEqual(['k10_add_apply', 'k27_add_apply']);
    expect(trainSteps(on).filter((s) => s.op === 'conv_fwd_fused' && s.consts.sumInput === true).map((s) => s.kernel)).toEqual(['k21_conv_fwd_fused']);
    expect(trainSteps(off).filter((s) => s.op === 'add_apply').map((s) => s.kernel)).toEqual(['k10_add_apply', 'k19_add_apply', 'k27_add_apply']);
    expect(changedKernels(on, off)).toEqual(['k21_conv_fwd_fused']);
  });

  it('gathers A from both branch ends, the sum stored by the first output-channel tile', () => {
    const k21 = on.cuda!.kernels.find((k) => k.name === 'k21_conv_fwd_fused')!;
    expect(k21.fused).toContain("bf16 tensor-core implicit-GEMM conv (mma.m16n8k16, fp32 accumulate) + prologue: the residual add (branch end's pending BN applied on load) (shortcut's pending BN applied on load) + ReLU of the block before (its first channel tile stores the sum)");
    const body = k21.body.join('\n');
    expect(body).toContain('av = nincc::ffma(av, nincc::ld(&xa_scale[ch]), nincc::ld(&xa_shift[ch]));');
    expect(body).toContain('bv = nincc::ffma(bv, nincc::ld(&xb_scale[ch]), nincc::ld(&xb_shift[ch]));');
    expect(body).toContain('if (n0 == 0) nincc::st(&x_out[xe], sum);  // the block output, for its other readers');
    expect(body).not.toContain('cp_async');
    expect(off.cuda!.kernels.find((k) => k.name === 'k21_conv_fwd_fused')!.body.join('\n')).not.toContain('x_out');
  });
});

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-add-in-next-conv-bf16.test.ts: the bf16 emu training step (two builds, minutes) is skipped in CI; NINCC_TEST_FULL=1 runs it');

describe('addInNextPointwiseConv in bf16: a training step on emu', () => {
  it.runIf(FULL)("(NINCC_TEST_FULL=1) is bitwise the switch-off build's (gradients, SGD steps, inference)", async () => {
    await expectAddSwitchesStep({}, OFF, 'addInNextPointwiseConv (bf16)', 'bf16');
  }, 1_500_000);
});
