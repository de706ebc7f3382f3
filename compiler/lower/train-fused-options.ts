// The options of the cuda/emu training lowering (train-fused.ts): how the fused program's forward and backward are
// arranged, each a switch pipeline.ts sets from compiler/ablations.ts, and the channel rule of the rebuild pass.
import type { ShapedLayer } from '../ir.js';
import type { OpConsts } from './ops.js';

/**
 * The input channels from which a 1×1 conv gets the rebuild pass too. Its two gradient kernels re-read
 * y (the fused rebuild's input) once per tile of input channels (the weight gradient's M, the data
 * gradient's N), while the pass reads g and y and writes dY' once: NIN at batch 128 gains on the 1×1
 * convs of 256, 384 and 1024 channels and loses on those of 96, where one or two tiles cover C
 * (bench/logs/profile-nin-h100-b128-bf16-rebuild-per-thread.out; a 96-channel one: 160.9 µs of pass for
 * 144.9 off its gradients, bench/logs/profile-nin-block1-h100-b128-bf16-1x1-pass-96.out against -128.out).
 */
export const REBUILD_1X1_MIN_CHANNELS = 128;

/** How the fused program's backward is arranged; each field absent means off. */
export interface FusedTrainOptions {
  /**
   * A conv wider than 1×1, or a 1×1 of REBUILD_1X1_MIN_CHANNELS input channels or more, with a data
   * gradient, whose output has a pending BN, reads its gradient rebuilt
   * (dReLU·dBN) by one grad_rebuild pass, not rebuilt in its gradient kernels' staging: the bf16 tensor-core
   * data gradient stages each element once per tap (R·S times), and the rebuild re-read y and seven channel
   * parameters each time. The values staged are the same floats (the same arithmetic, parts.ts
   * rebuildGradient), so the gradients are bitwise unchanged. A conv with a weight gradient only (the stem)
   * keeps the fused rebuild, the pass costing more than it saves there (nin b128's stem: 294 µs of pass for
   * 66 µs off its weight gradient, bench/logs/profile-nin-h100-b128-bf16-rebuild-stem.out; a pass of that
   * plane still takes 160.9 µs at 8 elements per thread, -block1-…-1x1-pass-96.out; with the stem wgrad's input
   * halo, 90.6 µs of pass for 61.8 off it, bench/logs/i15B-profile-stem-rebuild-pass.out); so does a 1×1
   * conv with fewer than REBUILD_1X1_MIN_CHANNELS input channels.
   */
  readonly rebuildPass?: boolean;
  /**
   * The bf16 tensor-core forward and data gradient of a k×k conv (R·S > 1; not a uint8 stem, whose forward
   * is the fp32 kernel) stage B from a conv_weight_bf16 copy of the weights, written by a step before each:
   * 16-byte loads of bf16 in the slice order, a quarter of the fp32 gather's sectors where R·S floats per
   * channel leave 8-float loads unaligned (the data gradient), half where they are aligned (the forward).
   * The same values are rounded the same way, so the outputs are bitwise unchanged.
   */
  readonly bf16Weights?: boolean;
  /**
   * With rebuildPass, the pass before a conv's gradients stores dY' rounded to bf16 (half the bytes written
   * and read twice): that conv's bf16 tensor-core data and weight gradients are its only readers, and they
   * round it to bf16 as they stage it anyway (round-to-nearest is idempotent), so dX and dW are bitwise
   * unchanged. The conv's bias gradient, summed in fp32 from the staged values before rounding, is then
   * summed from the rounded ones: off by at most 2⁻⁸·Σ|dY'| (a BN follows such a conv, so it is ≈ 0 anyway).
   */
  readonly bf16Rebuilt?: boolean;
  /**
   * With bf16Rebuilt, no pass before a 1×1 conv: its bf16 weight gradient (which runs first) rebuilds dY' in its B staging, as
   * it would without the pass, and the blocks of its first row tile (blockIdx.x 0: every output channel and position
   * once) also store each staged value rounded to bf16 for the data gradient, which reads it as it read the pass's.
   * The rounding and the arithmetic are the pass's (parts.ts rebuildGradient), so dW and dX are bitwise unchanged; the
   * bias gradient is summed from the unrounded dY' again (as without bf16Rebuilt). It saves the pass's launch, its read
   * of g and y, and the weight gradient's read of what the pass wrote, for that kernel's reads of g and y once per row
   * tile and a write of dY' (NIN b128: k14/k17 −32 µs each, k24/k27 −8.7, k34/k37 +3.2/+9.0). A k×k conv keeps the pass: its weight gradient would rebuild each element once per
   * row tile of C·R·S (10 for a 5×5 of 96 channels), and the 5×5 of i15Z's block-2 spec lost 24 µs by it (bench/RESULTS.md i15Z).
   */
  readonly rebuildInWgrad?: boolean;
  /**
   * A max pool whose every reader is a conv stores its output rounded to bf16: a conv reads its input only in
   * its bf16 tensor-core forward and weight gradient, which round it as they stage it anyway, and the pool's
   * backward reads its argmax, not its output; so every result is bitwise unchanged, in half the bytes.
   */
  readonly bf16Pooled?: boolean;
  /**
   * A conv whose output y is read, through its BN and ReLU, only by one conv or pool (conv-out-bf16-readers.ts)
   * stores y rounded to bf16, and takes its BN statistics from the rounded values, as a bf16 PyTorch BN does
   * from the stored tensor: every reader (the BN/ReLU prologues, the pool, the gradient rebuild, the BN
   * partials) then sees one value, the stored one. Results change by that rounding (docs/design.md §4.1).
   */
  readonly bf16ConvOut?: boolean;
  /**
   * A conv's data gradient or a max pool's backward stores dX rounded to bf16 where dX is the gradient of a
   * value with a pending BN that a conv produced (not a uint8 stem, whose weight gradient is the fp32 kernel):
   * that conv's grad_rebuild pass or its gradient kernels widen each load and rebuild dY' from it in fp32; or of
   * a max pool's output that one layer reads: the pool's backward widens g as it stages it. Not bitwise: the
   * rebuild starts from the rounded dX, so dY' moves by at most |γ·invstd|·2⁻⁹·|dX| (before its own rounding);
   * the BN's Σdz, Σdz·x̂ partials are still summed from the unrounded values in the writer's epilogue. Half the
   * bytes written once and read once or twice (docs/design.md §4.1, bench/logs/i15w-*).
   */
  readonly bf16Gradients?: boolean;
  /**
   * A bf16 tensor-core weight gradient (not a uint8 stem's, which is the fp32 kernel) sums its batch splits
   * itself: the last split block of each output tile to finish (an integer ticket after a fence) adds the
   * tile's partials in split order, as wgrad_reduce does, so dW and the bias gradient are bitwise unchanged
   * and one launch a conv is gone (backends/cuda/conv-mma-last-cta-wgrad.ts, docs/design.md §5).
   */
  readonly wgradLastSplit?: boolean;
  /**
   * With wgradLastSplit, the split count of a folded weight gradient for the GPU the build is for, given its consts
   * at the default split count (which sizes the partials and is the most it may return): pipeline.ts asks
   * wgrad-splits-waves.ts. Another split count sums the batch's positions in another order, so dW's bits differ
   * between builds for different GPUs (each build is still bitwise repeatable). With it may come a smaller tile for
   * a grid too small for the GPU (`waveTile`, wgrad-tile-waves.ts), which leaves the order as it is, and the resident blocks
   * a SM the kernel's launch bounds ask for (`residentBlocks`: those the choice was made at). Absent: the default.
   */
  readonly wgradSplitsFor?: (layer: ShapedLayer, consts: OpConsts['conv_wgrad_fused']) => { readonly splits: number; readonly waveTile?: number; readonly residentBlocks?: number };
  /**
   * A tap-major k×k data gradient's split of its reduction for the GPU the build is for (backends/cuda/conv-mma-dgrad-splits.ts,
   * asked by pipeline.ts): the splits and one split's tiles and tile area, which size its partials and tickets; undefined:
   * one block a tile, as without it.
   */
  readonly dgradSplitsFor?: (consts: OpConsts['conv_dgrad_fused']) => { readonly splits: number; readonly tiles: number; readonly area: number } | undefined;
  /**
   * With wgradSplitsFor, a few-channels strided stem's bf16 weight gradient (NIN's 11×11/4 on 3 channels: 3 output tiles,
   * whose 32 splits make 96 blocks for an H100's 132 SMs) takes up to the batch's splits, as many as wgradSplitsFor says
   * fill the GPU's waves, and leaves them to a wgrad_reduce launch, which spreads their sum over the GPU: folded, the last
   * split block of each tile would read all its tile's partials alone (NIN's 88 splits: 4.3 MB, some 56 µs at one SM's
   * share of the L2, a tail the time model does not see: bench/gpu/conv-mma-last-cta-bn-tail-estimate.ts's reckoning).
   * The partials stay in split order: dW is bitwise a build's with the same split count.
   */
  readonly stemWaveSplits?: boolean;
  /**
   * A two-branch residual add whose first reader is a conv that reaches every input element once at one tap (stride 1,
   * the input's size: backends/cuda/conv.ts centreTapCoversInput) has no add_apply pass: that conv's forward computes its
   * input relu?(a' + b') from the two branch ends as it loads them (add_apply's arithmetic: the same bits) and the blocks
   * of its first output-channel tile store the sum, which the value's other readers and the backward read as before.
   * The fp32 SIMT forward only (conv.ts); the backward's add_bwd_fused pass stays (docs/design.md §4).
   */
  readonly addInNextConv?: boolean;
  /**
   * addInNextConv for the adds whose first reader is a 1×1 conv only (R·S = 1): its SIMT forward loads each input element
   * once per output-channel tile, a k×k one R·S times, so the sum costs the 1×1 the least (docs/design.md §4). fp32 and
   * bf16: the tensor-core forward (conv-mma.ts) sums the ends in its per-slice gather of A, before rounding to bf16.
   */
  readonly addInNextPointwiseConv?: boolean;
  /**
   * A two-branch residual add whose first reader is a conv has no add_bwd_fused pass: that conv's data gradient, the
   * last of the add output's gradients to be produced (its g_add sums the others'), masks its dX by the block's ReLU
   * as it stores it (dz, both ends' gradient) and writes the ends' BN partials (add_bwd_fused's arithmetic: the same
   * bits). The fp32 SIMT data gradient (conv.ts) and the bf16 tensor-core one (conv-mma-add-bwd.ts); any conv reader,
   * strided or not, split or not (docs/design.md §4).
   */
  readonly addBwdInDgrad?: boolean;
}
