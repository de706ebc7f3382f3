// Issue #17's fusion across branches: a residual add (and its ReLU) in the epilogue of the conv closing its
// branch, a concat written in place by its branches' convs. The cpu inference of a spec whose fused convs
// take both the Winograd and the GEMM path matches the float64 reference (the blocks on the GEMM path and on
// emu, and the fused training program: test/numerics-zoo*.test.ts, emu-zoo, emu-blocks-train); report.txt of
// a small ResNet, made without compiling anything, says where each add went and counts the passes left.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildSpec, expectClose, poisonArena, preparedModel, randomImages, readWeights, removeBuilds } from './reference/artifacts.js';
import { forward } from './reference/interpret.js';
import { reportOnly } from './reference/report-only.js';
import { BLOCK_FUSION, FUSED_BLOCKS, TINY_RESNET } from './reference/specs.js';

const TOL = 2e-5; // as test/numerics-zoo.test.ts

afterAll(() => removeBuilds());

describe('block fusion on cpu, Winograd and GEMM epilogues', () => {
  it('infer matches the float64 reference at batches 3 and 1 on a poisoned arena', async () => {
    const built = buildSpec('block_fusion', BLOCK_FUSION, 4);
    const cc = readFileSync(join(built.dir, 'kernels.cpu.cc'), 'utf8');
    // The paths this test is for: the Winograd conv closing the projection residual, the 1x1 one closing the
    // identity residual, and the concat's Winograd conv writing channels 8… of 104.
    expect(cc).toMatch(/void k3_conv_infer\([^]*?conv2d_forward_winograd<WinogradKind::\w+>\([^\n]*ConvOutput\{\/\*r=\*\/arg<const float>\(a, \d\), 64, 0\}\);/);
    expect(cc).toMatch(/void k7_conv_infer\([^]*?conv2d_forward<packed_forward_paths\(Conv2dShape\{[^}]*\}\)>\(shape, [^\n]*ConvOutput\{\/\*r=\*\/arg<const float>\(a, \d\), 64, 0\}\);/);
    expect(cc).toMatch(/void k14_conv_infer\([^]*?conv2d_forward_winograd<WinogradKind::\w+>\([^\n]*ConvOutput\{nullptr, 104, 8\}\);/);
    const plan = JSON.parse(readFileSync(join(built.dir, 'plan.json'), 'utf8')) as { programs: Record<string, { steps: { op: string }[] }> };
    expect(plan.programs.infer.steps.map((s) => s.op).filter((op) => op === 'add_infer' || op === 'concat_place')).toEqual([]);
    const { m, b, next } = await preparedModel(built, 31);
    try {
      const w = readWeights(m);
      for (const [i, n] of [3, 1].entries()) {
        const images = randomImages(b.model, n, next);
        poisonArena(m, i === 0 ? Number.NaN : 3.0e4);
        expectClose(await m.infer(images), forward(b.model, w, images, n, { mode: 'eval' }).output.data, TOL, `block_fusion infer n=${n}`);
      }
    } finally {
      m.dispose();
    }
  }, 120_000);
});

describe('report.txt of a small ResNet for emu (no compile)', () => {
  it('names the conv epilogue each add is fused into and counts no add, BN or ReLU pass left in the blocks', () => {
    const { report, compiled } = reportOnly('tiny_resnet', TINY_RESNET, 'emu');
    expect(report).toContain('      inference: add fused into k7_conv_infer epilogue (the conv (7) closing its branch; the shortcut (3) added, then the ReLU (11))');
    expect(report).toContain('      inference: add fused into k17_conv_infer epilogue (the conv (17) closing its branch; the shortcut (16) added, then the ReLU (20))');
    // Its backward in the data gradient of the strided conv that reads it first (addBwdInDgrad, fp32), the last of its gradients.
    expect(report).toContain('  (10) nn.CAddTable: backward in k12_conv_dgrad_fused\'s epilogue; k10_add_apply [residual add (branch end\'s pending BN applied on load) + ReLU]');
    expect(report).toMatch(/k12_conv_dgrad_fused \[implicit-GEMM dgrad [^\]]*epilogue: the residual add backward \+ dReLU \+ the branch ends' BN partials Σdz, Σdz·x̂ of the block before\]/);
    expect(report).toContain('  1 of 2 residual adds run forward as one pass');
    expect(report).toContain('  none in a conv epilogue (as at inference): a branch closing in conv → bn applies that BN with the conv\'s batch statistics');
    // The last block, read by the average pool alone, is added by that pool as it loads: no add pass, no block output stored.
    expect(report).toContain("      training: no pass of its own: k21_avgpool_add_fwd, the average pool (21) that alone reads it, applies both branch ends' pending BN/ReLU and adds, then the ReLU (20), as it loads (the sum never stored); backward: k21_avgpool_add_bwd, the pool's gradient masked by the ReLU passed to each branch end in the same pass");
    expect(report).toContain('  (19) nn.CAddTable: no kernel: added by the average pool (21) that alone reads it, as it loads\n');
    expect(report).toMatch(/\(21\) nn\.SpatialAveragePooling[^\n]*: k21_avgpool_add_fwd \[average pooling of the residual add \(branch end's pending BN applied on load\) \(shortcut's pending BN applied on load\) \+ ReLU, the sum never stored\], k21_avgpool_add_bwd \[average pooling backward \+ residual add backward \+ dReLU \(mask recomputed from the branch ends\) \+ the branch ends' BN partials/);
    expect(report).toContain('  1 of 2 residual adds run in no pass of their own: the average pool that alone reads one');
    const train = compiled.lowered.programs.find((p) => p.name === 'train_forward_backward')!.steps;
    expect(train.filter((s) => s.op === 'add_bwd_fused')).toEqual([]);
    expect(train.filter((s) => s.op === 'conv_dgrad_fused' && s.consts.addBwd === true).map((s) => [s.layer, 'y' in s.buffers])).toEqual([[12, true]]);
    expect(train.filter((s) => s.op === 'avgpool_add_fwd' || s.op === 'avgpool_add_bwd' || s.op === 'add_apply').map((s) => s.kernel)).toEqual(['k10_add_apply', 'k21_avgpool_add_fwd', 'k21_avgpool_add_bwd']);
    // Neither the block output nor the pool's gradient of it is a buffer; dz, the gradient of the branch ends, is.
    const buffers = train.flatMap((s) => Object.values(s.buffers));
    expect(buffers.filter((b) => /add19\.out|avgpool21\.grad_in/.test(b))).toEqual([]);
    expect(buffers.filter((b) => b.includes('add19.grad_in')).length).toBeGreaterThan(1);
    expect(report).toContain('  other add passes over activations: 0\n');
    // What is left is the stem's output, read by both branches of the first block with its BN+ReLU pending:
    // applied once for them, and its BN partials taken from the summed gradient.
    expect(report).toContain('  separate BN/ReLU passes over activations: 2 (k4_act_apply, k4_act_bwd_stats)');
    expect(report).toMatch(/k4_conv_dgrad_fused \[implicit-GEMM dgrad [^\]]*epilogue: \+ another reader's gradient/);
    // No kernel of a block's merge or its ReLU in the inference program.
    const infer = compiled.lowered.programs.find((p) => p.name === 'infer')!;
    expect(infer.steps.map((s) => s.op)).not.toContain('add_infer');
  });

  it("writes a concat's branch ends into their channel slices in training as it applies their pending BN/ReLU", () => {
    const { report, compiled } = reportOnly('fused_blocks', FUSED_BLOCKS, 'emu');
    expect(report).toContain(
      '      training: 2 branch ends written into their channel slices by the pass that applies their pending BN/ReLU (k37_concat_apply, k37_concat_apply_2: no other pass over them), 2 copied into their slices (k37_concat_apply_3, k37_concat_apply_4), the gradient\'s slices copied back out',
    );
    expect(report).toContain('k37_concat_apply [BN scale/shift + ReLU of the branch end, written into its channels 0…2 of the concat]');
    // No materialize pass or copy of the concat's branch ends: only the stem's fanned-out value is materialized.
    const steps = compiled.lowered.programs.find((p) => p.name === 'train_forward_backward')!.steps;
    expect(steps.filter((s) => s.op === 'act_apply' || s.op === 'concat_place').map((s) => s.kernel)).toEqual(['k4_act_apply']);
    // The BN+ReLU end's partials come from its slice of the gradient, taken in the same pass.
    expect(report).toContain("the gradient's slices copied back out (k37_concat_take_stats with its end's BN partials, k37_concat_take, k37_concat_take_2, k37_concat_take_3)");
    expect(report).toContain('  separate BN/ReLU passes over activations: 2 (k4_act_apply, k4_act_bwd_stats)');
    // The projection block (read first by a stride-1 1x1: added as it loads, its backward in that conv's data gradient,
    // fp32's addInNextPointwiseConv and addBwdInDgrad) reads both raw ends for their BN partials, so its ReLU mask comes from them, not from the block output.
    expect(report).toContain("  (21) nn.CAddTable: no kernel: forward in k23_conv_fwd_fused as it loads; backward in k23_conv_dgrad_fused's epilogue");
    expect(report).toMatch(/k23_conv_dgrad_fused \[implicit-GEMM dgrad [^\]]*epilogue: the residual add backward \+ dReLU \(mask recomputed from the branch ends it reads anyway\)/);
    expect(report).toContain('  0 of 3 add_bwd_fused passes recompute the ReLU mask from the two branch ends');
    expect(steps.filter((s) => s.op === 'add_bwd_fused').map((s) => [s.kernel, 'y' in s.buffers])).toEqual([['k36_add_bwd_fused', false], ['k12_add_bwd_fused', true], ['k12_add_bwd_fused_2', false]]);
    expect(steps.filter((s) => s.op === 'conv_dgrad_fused' && s.consts.addBwd === true).map((s) => [s.kernel, 'y' in s.buffers])).toEqual([['k23_conv_dgrad_fused', false]]);
  });

  it('says a block has no training kernels when the model has no training programs', () => {
    // Ends in softmax, not logsoftmax: no training programs (report.txt says why at its end), so no kernel to name.
    const spec = 'model no_train {\n  input 3x4x4\n  concat {\n    branch { conv(3, 2, 1, 1)  relu }\n    branch { conv(3, 2, 1, 1) }\n  }\n  residual {\n    branch { conv(4, 4, 1, 1) }\n    branch { identity }\n  }\n  view(-1)  linear(4 * 4 * 4, 3)  softmax\n}\n';
    const { report } = reportOnly('no_train', spec, 'emu');
    expect(report).toContain('No training programs:');
    expect(report.match(/ {6}training: none \(no training programs\)\n/g)).toHaveLength(2);
    expect(report).not.toContain('()');
  });
});
