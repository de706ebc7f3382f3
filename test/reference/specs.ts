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
