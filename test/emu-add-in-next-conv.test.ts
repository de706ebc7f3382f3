// The opt-in addInNextConv (lower/train-fused.ts, docs/design.md §4): a residual block's output that a stride-1,
// same-size conv reads first is added by that conv's fp32 training forward as it loads the two branch ends, and the
// blocks of its first output-channel tile store it; no add_apply pass. The same arithmetic as add_apply's, so a
// training step on emu is bitwise the switch-off build's, and as close to the cpu device's.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileSpec } from '../compiler/pipeline.js';
import type { StepOf } from '../compiler/lower/program-ir.js';
import { buildReport } from '../compiler/report/build-report.js';
import { changedKernels, compileEmuVariant } from './reference/emu-variants.js';
import { expectAddSwitchesStep } from './reference/add-in-conv-step.js';
import { ADD_IN_NEXT_CONV } from './reference/specs.js';
import type { Ablations } from '../compiler/ablations.js';

const FILE = 'add_in_next_conv.model';
const trainSteps = (c: ReturnType<typeof compileEmuVariant>) => c.lowered.programs.find((p) => p.name === 'train_forward_backward')!.steps;

// The backward stays add_bwd_fused in both (addBwdInDgrad off: test/emu-add-bwd-in-dgrad.test.ts moves it); off: no add in a conv at all.
const ON = { addInNextConv: true, addBwdInDgrad: false } as const;
const OFF = { addInNextPointwiseConv: false, addBwdInDgrad: false } as const;

