// Issue #17's layers and blocks on the cpu device against the float64 reference, on all threads
// (test/reference/zoo-suite.ts); on the same builds, their ONNX export against onnxruntime (test/reference/onnx-zoo.ts)
// and the Torch7 import of a ResNet (test/reference/t7-resnet-check.ts); what report.txt says of the blocks
// (made without compiling).
import { describe, expect, it } from 'vitest';
import { reportOnly } from './reference/report-only.js';
import { BLOCKS, TINY_RESNET } from './reference/specs.js';
import { onnxZooChecks } from './reference/onnx-zoo.js';
import { t7ResNetCheck } from './reference/t7-resnet-check.js';
import { zooSuite } from './reference/zoo-suite.js';

const builds = zooSuite('all threads');
onnxZooChecks(builds);
t7ResNetCheck(builds);

describe('report.txt of a model with blocks', () => {
  it('prints the Torch7 tree and, per block, its merge, kernels and fused ReLU; the gradient sums of fanned-out values', () => {
    const { report } = reportOnly('tiny_resnet_report', TINY_RESNET, 'cpu', 2);
    expect(report).toContain('  (4): nn.ConcatTable {\n    input\n      |`-> (1): nn.Sequential {');
    expect(report).toContain([
      '  (10) nn.CAddTable of (8) + (9): the residual block at tiny_resnet_report.model:5:5 in basic(8) at line 19',
      '      training: add fused into the BN pass k8_bn_fwd_train (the BN (8) closing its branch, then the ReLU (11)); the backward passes the gradient to each branch unchanged',
      '      inference: add fused into k7_conv_infer epilogue (the conv (7) closing its branch; the shortcut (3) added, then the ReLU (11))',
    ].join('\n'));
    expect(report).toContain("  gradient sums of fanned-out values in a conv's backward-data pass (no add kernel): k12_conv_bwd_data, k4_conv_bwd_data");
    expect(report).not.toContain('  gradient sums of fanned-out values: ');
    expect(report).toContain(' + nn.SpatialBatchNormalization + nn.CAddTable + nn.ReLU → k17_conv_infer');
    expect(report).not.toContain('add_infer');
    const { report: blocks } = reportOnly('blocks_report', BLOCKS, 'cpu', 2);
    expect(blocks).toMatch(/^ {2}\(\d+\) nn\.Concat\(2\) of \(\d+\), \(\d+\), \(\d+\), \(\d+\) along channels: the concat block at blocks_report\.model:15:3$/m);
    expect(blocks).toContain('  gradient sums of fanned-out values: k20_add (the output of layer 20)');
    // Every branch writes its slice in place (lower/train.ts concatSlots): two ReLUs, the pool's conv and the block's closing conv.
    expect(blocks).toContain(
      "      training: 4 branch ends written into their channel slices by their own pass (k22_relu_fwd_slice, k26_relu_fwd_slice, k29_conv_fwd_slice, k35_conv_fwd_slice: no copy), the gradient's slices read in place by k35_conv_bwd_weight_slice, k35_conv_bwd_data_slice, k29_conv_bwd_weight_slice, k29_conv_bwd_data_slice, k26_relu_bwd_slice, k22_relu_bwd_slice\n",
    );
    expect(blocks).toContain('  concats with no copy in training: 1 of 1\n');
    expect(blocks).toContain("      inference: concat in place, each branch's closing conv writing its channel slice: (22) by k21_conv_infer, (26) by k25_conv_infer, (29) by k29_conv_infer, (35) by k35_conv_infer");
  });
});
