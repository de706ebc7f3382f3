// addBwdInDgrad on the bf16 tensor-core path (backends/cuda/conv-mma-add-bwd.ts, docs/design.md §4): a two-branch residual
// add read first by a conv has no add_bwd_fused pass in a bf16 build either; that conv's mma data gradient masks dX by the
// block's ReLU as it stores it (dz, fp32 as add_bwd_fused's) and writes the ends' BN partials, summed over each 32-position
// tile in add_bwd_fused's warp_sum order, so a training step is bitwise the switch-off build's.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileSpec } from '../compiler/pipeline.js';
import type { StepOf } from '../compiler/lower/program-ir.js';
import { buildReport } from '../compiler/report/build-report.js';
import { compileEmuVariant } from './reference/emu-variants.js';
import { expectAddSwitchesStep } from './reference/add-in-conv-step.js';
import { ADD_IN_NEXT_CONV } from './reference/specs.js';

const FILE = 'add_in_next_conv.model';
const OFF = { addBwdInDgrad: false } as const;
const trainSteps = (c: ReturnType<typeof compileEmuVariant>) => c.lowered.programs.find((p) => p.name === 'train_forward_backward')!.steps;
const folding = (steps: ReturnType<typeof trainSteps>) => steps.filter((s): s is StepOf<'conv_dgrad_fused'> => s.op === 'conv_dgrad_fused' && s.consts.addBwd === true);

describe('addBwdInDgrad in bf16: the lowering and the tensor-core kernel (no compile)', () => {
  const on = compileEmuVariant(ADD_IN_NEXT_CONV, FILE, {}, 'bf16');
  const off = compileEmuVariant(ADD_IN_NEXT_CONV, FILE, OFF, 'bf16');

  it("moves each add_bwd_fused read first by a conv into that conv's bf16 data gradient, and the switch keeps the passes", () => {
    expect(trainSteps(on).filter((s) => s.op === 'add_bwd_fused')).toEqual([]);
    expect(folding(trainSteps(on)).map((s) => [s.kernel, s.consts.sumRelu, s.consts.aStats, s.consts.bStats, s.consts.dxBf16 === true])).toEqual([
      ['k29_conv_dgrad_fused', true, true, false, false],
      ['k21_conv_dgrad_fused', true, true, true, false],
      ['k12_conv_dgrad_fused', true, true, false, false],
    ]);
    expect(trainSteps(off).filter((s) => s.op === 'add_bwd_fused').map((s) => s.kernel)).toEqual(['k27_add_bwd_fused', 'k19_add_bwd_fused', 'k10_add_bwd_fused']);
    expect(folding(trainSteps(off))).toEqual([]);
  });

  it("sums each end's partials over a column's 32 positions in add_bwd_fused's warp_sum tree, from the MMA layout", () => {
    const kernel = (name: string) => on.cuda!.kernels.find((k) => k.name === name)!;
    // The identity block's reader: the mask read from the block output, one end's partials.
    const k12 = kernel('k12_conv_dgrad_fused');
    expect(k12.fused).toContain('bf16 tensor-core implicit-GEMM dgrad');
    expect(k12.fused).toContain("epilogue: the residual add backward + dReLU + the branch ends' BN partials Σdz, Σdz·x̂ of the block before (add_bwd_fused's sums in its order)");
    const body = k12.body.join('\n');
    expect(body).toContain('if (valid && !(nincc::ld(&y[at]) > 0.0f)) d = 0.0f;');
    expect(body).toContain('float a_lane_dz_s = (a_lane_dz[0] + a_lane_dz[2]) + (a_lane_dz[1] + a_lane_dz[3]);');
    expect(body).toContain('a_lane_dz_s += nincc::shfl_xor(a_lane_dz_s, 16); a_lane_dz_s += nincc::shfl_xor(a_lane_dz_s, 8); a_lane_dz_s += nincc::shfl_xor(a_lane_dz_s, 4);');
    expect(body).toContain('nincc::st(&a_dz[slot], a_lane_dz_s); nincc::st(&a_dzx[slot], a_lane_dzx_s);');
    expect(body).not.toContain('nincc::warp_sum');
    // The projection block's reader: the mask recomputed from both ends, both ends' partials.
    const k21 = kernel('k21_conv_dgrad_fused').body.join('\n');
    expect(k21).toContain('if (valid && !(av + bv > 0.0f)) d = 0.0f;');
    expect(k21).toContain('nincc::st(&b_dz[slot], b_lane_dz_s); nincc::st(&b_dzx[slot], b_lane_dzx_s);');
    // The switch-off build's readers are plain data gradients.
    expect(off.cuda!.kernels.find((k) => k.name === 'k12_conv_dgrad_fused')!.body.join('\n')).not.toContain('a_lane_dz');
  });
});

describe('addBwdInDgrad in bf16: ResNet-50 (no compile)', () => {
  it("report.txt names no add_bwd_fused and no add_apply pass: 15 adds in their 1×1 readers' forwards and data gradients, the last in the average pool", () => {
    const file = 'resnet-50.model';
    const source = readFileSync(join('models', file), 'utf8');
    const compiled = compileEmuVariant(source, file, {}, 'bf16');
    const report = buildReport(compileSpec(source, file, { device: 'emu' }).model!, compiled, '(not compiled)');
    expect(report.match(/_add_bwd_fused/g)).toBeNull();
    // The forward (addInNextPointwiseConv, test/emu-add-in-next-conv-bf16.test.ts): each add in its 1×1 reader's tensor-core forward.
    expect(report.match(/_add_apply/g)).toBeNull();
    expect(report.match(/k\d+_conv_fwd_fused \[bf16 tensor-core implicit-GEMM conv \(mma\.m16n8k16, fp32 accumulate\) \+ prologue: the residual add/g)).toHaveLength(15);
    expect(report).toContain('  15 of 16 residual adds run forward in the prologue of the conv that reads them first');
    expect(report).toContain("  15 of 16 residual adds run backward in no pass of their own: the data gradient of the conv that reads one first");
    expect(report.match(/k\d+_conv_dgrad_fused \[bf16 tensor-core implicit-GEMM dgrad[^\]]*epilogue: the residual add backward/g)).toHaveLength(15);
    expect(report.match(/k\d+_avgpool_add_bwd/g)?.length).toBeGreaterThan(0);
  }, 60_000);
});

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-add-bwd-in-dgrad-bf16.test.ts: the bf16 emu training step (two builds, minutes) is skipped in CI; NINCC_TEST_FULL=1 runs it');

describe('addBwdInDgrad in bf16: a training step on emu', () => {
  it.runIf(FULL)("(NINCC_TEST_FULL=1) is bitwise the switch-off build's (gradients, SGD steps, inference)", async () => {
    await expectAddSwitchesStep({}, OFF, 'addBwdInDgrad (bf16)', 'bf16');
  }, 1_500_000);
});