describe('addInNextConv: the lowering and report.txt (no compile)', () => {
  const on = compileEmuVariant(ADD_IN_NEXT_CONV, FILE, ON, 'fp32');
  const off = compileEmuVariant(ADD_IN_NEXT_CONV, FILE, OFF, 'fp32');

  it('leaves the adds read first by a stride-1 same-size conv to that conv, and keeps add_apply before a strided one', () => {
    const steps = trainSteps(on);
    expect(steps.filter((s) => s.op === 'add_apply').map((s) => s.kernel)).toEqual(['k27_add_apply']);
    // By default (addInNextPointwiseConv) only the 1x1 reader adds as it loads: a 3x3 one would load each element 9 times a channel tile.
    const pointwise = trainSteps(compileEmuVariant(ADD_IN_NEXT_CONV, FILE, { addBwdInDgrad: false }, 'fp32'));
    expect(pointwise.filter((s) => s.op === 'add_apply').map((s) => s.kernel)).toEqual(['k10_add_apply', 'k27_add_apply']);
    expect(pointwise.filter((s) => s.op === 'conv_fwd_fused' && s.consts.sumInput === true).map((s) => s.kernel)).toEqual(['k21_conv_fwd_fused']);
    const summing = steps.filter((s): s is StepOf<'conv_fwd_fused'> => s.op === 'conv_fwd_fused' && s.consts.sumInput === true);
    expect(summing.map((s) => [s.kernel, s.buffers.x_out])).toEqual([['k12_conv_fwd_fused', 'train:add10.out#12'], ['k21_conv_fwd_fused', 'train:add19.out#22']]);
    // The identity block's shortcut is plain data (no BN); the projection block's ends both have a pending BN.
    expect(summing.map((s) => [s.consts.aBn, s.consts.bBn === true, s.consts.sumRelu])).toEqual([[true, false, true], [true, true, true]]);
    // The backward is as without the switch: one add_bwd_fused a block (phase 2 moves it into the data gradient).
    expect(steps.filter((s) => s.op === 'add_bwd_fused').map((s) => s.kernel)).toEqual(trainSteps(off).filter((s) => s.op === 'add_bwd_fused').map((s) => s.kernel));
    // Only the two convs' forwards change; every other kernel is the switch-off build's.
    expect(changedKernels(on, off)).toEqual(['k12_conv_fwd_fused', 'k21_conv_fwd_fused']);
    expect((off.cuda?.kernels ?? []).map((k) => k.name).filter((n) => !(on.cuda?.kernels ?? []).some((k) => k.name === n))).toEqual(['k10_add_apply', 'k19_add_apply']);
  });

  it('says in report.txt where each add ran', () => {
    const r = compileSpec(ADD_IN_NEXT_CONV, FILE, { device: 'emu' });
    const report = buildReport(r.model!, on, '(not compiled)');
    // Why an add before a k×k reader stays a pass by default.
    expect(buildReport(r.model!, compileEmuVariant(ADD_IN_NEXT_CONV, FILE, {}, 'fp32'), '(not compiled)')).toContain("      training: one pass k10_add_apply applies both branch ends' pending BN/ReLU, adds and applies the ReLU (11) (its first reader, the 3×3 conv (12), would load each element 9 times per output-channel tile: adds as it loads in 1×1 readers only, unless the fp32 opt-in addInNextConv)");
    expect(report).toContain("      training: no pass of its own: k12_conv_fwd_fused, the conv (12) that reads it first, applies both branch ends' pending BN/ReLU and adds, then the ReLU (11), as it loads, the blocks of its first output-channel tile storing the sum for its other readers; backward: one pass k10_add_bwd_fused, the gradient passed to each branch end");
    expect(report).toContain("      training: no pass of its own: k21_conv_fwd_fused, the conv (21) that reads it first,");
    expect(report).toContain("      training: one pass k27_add_apply applies both branch ends' pending BN/ReLU, adds and applies the ReLU (28)");
    expect(report).toMatch(/\(12\) nn\.SpatialConvolution[^\n]*: k12_conv_fwd_fused \[implicit-GEMM conv \+ prologue: the residual add \(branch end's pending BN applied on load\) \+ ReLU of the block before \(its first channel tile stores the sum\)/);
    expect(report).toContain("  (10) nn.CAddTable: forward in k12_conv_fwd_fused as it loads; k10_add_bwd_fused [residual add backward + dReLU + the branch ends' BN partials");
    expect(report).toContain('  1 of 4 residual adds run forward as one pass per branch after the first');
    expect(report).toContain('  2 of 4 residual adds run forward in the prologue of the conv that reads them first (addInNextConv: k12_conv_fwd_fused, k21_conv_fwd_fused), whose first output-channel tile stores the block output; backward: add_bwd_fused');
  });
});

describe('addInNextConv: the shipped ResNets (no compile)', () => {
  it('leaves no add_apply pass in ResNet-50\'s training forward (each bottleneck opens with a stride-1 1x1) and three in resnet-18\'s (its strided down blocks)', () => {
    const count = (file: string) => {
      const steps = (ablations: Ablations) => trainSteps(compileEmuVariant(readFileSync(join('models', file), 'utf8'), file, ablations, 'fp32'));
      return [{ addInNextConv: true } as const, {}].map(steps).map((s) => [s.filter((s) => s.op === 'add_apply').length, s.filter((s) => s.op === 'conv_fwd_fused' && s.consts.sumInput === true).length, s.filter((s) => s.op === 'avgpool_add_fwd').length]);
    };
    // With the opt-in, and by default (1x1 readers: all of ResNet-50's, none of resnet-18's).
    expect(count('resnet-50.model')).toEqual([[0, 15, 1], [0, 15, 1]]);
    expect(count('resnet-18.model')).toEqual([[3, 4, 1], [7, 0, 1]]);
  }, 60_000);
});

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-add-in-next-conv.test.ts: the emu training step (three builds, ~3 min) is skipped in CI; NINCC_TEST_FULL=1 runs it');

describe('addInNextConv: a training step on emu', () => {
  it.runIf(FULL)('(NINCC_TEST_FULL=1) is bitwise the switch-off build\'s (gradients, SGD steps, inference) and matches cpu as closely', async () => {
    await expectAddSwitchesStep(ON, OFF, 'addInNextConv');
  }, 600_000);
});
