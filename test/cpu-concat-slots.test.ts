// Issue #17 on cpu: a concat's branch ending in a ReLU, or in a BN applying the ReLU after it, writes its channel
// slice of the concat's output in the training program, and its backward reads the gradient there
// (lower/train.ts concatSlots): no copy either way. At inference, each branch ending in a conv that only the
// concat reads writes its slice from the conv's epilogue, the others copied (lower/infer.ts concatsInPlace).
// Numerics on 2 threads here (1 and all threads: test/numerics-zoo*.test.ts run the same suite on
// fused_blocks); what the programs and report.txt say.
import './reference/two-threads.js';
import { describe, expect, it } from 'vitest';
import { reportOnly } from './reference/report-only.js';
import { FUSED_BLOCKS } from './reference/specs.js';
import { zooSuite } from './reference/zoo-suite.js';

zooSuite('2 threads', ['fused_blocks']);

describe('concat branch ends written in place in cpu training (report only, no compile)', () => {
  it('a BN+ReLU end and a ReLU end write their slices and read their gradient slices; the others are copied', () => {
    const { report, compiled } = reportOnly('fused_blocks', FUSED_BLOCKS, 'cpu');
    const train = compiled.lowered.programs.find((p) => p.name === 'train_forward_backward')!.steps;
    // Branch 1 (conv bn relu: BN at layer 24) and branch 2 (… conv relu: ReLU at layer 30) end in the slots.
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
    // Both write the concat's output; the BN's backward and the ReLU's read it and the concat's gradient.
    const concatOut = train.find((s) => s.op === 'concat_place')!.buffers.y;
    expect([bn[0].buffers.y, relu[0].buffers.y, bn[1].buffers.y, relu[1].buffers.y]).toEqual(Array(4).fill(concatOut));
    expect(bn[1].buffers.g).toBe(relu[1].buffers.g);
    // The pool's conv and the residual block are copied, at their own offsets; the copy kernels keep inference's names.
    expect(train.filter((s) => s.op === 'concat_place').map((s) => [s.kernel, s.consts.offset])).toEqual([['k37_concat_place_3', 7], ['k37_concat_place_4', 9]]);
    expect(train.filter((s) => s.op === 'concat_take').map((s) => s.consts.offset)).toEqual([7, 9]);
    expect(report).toContain(
      "      training: 2 branch ends written into their channel slices by their own ReLU or BN+ReLU pass (k24_bn_fwd_train, k30_relu_fwd_slice: no copy), 2 copied into their slices (k37_concat_place_3, k37_concat_place_4), the gradient's slices copied back out (k37_concat_take, k37_concat_take_2), the gradient's slices read in place by k30_relu_bwd_slice, k24_bn_bwd",
    );
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
