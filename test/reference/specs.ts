// The small specs the numerics tests build. Together they cover every layer kind and every conv/pool
// stride and pad of the shipped specs (conv 11×11 s4 p5, 5×5 p2, 3×3 p1, 1×1; maxpool 3/2/1; avgpool 7/1),
// plus non-square windows, odd spatial sizes and channel counts that are not multiples of 8.
import { readFileSync } from 'node:fs';

/** models/nin.model's layers (ninbn.lua) with few channels at a small, odd, non-square input. */
export const NIN_SMALL = `
model nin_small {
  input 3x69x67
  def block(nip, nop, kw, kh, dw, dh, pw, ph) {
    conv(nip, nop, kw, kh, dw, dh, pw, ph)  bn(nop, 1e-3)  relu
    conv(nop, nop, 1, 1, 1, 1, 0, 0)        bn(nop, 1e-3)  relu
    conv(nop, nop, 1, 1, 1, 1, 0, 0)        bn(nop, 1e-3)  relu
  }
  block(3, 5, 11, 11, 4, 4, 5, 5)    maxpool(3, 3, 2, 2, 1, 1)   # 5x18x17 -> 5x9x9
  block(5, 11, 5, 5, 1, 1, 2, 2)     maxpool(3, 3, 2, 2, 1, 1)   # 11x9x9 -> 11x5x5
  block(11, 13, 3, 3, 1, 1, 1, 1)    maxpool(3, 3, 2, 2, 1, 1)   # 13x5x5 -> 13x3x3
  block(13, 15, 3, 3, 1, 1, 1, 1)                                # 15x3x3
  avgpool(2, 2, 1, 1)  view(-1)  linear(60, 10)  logsoftmax      # 15x2x2
}
`;

/** models/nin-fashion.model's layers with few channels at an odd, non-square input; avgpool 7/1 gives 2x1. */
export const FASHION_ODD = `
model fashion_odd {
  input 1x29x27
  def block(nip, nop, k, pad) {
    conv(nip, nop, k, k, 1, 1, pad, pad)  bn(nop, 1e-3)  relu
    conv(nop, nop, 1, 1)                  bn(nop, 1e-3)  relu
    conv(nop, nop, 1, 1)                  bn(nop, 1e-3)  relu
  }
  block(1, 6, 5, 2)     maxpool(3, 3, 2, 2, 1, 1)     # 6x29x27 -> 6x15x14
  block(6, 10, 3, 1)    maxpool(3, 3, 2, 2, 1, 1)     # 10x15x14 -> 10x8x7
  block(10, 12, 3, 1)                                 # 12x8x7
  avgpool(7, 7, 1, 1)  view(-1)  linear(24, 7)  logsoftmax   # 12x2x1
}
`;

/** The layers and kernel variants the NIN specs do not reach: each line says which. */
export const ODDS_AND_ENDS = `
model odds_and_ends {
  input 4x15x13
  conv(4, 6, 3, 5, 1, 2, 1, 2)  relu          # 6x8x13: non-square kernel, stride and pad; conv+relu without BN
  maxpool(2, 2)                               # 6x4x6: stride defaults to the kernel, floor drops a column
  bn(6, 1e-5, 0.3)  relu                      # BN after a pool: the unfused eval kernel; momentum 0.3
  avgpool(3, 3, 2, 2, 1, 1)                   # 6x2x3: padded average, count_include_pad
  conv(6, 9, 1, 1)  bn(9, 1e-3)               # 9x2x3: 1x1 conv with BN folded and no ReLU
  maxpool(3, 2, 1, 2, 1, 0)                   # 9x1x3: non-square window, padding in W only, negative inputs
  conv(9, 4, 3, 1, 1, 1, 1, 0)                # 4x1x3: a conv with bias and nothing fused
  view(-1)  linear(12, 12)  relu  softmax     # linear+relu fused at inference; softmax mid-network
  linear(12, 5, 0)  logsoftmax                # no bias
}
`;

/** The shipped Fashion-MNIST spec itself (channels 32/64/128: the full-vector paths). */
export const NIN_FASHION = readFileSync(new URL('../../models/nin-fashion.model', import.meta.url), 'utf8');

