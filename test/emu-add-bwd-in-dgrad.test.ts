// The switch addBwdInDgrad (on by default; lower/train-fused.ts, docs/design.md §4): a two-branch residual add read first by a conv
// has no add_bwd_fused pass; that conv's fp32 data gradient, the last of the block output's gradients, masks dX by the
// block's ReLU as it stores it (dz, both branch ends' gradient) and writes the ends' BN partials. The same arithmetic
// as add_bwd_fused's, so a training step on emu is bitwise the switch-off build's, and as close to the cpu device's.
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
// Every stride-1 same-size reader adds as it loads (the opt-in), or none; the backward in the data gradient (on by default), or not.
const BOTH = { addInNextConv: true } as const;
const BWD_ONLY = { addInNextPointwiseConv: false } as const;
const OFF = { addInNextPointwiseConv: false, addBwdInDgrad: false } as const;
const trainSteps = (c: ReturnType<typeof compileEmuVariant>) => c.lowered.programs.find((p) => p.name === 'train_forward_backward')!.steps;
const folding = (steps: ReturnType<typeof trainSteps>) => steps.filter((s): s is StepOf<'conv_dgrad_fused'> => s.op === 'conv_dgrad_fused' && s.consts.addBwd === true);

describe('addBwdInDgrad: the lowering and report.txt (no compile)', () => {
  const on = trainSteps(compileEmuVariant(ADD_IN_NEXT_CONV, FILE, BOTH, 'fp32'));
  const bwdOnly = trainSteps(compileEmuVariant(ADD_IN_NEXT_CONV, FILE, BWD_ONLY, 'fp32'));

  it('moves each add_bwd_fused read first by a conv into that conv\'s data gradient, strided readers too, with or without the forward', () => {
    for (const steps of [on, bwdOnly]) {
      expect(steps.filter((s) => s.op === 'add_bwd_fused')).toEqual([]);
      // The 3x3 reader of the identity block, the 1x1 of the projection block, the strided 3x3 of the third.
      expect(folding(steps).map((s) => [s.kernel, s.consts.sumRelu, s.consts.aStats, s.consts.bStats])).toEqual([
        ['k29_conv_dgrad_fused', true, true, false],
        ['k21_conv_dgrad_fused', true, true, true],
        ['k12_conv_dgrad_fused', true, true, false],
      ]);
    }
    // The forward is the switch's alone: the strided reader's add stays an add_apply pass.
    expect(on.filter((s) => s.op === 'add_apply').map((s) => s.kernel)).toEqual(['k27_add_apply']);
    expect(bwdOnly.filter((s) => s.op === 'add_apply').map((s) => s.kernel)).toEqual(['k10_add_apply', 'k19_add_apply', 'k27_add_apply']);
  });

  it('passes dz, the masked gradient it stores, to both branch ends, and reads the mask where add_bwd_fused did', () => {
    for (const d of folding(on)) {
      const readers = on.filter((s) => s !== d && Object.values(s.buffers).includes(d.buffers.dx));
      // Each end that closes in conv → bn rebuilds its dY' from dz (that conv's weight and data gradients): the main
      // branch's, and a projection shortcut's; an identity shortcut's dz is summed by the data gradient of the conv before.
      expect(readers.filter((s) => s.op === 'conv_wgrad_fused' && s.buffers.g === d.buffers.dx).length, d.kernel).toBe(d.consts.bStats ? 2 : 1);
      expect(readers.filter((s) => s.op === 'conv_dgrad_fused' && s.buffers.g_add === d.buffers.dx).length, d.kernel).toBe(d.consts.bStats ? 0 : 1);
      // The mask from the block output (identity shortcut: plain data), or from the two ends when both have a pending BN.
      expect(d.buffers.y === undefined, d.kernel).toBe(d.consts.bStats === true);
      expect(d.buffers.a_dz, d.kernel).toMatch(/stat_dz/);
    }
  });

  it('says in report.txt which conv does each add\'s backward', () => {
    const r = compileSpec(ADD_IN_NEXT_CONV, FILE, { device: 'emu' });
    const report = buildReport(r.model!, compileEmuVariant(ADD_IN_NEXT_CONV, FILE, BOTH, 'fp32'), '(not compiled)');
    expect(report).toContain("backward: no pass of its own: k12_conv_dgrad_fused, the data gradient of the conv (12) that reads it first (the last of its gradients), masks it by the ReLU as it stores it and writes the branch ends' BN partials, the gradient passed to each branch end");
    expect(report).toContain("      training: one pass k27_add_apply applies both branch ends' pending BN/ReLU, adds and applies the ReLU (28) (its first reader, the conv (29), is strided or resizes: no one tap reaches every element, so it cannot add as it loads); backward: no pass of its own: k29_conv_dgrad_fused, the data gradient of the conv (29)");
    expect(report).toContain("  (10) nn.CAddTable: no kernel: forward in k12_conv_fwd_fused as it loads; backward in k12_conv_dgrad_fused's epilogue");
    expect(report).toContain("  (27) nn.CAddTable: backward in k29_conv_dgrad_fused's epilogue; k27_add_apply");
    expect(report).toMatch(/k12_conv_dgrad_fused \[implicit-GEMM dgrad[^\]]*epilogue: the residual add backward \+ dReLU \+ the branch ends' BN partials Σdz, Σdz·x̂ of the block before\]/);
    expect(report).toContain('  3 of 4 residual adds run backward in no pass of their own: the data gradient of the conv that reads one first, the last of the block output\'s gradients, masks it by the block\'s ReLU as it stores it and writes the branch ends\' BN partials (addBwdInDgrad: k29_conv_dgrad_fused, k21_conv_dgrad_fused, k12_conv_dgrad_fused)');
  });
});

describe('addBwdInDgrad: the shipped ResNets (no compile)', () => {
  it('leaves no add_bwd_fused pass in ResNet-50\'s or resnet-18\'s fp32 training backward by default (every add but the pooled last is read first by a conv)', () => {
    const count = (file: string) => {
      const steps = trainSteps(compileEmuVariant(readFileSync(join('models', file), 'utf8'), file, {}, 'fp32'));
      return [steps.filter((s) => s.op === 'add_bwd_fused').length, folding(steps).length, steps.filter((s) => s.op === 'avgpool_add_bwd').length];
    };
    expect(count('resnet-50.model')).toEqual([0, 15, 1]);
    expect(count('resnet-18.model')).toEqual([0, 7, 1]);
  }, 60_000);
});

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-add-bwd-in-dgrad.test.ts: the emu training step (three builds, ~3 min) is skipped in CI; NINCC_TEST_FULL=1 runs it');

describe('addBwdInDgrad: a training step on emu', () => {
  // The switch-on build adds as it loads before both stride-1 readers and before the strided one not (an add_apply pass),
  // and does all three adds' backward in the readers' data gradients: the forward with and without, one build.
  it.runIf(FULL)('(NINCC_TEST_FULL=1) is bitwise the switch-off build\'s (gradients, SGD steps, inference) and matches cpu as closely', async () => {
    await expectAddSwitchesStep(BOTH, OFF, 'addInNextConv and addBwdInDgrad');
  }, 1_500_000);
});
