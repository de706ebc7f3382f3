// Issue #17 on cpu: a concat's branch ending in a ReLU, a BN (alone or applying the ReLU after it), a Tanh, a pool or
// a conv that only the concat reads writes its channel slice of the concat's output in the training program, and its
// backward reads the gradient there (lower/train.ts concatSlots): no copy either way. At inference, each branch ending
// in a conv that only the concat reads writes its slice from the conv's epilogue, the others copied (lower/infer.ts
// concatsInPlace). Numerics on 2 threads here (1 and all threads: test/numerics-zoo*.test.ts run the same suite on
// fused_blocks, and with NINCC_TEST_FULL=1 on concat_ends); what the programs and report.txt say.
import './reference/two-threads.js';
import { describe, expect, it } from 'vitest';
import { reportOnly } from './reference/report-only.js';
import { CONCAT_ENDS, FUSED_BLOCKS } from './reference/specs.js';
import { zooSuite } from './reference/zoo-suite.js';

zooSuite('2 threads', ['fused_blocks', 'concat_ends']);

describe('concat branch ends written in place in cpu training (report only, no compile)', () => {
  it('a BN+ReLU end, a ReLU end and a conv end write their slices and read their gradient slices; the residual block is copied', () => {
    const { report, compiled } = reportOnly('fused_blocks', FUSED_BLOCKS, 'cpu');
    const train = compiled.lowered.programs.find((p) => p.name === 'train_forward_backward')!.steps;
    // Branch 1 (conv bn relu: BN at layer 24), branch 2 (… conv relu: ReLU at layer 30), branch 3 (maxpool conv: conv at 32).
    const bn = train.filter((s) => s.layer === 24 && (s.op === 'bn_fwd_train' || s.op === 'bn_bwd'));
    expect(bn.map((s) => [s.op, s.consts])).toEqual([
      ['bn_fwd_train', expect.objectContaining({ relu: true, outTotal: 15, outOffset: 0 })],
      ['bn_bwd', expect.objectContaining({ relu: true, outTotal: 15, outOffset: 0 })],
    ]);
    const relu = train.filter((s) => s.layer === 30);
    expect(relu.map((s) => [s.op, s.consts])).toEqual([
      ['relu_fwd_slice', { C: 4, HW: 20, total: 15, offset: 3 }],
      ['relu_bwd_slice', { C: 4, HW: 20, total: 15, offset: 3 }],
    ]);
    const conv = train.filter((s) => s.layer === 32);
    expect(conv.map((s) => [s.kernel, s.op === 'conv_fwd' || s.op === 'conv_bwd_weight' || s.op === 'conv_bwd_data' ? [s.consts.yTotal, s.consts.yOffset] : []])).toEqual([
      ['k32_conv_fwd_slice', [15, 7]],
      ['k32_conv_bwd_weight_slice', [15, 7]],
      ['k32_conv_bwd_data_slice', [15, 7]],
    ]);
    // All write the concat's output; the backwards read it and the concat's gradient.
    const concatOut = train.find((s) => s.op === 'concat_place')!.buffers.y;
    expect([bn[0].buffers.y, relu[0].buffers.y, conv[0].buffers.y, bn[1].buffers.y, relu[1].buffers.y]).toEqual(Array(5).fill(concatOut));
    expect(new Set([bn[1].buffers.g, relu[1].buffers.g, conv[1].buffers.g, conv[2].buffers.g]).size).toBe(1);
    // The residual block is copied, at its own offset; the copy kernel keeps inference's name.
    expect(train.filter((s) => s.op === 'concat_place').map((s) => [s.kernel, s.consts.offset])).toEqual([['k37_concat_place_4', 9]]);
    expect(train.filter((s) => s.op === 'concat_take').map((s) => s.consts.offset)).toEqual([9]);
    expect(report).toContain(
      "      training: 3 branch ends written into their channel slices by their own pass (k24_bn_fwd_train, k30_relu_fwd_slice, k32_conv_fwd_slice: no copy), 1 copied into its slice (k37_concat_place_4), the gradient's slices copied back out (k37_concat_take), the gradient's slices read in place by k32_conv_bwd_weight_slice, k32_conv_bwd_data_slice, k30_relu_bwd_slice, k24_bn_bwd\n",
    );
    expect(report).toContain('  concats with no copy in training: 0 of 1 (the others copy a branch end that is not a ReLU, BN, Tanh, pool or conv (not reading the model input) only the concat reads)\n');
  });

  it('a BN, a Tanh, a max pool, an average pool and two convs write their slices: no copy at all', () => {
    const { report, compiled } = reportOnly('concat_ends', CONCAT_ENDS, 'cpu');
    const train = compiled.lowered.programs.find((p) => p.name === 'train_forward_backward')!.steps;
    expect(train.some((s) => s.op === 'concat_place' || s.op === 'concat_take')).toBe(false);
    // Each end's forward and backward at its offset of the 18 channels (2 + 3 + 4 + 4 + 3 + 2).
    const place = (c: Record<string, unknown>) => [c.outTotal ?? c.yTotal ?? c.total, c.outOffset ?? c.yOffset ?? c.offset];
    const ends = train.filter((s) => s.layer >= 4 && s.layer <= 11 && place(s.consts)[0] !== undefined);
    expect(ends.map((s) => [s.kernel, ...place(s.consts)])).toEqual([
      ['k4_bn_fwd_train', 18, 0],
      ['k6_tanh_fwd_slice', 18, 2],
      ['k8_maxpool_fwd_slice', 18, 5],
      ['k9_avgpool_fwd_slice', 18, 9],
      ['k10_conv_fwd_slice', 18, 13],
      ['k11_conv_fwd_slice', 18, 16],
      ['k11_conv_bwd_weight_slice', 18, 16],
      ['k11_conv_bwd_data_slice', 18, 16],
      ['k10_conv_bwd_weight_slice', 18, 13],
      ['k10_conv_bwd_data_slice', 18, 13],
      ['k9_avgpool_bwd_slice', 18, 9],
      ['k8_maxpool_bwd_slice', 18, 5],
      ['k6_tanh_bwd_slice', 18, 2],
      ['k4_bn_bwd', 18, 0],
    ]);
    // The max pool's argmax stays its own (4×6×5 per image), not a slice.
    const maxpool = train.find((s) => s.kernel === 'k8_maxpool_fwd_slice')!;
    expect(compiled.lowered.memory.buffers.find((b) => b.id === maxpool.buffers.argmax)!.size).toBe(4 * 6 * 5);
    expect(report).toContain(
      "      training: 6 branch ends written into their channel slices by their own pass (k4_bn_fwd_train, k6_tanh_fwd_slice, k8_maxpool_fwd_slice, k9_avgpool_fwd_slice, k10_conv_fwd_slice, k11_conv_fwd_slice: no copy), the gradient's slices read in place by k11_conv_bwd_weight_slice, k11_conv_bwd_data_slice, k10_conv_bwd_weight_slice, k10_conv_bwd_data_slice, k9_avgpool_bwd_slice, k8_maxpool_bwd_slice, k6_tanh_bwd_slice, k4_bn_bwd\n",
    );
    expect(report).toContain('  concats with no copy in training: 1 of 1\n');
  });

  it("at inference the three branches closing in a conv write their slices from its epilogue; the residual block's is copied", () => {
    const { report, compiled } = reportOnly('fused_blocks', FUSED_BLOCKS, 'cpu');
    const infer = compiled.lowered.programs.find((p) => p.name === 'infer')!.steps;
    const concatOut = infer.find((s) => s.op === 'concat_place')!.buffers.y;
    const writers = infer.filter((s) => s.op === 'conv_infer' && s.buffers.y === concatOut);
    expect(writers.map((s) => [s.kernel, s.op === 'conv_infer' && s.consts.yTotal, s.op === 'conv_infer' && s.consts.yOffset])).toEqual([
      ['k23_conv_infer', 15, 0],
      ['k29_conv_infer', 15, 3],
      ['k32_conv_infer', 15, 7],
    ]);
    expect(infer.filter((s) => s.op === 'concat_place').map((s) => [s.kernel, s.consts.offset])).toEqual([['k37_concat_place_4', 9]]);
    expect(report).toContain(
      "      inference: 3 branch ends written into their channel slices by their closing conv: (25) by k23_conv_infer, (30) by k29_conv_infer, (32) by k32_conv_infer; the others, not a conv's output that only the concat reads, copied (k37_concat_place_4)\n",
    );
  });
});