/**
 * A tiny model with every layer kind, for finite differences: convs with stride and pad (the second one
 * non-square, so its backward-data runs), BN, ReLU, both pools, view, dropout (p = 0: the identity, so
 * the mask is known), linear, softmax in the middle, logsoftmax at the end.
 */
export const EVERY_LAYER = `
model every_layer {
  input 2x11x10
  conv(2, 3, 3, 3, 2, 2, 1, 1)  bn(3)  relu          # 3x6x5
  conv(3, 4, 3, 2, 1, 2, 1, 1)  bn(4, 1e-3)  relu    # 4x4x5
  maxpool(3, 3, 2, 2, 1, 1)                          # 4x2x3
  avgpool(2, 2, 1, 1)                                # 4x1x2
  view(-1)  dropout(0)  linear(8, 7)  relu  softmax  linear(7, 5, 0)  logsoftmax
}
`;

/** Dropout between two linears; with batch 1 the second linear's weight gradient reveals the mask. */
export const DROPOUT_MLP = `
model dropout_mlp {
  input 1x4x5
  view(-1)  linear(20, 48)  dropout(0.4)  linear(48, 6)  logsoftmax
}
`;

/** BN straight onto the input and then only a logsoftmax, so its outputs can be read back exactly. */
export const BN_PROBE = `
model bn_probe {
  input 2x3x3
  bn(2)  view(-1)  logsoftmax
}
`;

/**
 * Pooling made observable: a 1×1 conv picks one input channel (or mixes them), then max pooling 3/2/1 on
 * 8×8 (floor mode: 4×4, where ceil mode would give 5×5) and a padded average pool.
 */
export const POOL_PROBE = `
model pool_probe {
  input 2x8x8
  conv(2, 1, 1, 1)  maxpool(3, 3, 2, 2, 1, 1)  avgpool(3, 3, 2, 2, 1, 1)  view(-1)  logsoftmax
}
`;

/**
 * Torch7's zoo layers (issue #17) at odd sizes: LRN (a window wider than the channels too), Tanh, Sigmoid,
 * Threshold, Identity, zero padding that also crops, and pools in ceil mode: a window past the image, THNN's last-window correction of a
 * padded pool, and an average window cut by the far padding (its divisor counts only what lies inside).
 */
export const ZOO_LAYERS = `
model zoo_layers {
  input 3x11x9
  conv(3, 5, 3, 3, 1, 1, 1, 1)  lrn(3, 2, 0.75, 1)  tanh     # 5x11x9
  zeropad(-1, 1, 2, -2)                                      # 5x11x9: cropped left and bottom, zeros right and top
  maxpool(2, 2, 2, 2):ceil()                                 # 5x6x5: the last row and column windows stick out
  conv(5, 6, 1, 1)  threshold(0.1, -0.2)  lrn(7, 0.01, 0.5)  # 6x6x5: LRN's window wider than the 6 channels
  maxpool(2, 2, 2, 2, 1, 1):ceil()                           # 6x4x3: ceil gives 4x4, the correction drops a column
  sigmoid  identity
  avgpool(3, 3, 2, 2, 1, 1):ceil()                           # 6x3x2: the last windows cut by the far padding
  view(-1)  linear(36, 4)  logsoftmax
}
`;

/**
 * ZOO_LAYERS for the fused cuda/emu training program (lower/train-fused.ts): the same layers and ceil edge
 * cases, plus a pending BN+ReLU that LRN must have materialized, a residual add of three branches (two
 * with a pending BN, one with a pending BN+ReLU), a ceil average pool that applies a pending BN on load
 * and writes its partials in the backward (the last windows cut by the far padding), and a depthconcat
 * that centres a smaller map.
 */
export const ZOO_TRAIN = `
model zoo_train {
  input 3x11x9
  conv(3, 5, 3, 3, 1, 1, 1, 1)  bn(5)  relu  lrn(3, 2, 0.75, 1)  tanh   # 5x11x9
  zeropad(-1, 1, 2, -2)                                              # 5x11x9: cropped left and bottom, zeros right and top
  maxpool(2, 2, 2, 2):ceil()                                         # 5x6x5: the last row and column windows stick out
  conv(5, 6, 1, 1)  threshold(0.1, -0.2)  lrn(7, 0.01, 0.5)          # 6x6x5: LRN's window wider than the 6 channels
  maxpool(2, 2, 2, 2, 1, 1):ceil()                                   # 6x4x3: ceil gives 4x4, the correction drops a column
  sigmoid  identity
  residual {                                                         # three branches: two add_apply passes, the ReLU in the last
    branch { conv(6, 6, 1, 1)  bn(6) }
    branch { conv(6, 6, 3, 3, 1, 1, 1, 1)  bn(6)  relu }
    branch { identity }
  }
  relu  conv(6, 6, 1, 1)  bn(6)
  avgpool(3, 3, 2, 2, 1, 1):ceil()                                   # 6x3x2
  depthconcat {                                                      # 4x3x2: the 2x1 map centred (an extra row and column after it)
    branch { conv(6, 2, 1, 1) }
    branch { conv(6, 2, 2, 2) }
  }
  view(-1)  linear(24, 4)  logsoftmax
}
`;

/**
 * Residual and concat blocks: an identity shortcut, a strided projection shortcut (conv + BN), an
 * inception-like concat whose branches end in a conv, a ReLU, a pool and a nested residual block.
 */
export const BLOCKS = `
model blocks {
  input 3x9x7
  conv(3, 4, 3, 3, 1, 1, 1, 1)  bn(4)  relu                  # 4x9x7
  residual {
    branch { conv(4, 4, 3, 3, 1, 1, 1, 1)  bn(4)  relu  conv(4, 4, 3, 3, 1, 1, 1, 1)  bn(4) }
    branch { identity }
  }
  relu
  residual {                                                 # 6x5x4
    branch { conv(4, 6, 3, 3, 2, 2, 1, 1)  bn(6)  relu  conv(6, 6, 3, 3, 1, 1, 1, 1)  bn(6) }
    branch { conv(4, 6, 1, 1, 2, 2)  bn(6) }
  }
  relu
  concat {                                                   # 3 + 4 + 2 + 1 = 10 channels
    branch { conv(6, 3, 1, 1)  relu }
    branch { conv(6, 2, 1, 1)  relu  conv(2, 4, 3, 3, 1, 1, 1, 1)  relu }
    branch { zeropad(1, 1, 1, 1)  maxpool(3, 3, 1, 1)  conv(6, 2, 1, 1) }
    branch {
      residual {
        branch { conv(6, 6, 3, 3, 1, 1, 1, 1)  bn(6) }
        branch { identity }
      }
      tanh  conv(6, 1, 1, 1)
    }
  }
  avgpool(2, 2, 2, 2):ceil()  view(-1)  linear(10 * 3 * 2, 5)  logsoftmax
}
`;

/** A small ResNet: fb.resnet.torch's CIFAR-style stem and two basic blocks (the second with a projection shortcut) on 16×16. */
export const TINY_RESNET = `
model tiny_resnet {
  input 3x16x16
  def basic(n) {
    residual {
      branch { conv(n, n, 3, 3, 1, 1, 1, 1):noBias()  bn(n)  relu  conv(n, n, 3, 3, 1, 1, 1, 1):noBias()  bn(n) }
      branch { identity }
    }
    relu
  }
  def down(nIn, n) {
    residual {
      branch { conv(nIn, n, 3, 3, 2, 2, 1, 1):noBias()  bn(n)  relu  conv(n, n, 3, 3, 1, 1, 1, 1):noBias()  bn(n) }
      branch { conv(nIn, n, 1, 1, 2, 2):noBias()  bn(n) }
    }
    relu
  }
  conv(3, 8, 3, 3, 1, 1, 1, 1):noBias()  bn(8)  relu   # 8x16x16
  basic(8)                                             # 8x16x16
  down(8, 12)                                          # 12x8x8
  avgpool(8, 8, 1, 1)  view(12)  linear(12, 10)  logsoftmax
}
`;

/**
 * Residual adds that only an average pool reads, which the fused training program leaves to the pool (the sum
 * never stored: avgpool_add_fwd/_bwd): an identity shortcut (plain data) with the block's ReLU under padded,
 * overlapping windows; then ends with a pending BN+ReLU and a pending ReLU alone, no ReLU after the add, under ceil-mode windows.
 */
export const POOLED_ADDS = `
model pooled_adds {
  input 3x6x5
  conv(3, 4, 3, 3, 1, 1, 1, 1)  bn(4)  relu                  # 4x6x5, read by both branches: materialized
  residual {
    branch { conv(4, 4, 3, 3, 1, 1, 1, 1)  bn(4) }
    branch { identity }
  }
  relu
  avgpool(3, 3, 2, 2, 1, 1)                                  # 4x3x3
  residual {
    branch { conv(4, 4, 1, 1)  bn(4)  relu }
    branch { conv(4, 4, 1, 1)  relu }
  }
  avgpool(2, 2, 2, 2):ceil()                                 # 4x2x2
  view(-1)  linear(4 * 2 * 2, 5)  logsoftmax
}
`;

/**
 * Blocks as the fused cuda/emu training program takes them (no zoo layers): a fanned-out value with a
 * pending BN+ReLU (materialized once for its readers), a residual block of three branches, branches ending in a pending BN, a concat whose
 * branches end in a pending BN+ReLU, a pending ReLU, a pool's conv and a nested residual block, and a pool reading a block's output.
 */
export const FUSED_BLOCKS = `
model fused_blocks {
  input 3x9x7
  conv(3, 4, 3, 3, 1, 1, 1, 1)  bn(4)  relu                  # 4x9x7, pending BN+ReLU read by three branches
  residual {                                                 # three branches: two adds
    branch { conv(4, 4, 3, 3, 1, 1, 1, 1)  bn(4)  relu  conv(4, 4, 3, 3, 1, 1, 1, 1)  bn(4) }
    branch { identity }
    branch { conv(4, 4, 1, 1)  bn(4) }
  }
  relu
  residual {                                                 # 6x5x4
    branch { conv(4, 6, 3, 3, 2, 2, 1, 1)  bn(6)  relu  conv(6, 6, 3, 3, 1, 1, 1, 1)  bn(6) }
    branch { conv(4, 6, 1, 1, 2, 2)  bn(6) }
  }
  relu
  concat {                                                   # 3 + 4 + 2 + 6 = 15 channels
    branch { conv(6, 3, 1, 1)  bn(3)  relu }                 # ends in a pending BN+ReLU: applied as it is placed
    branch { conv(6, 2, 1, 1)  bn(2)  relu  conv(2, 4, 3, 3, 1, 1, 1, 1)  relu }
    branch { maxpool(3, 3, 1, 1, 1, 1)  conv(6, 2, 1, 1) }
    branch {
      residual {
        branch { conv(6, 6, 3, 3, 1, 1, 1, 1)  bn(6) }
        branch { identity }
      }
    }
  }
  maxpool(2, 2)  view(-1)  linear(15 * 2 * 2, 5)  logsoftmax
}
`;

/**
 * Concat branch ends that cpu training writes into their slices of the concat's output, their backward reading
 * the gradient's slices there (lower/train.ts concatSlots), beyond fused_blocks' ReLU and BN+ReLU: a BN without a
 * ReLU, a Tanh, GoogLeNet's incReduce max pool (zero padding, then a ceil-mode pool), an average pool, and two
 * convs (their backward-data the Winograd and the pointwise path, runtime/include/nincc/cpu/conv.h).
 */
export const CONCAT_ENDS = `
model concat_ends {
  input 3x6x5
  conv(3, 4, 3, 3, 1, 1, 1, 1)  relu                         # 4x6x5, read by every branch
  concat {                                                   # 2 + 3 + 4 + 4 + 3 + 2 = 18 channels
    branch { conv(4, 2, 1, 1)  bn(2) }
    branch { conv(4, 3, 1, 1)  tanh }
    branch { zeropad(1, 1, 1, 1)  maxpool(3, 3, 1, 1):ceil() }
    branch { avgpool(3, 3, 1, 1, 1, 1) }
    branch { conv(4, 3, 3, 3, 1, 1, 1, 1) }
    branch { conv(4, 2, 1, 1) }
  }
  maxpool(2, 2)  view(-1)  linear(18 * 3 * 2, 5)  logsoftmax
}
`;

/**
 * Blocks whose fused inference convs take the cpu's Winograd path (3x3/1 on 14x14, compiler/schedule/
 * cpu-conv-algorithm.ts) and its GEMM path: a projection residual closed by a Winograd conv, an identity
 * residual closed by a 1x1 conv, and a concat whose branches' convs (one Winograd, at channel offset 8)
 * write their slices in place (lower/infer.ts).
 */
export const BLOCK_FUSION = `
model block_fusion {
  input 32x14x14
  residual {
    branch { conv(32, 64, 1, 1):noBias()  bn(64) }
    branch { conv(32, 64, 3, 3, 1, 1, 1, 1):noBias()  bn(64) }
  }
  relu
  residual {
    branch { conv(64, 64, 1, 1):noBias()  bn(64) }
    branch { identity }
  }
  relu
  concat {
    branch { conv(64, 8, 1, 1)  relu }
    branch { conv(64, 96, 3, 3, 1, 1, 1, 1)  bn(96)  relu }
  }
  avgpool(14, 14)  view(-1)  linear(104, 3)  logsoftmax
}
`;

/** A small trainable model for the API tests (api-calls, model-update, staged-input: one kernel build between them). */
export const API_CALLS = `model calls {
  input 2x6x6
  conv(2, 4, 3, 3, 1, 1, 1, 1) bn(4) relu maxpool(2, 2)
  view(-1) linear(36, 5) logsoftmax
}
train {
  batch 4  epochs 1  criterion nll
  optimizer sgd { momentum 0.5 }
  regime { epochs 1..1  lr 1e-1  wd 5e-4 }
}
`;

/**
 * Residual blocks whose output a stride-1, same-size conv reads first (lower/train-fused.ts addInNextConv): an identity
 * block read by a 3x3 conv, a projection block (both ends with a pending BN) read by a 1x1 conv of 36 channels (two
 * output-channel tiles: only the first stores the sum), then a block read first by a strided conv (an add_apply pass
 * still) and a last block that the average pool adds. Odd planes (7x5, 4x3) leave partial position tiles.
 */
export const ADD_IN_NEXT_CONV = `
model add_in_next_conv {
  input 3x7x5
  conv(3, 4, 3, 3, 1, 1, 1, 1):noBias()  bn(4)  relu          # 4x7x5
  residual {
    branch { conv(4, 4, 3, 3, 1, 1, 1, 1):noBias()  bn(4)  relu  conv(4, 4, 3, 3, 1, 1, 1, 1):noBias()  bn(4) }
    branch { identity }
  }
  relu
  residual {                                                  # read first by its 3x3: the add above in its prologue
    branch { conv(4, 6, 3, 3, 1, 1, 1, 1)  bn(6)  relu  conv(6, 6, 3, 3, 1, 1, 1, 1):noBias()  bn(6) }
    branch { conv(4, 6, 1, 1):noBias()  bn(6) }
  }
  relu
  residual {                                                  # read first by its 1x1 of 36 channels
    branch { conv(6, 36, 1, 1):noBias()  bn(36)  relu  conv(36, 6, 3, 3, 1, 1, 1, 1):noBias()  bn(6) }
    branch { identity }
  }
  relu
  residual {                                                  # 8x4x3, read first by a strided conv: add_apply
    branch { conv(6, 8, 3, 3, 2, 2, 1, 1):noBias()  bn(8)  relu  conv(8, 8, 3, 3, 1, 1, 1, 1):noBias()  bn(8) }
    branch { conv(6, 8, 1, 1, 2, 2):noBias()  bn(8) }
  }
  relu
  avgpool(3, 4, 1, 1)  view(8)  linear(8, 5)  logsoftmax
}
`;
