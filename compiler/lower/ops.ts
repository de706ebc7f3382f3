// The typed contract of every kernel op: its constants (names and types) and its buffers (name, direction,
// dtype, size rule) in kernel-argument order. Lowering builds steps from it (program-builder.ts), the
// program verifier checks every step against it (verify-program.ts), and both renderers read its names.
import { convPackedWeightsFloats } from '../schedule/cpu-conv-algorithm.js';
import { s2dStem } from '../backends/cuda/conv-mma-stem-s2d.js';

/**
 * A constant's type: a non-negative integer (a shape), any finite number (eps, p, momentum), a flag, a list of
 * finite numbers (per-channel mean/std); `?`: optional.
 */
type ConstType = 'int' | 'num' | 'bool' | 'bool?' | 'int?' | 'nums?';
type ConstSchema = Readonly<Record<string, ConstType>>;

/** The constants record a schema describes: `int`/`num` → number, `bool` → boolean; `bool?`/`int?` → optional. */
type Optional = 'bool?' | 'int?' | 'nums?';
type ConstsOf<S extends ConstSchema> = { readonly [k in keyof S as S[k] extends Optional ? never : k]: S[k] extends 'bool' ? boolean : number } & {
  readonly [k in keyof S as S[k] extends Optional ? k : never]?: S[k] extends 'bool?' ? boolean : S[k] extends 'nums?' ? readonly number[] : number;
};

// Constant groups the op families share (the kernels' names: C×H×W in, K×P×Q out, R×S window).
const spatial = { C: 'int', H: 'int', W: 'int', K: 'int', P: 'int', Q: 'int', R: 'int', S: 'int', sh: 'int', sw: 'int', ph: 'int', pw: 'int' } as const;
const channels = { C: 'int', HW: 'int' } as const;
const dense = { in: 'int', out: 'int' } as const;
/** The fused training program's flags (lower/train-fused.ts): the input's pending BN/ReLU applied on load … */
const inFlags = { inBn: 'bool', inRelu: 'bool' } as const;
/** … the incoming gradient rebuilt from the gradient of a pending value … */
const gradFlags = { gBn: 'bool', gRelu: 'bool' } as const;
/** … and the Σdz, Σdz·x̂ partials of the pending BN of the value whose gradient the kernel writes. */
const outFlags = { outStats: 'bool', outRelu: 'bool' } as const;
/**
 * A conv output stored in bf16 (lower/train-fused.ts bf16ConvOut) read by a gradient kernel: as g_y, the raw
 * value its prologue rebuilds the gradient from, or as e_y, the one its epilogue's BN partials read.
 */
const rawBf16 = { gyBf16: 'bool?', eyBf16: 'bool?' } as const;

/** A residual add's two branch ends: each one's pending BN (scale/shift) and ReLU, applied on load. */
const endFlags = { aBn: 'bool', aRelu: 'bool', bBn: 'bool', bRelu: 'bool' } as const;
/**
 * A training conv whose input is a residual block's output computed as it loads (lower/train-fused.ts addInNextConv):
 * x = relu?(xa' + xb'), each end xa, xb with its pending BN (aBn, bBn) and ReLU (aRelu, bRelu) applied, sumRelu the
 * block's ReLU; the blocks of its first output-channel tile store x in x_out for the value's other readers.
 */
const sumOnLoad = { sumInput: 'bool?', aBn: 'bool?', aRelu: 'bool?', bBn: 'bool?', bRelu: 'bool?', sumRelu: 'bool?' } as const;
/**
 * A training conv's data gradient that also does the backward of the residual add its input is (lower/train-fused.ts
 * addBwdInDgrad), its dx the add's last gradient: as add_bwd_fused's relu (here sumRelu), aStats, aRelu, bStats, bRelu.
 */
const addBackward = { addBwd: 'bool?', sumRelu: 'bool?', aStats: 'bool?', aRelu: 'bool?', bStats: 'bool?', bRelu: 'bool?' } as const;

/** A pool's shape; `ceil`: Torch's ceil-mode windows (P×Q is the compiler's; absent: floor). */
const pool = { ...spatial, ceil: 'bool?' } as const;
/** nn.SpatialCrossMapLRN's window and coefficients over C channels of HW positions. */
const lrn = { ...channels, size: 'int', alpha: 'num', beta: 'num', k: 'num' } as const;
/** nn.SpatialZeroPadding: C×H×W in, C×P×Q out, input (0, 0) at output (top, left); negative offsets crop. */
const pad = { C: 'int', H: 'int', W: 'int', P: 'int', Q: 'int', top: 'num', left: 'num' } as const;
/** A branch's C channels at `offset` of the `total` channels of a concat's output, HW positions each. */
const slice = { C: 'int', HW: 'int', total: 'int', offset: 'int' } as const;

/**
 * Where an inference conv's output goes (the blocks of lower/infer.ts): `residual`, a shortcut buffer `r`
 * added in the epilogue before the ReLU; `yTotal`/`yOffset`, channels yOffset… of a yTotal-channel
 * buffer (a concat's output, written in place). Absent: no shortcut, the conv's own K channels.
 */
const convOutput = { residual: 'bool?', yTotal: 'int?', yOffset: 'int?' } as const;
/**
 * A cpu training conv ending a concat's branch (lower/train.ts concatSlots): its y lies at channels yOffset… of a
 * yTotal-channel buffer, the concat's output, and its backward reads its gradient g there (the concat's gradient).
 */
const convSlot = { yTotal: 'int?', yOffset: 'int?' } as const;

/**
 * A cpu training BN (+ReLU) or pool ending a concat's branch (lower/train.ts concatSlots): its y (and, backward, g
 * and y) lie at channels outOffset… of an outTotal-channel buffer, the concat's output and its gradient. Absent:
 * the layer's own channels.
 */
const endOutput = { outTotal: 'int?', outOffset: 'int?' } as const;

/**
 * A stem conv that reads the model's uint8 NHWC images (the plan's `input`, docs/artifact.md): given, its `x`
 * is a u8 buffer and each value v is loaded as (v/255 − u8Mean[c])/u8Std[c], the loader's float (runtime/imagenet/donkey.ts).
 */
const u8Input = { u8Mean: 'nums?', u8Std: 'nums?' } as const;

const constSchemas = {
  // bnMoments: the cpu training's conv records the per-tile sums its BN takes its statistics from (bn_moments), read by that bn_fwd_train's `moments` (convMoments).
  conv_fwd: { ...spatial, bias: 'bool', relu: 'bool', bnMoments: 'bool?', ...convSlot, ...u8Input },
  // addend: dx also sums another reader's gradient of the same input (g_add), as conv_dgrad_fused's.
  conv_bwd_data: { ...spatial, bias: 'bool', addend: 'bool?', ...convSlot },
  // burstPrefetch: the cpuWgradSpreadPrefetch ablation (the 1x1 form's prefetches in one burst per tile product; conv_wgrad_1x1.h).
  conv_bwd_weight: { ...spatial, bias: 'bool', ...convSlot, ...u8Input, burstPrefetch: 'bool?' },
  // bf16w: the bf16 tensor-core kernel stages its (folded) weights from a conv_weight_bf16 copy `wb` made by the prepare program (lower/infer.ts).
  conv_infer: { ...spatial, bias: 'bool', relu: 'bool', bnFolded: 'bool', packed: 'bool?', maxBatch: 'int?', l3Bytes: 'int?', winogradFullTiles: 'bool?', wideTails: 'bool?', gatheredPointwise: 'bool?', lastTileWeightPrefetch: 'bool?', ...convOutput, ...u8Input, bf16w: 'bool?' },
  fold_bn: { ...spatial, CRS: 'int', eps: 'num', bias: 'bool', packed: 'bool', maxBatch: 'int?', l3Bytes: 'int?' },
  // residual: the cpu training's add of a residual block whose branch this BN closes (r), relu: the block's ReLU after it.
  // twoPassStats: the cpuBnOnePassStats ablation (the batch statistics in two passes over x; batchnorm.h channel_moments).
  bn_fwd_train: { ...channels, eps: 'num', momentum: 'num', residual: 'bool?', relu: 'bool?', twoPassStats: 'bool?', convMoments: 'bool?', ...endOutput },
  bn_bwd: { ...channels, eps: 'num', momentum: 'num', relu: 'bool?', ...endOutput },
  // A BN+ReLU's backward taking the backward of the max pool that alone reads it (C = K channels, the pool's shape;
  // lower/train.ts pooledBnBackward, runtime/include/nincc/cpu/bn_pool_backward.h).
  bn_relu_maxpool_bwd: pool,
  bn_eval: { ...channels, eps: 'num' },
  relu_fwd: { count: 'int' },
  relu_bwd: { count: 'int' },
  // A ReLU ending a concat's branch in the cpu training program: it writes its slice of the concat's output y,
  // and its backward reads y and the gradient g there (lower/train.ts), so no concat_place/concat_take copies.
  relu_fwd_slice: slice,
  relu_bwd_slice: slice,
  // The same for a Tanh (y read by its backward as relu_bwd_slice's).
  tanh_fwd_slice: slice,
  tanh_bwd_slice: slice,
  maxpool_fwd: { ...pool, ...endOutput },
  // ruledMax: the cpuPlainMaxPool ablation; unfetchedRows: the poolRowPrefetch ablation (pool.h plane_max_two_pass).
  maxpool_fwd_infer: { ...pool, ruledMax: 'bool?', unfetchedRows: 'bool?' },
  // A cpu inference block's two folded 1x1 convs (C -> K, K -> K on H×W, each with its ReLU) as one banded region
  // (schedule/cpu-pointwise-pair-region.ts). w1Floats, w2Floats: the packed weights' sizes, as the fold wrote them.
  pointwise_pair_infer: { C: 'int', H: 'int', W: 'int', K: 'int', w1Floats: 'int', w2Floats: 'int', maxBatch: 'int?', l3Bytes: 'int?' },
  // A cpu inference block (a k×k conv C×H×W -> K×P×Q, two 1x1 convs K -> K, each with its folded BN and ReLU, then a
  // max pool over K×P×Q to K×MP×MQ, its window mR×mS, strides msh, msw, padding mph, mpw) as one region in bands of
  // output rows (schedule/cpu-block-bands.ts). w0Floats..w2Floats: the packed weights' sizes; the rest as conv_infer's
  // and maxpool_fwd_infer's flags.
  block_band_infer: {
    ...spatial, MP: 'int', MQ: 'int', mR: 'int', mS: 'int', msh: 'int', msw: 'int', mph: 'int', mpw: 'int',
    w0Floats: 'int', w1Floats: 'int', w2Floats: 'int', maxBatch: 'int?', l3Bytes: 'int?',
    winogradFullTiles: 'bool?', wideTails: 'bool?', gatheredPointwise: 'bool?', lastTileWeightPrefetch: 'bool?', ruledMax: 'bool?', unfetchedRows: 'bool?',
  },
  maxpool_bwd: { ...pool, ...endOutput },
  avgpool_fwd: { ...pool, ...endOutput },
  avgpool_bwd: { ...pool, ...endOutput },
  tanh_fwd: { count: 'int' },
  tanh_bwd: { count: 'int' },
  sigmoid_fwd: { count: 'int' },
  sigmoid_bwd: { count: 'int' },
  threshold_fwd: { count: 'int', th: 'num', v: 'num' },
  threshold_bwd: { count: 'int', th: 'num' },
  lrn_fwd: lrn,
  lrn_bwd: lrn,
  zeropad_fwd: pad,
  zeropad_bwd: pad,
  add: { count: 'int', relu: 'bool' },
  add_infer: { count: 'int', relu: 'bool' },
  concat_place: slice,
  concat_take: slice,
  linear_fwd: { ...dense, bias: 'bool', relu: 'bool' },
  linear_infer: { ...dense, bias: 'bool', relu: 'bool', bnFolded: 'bool' },
  linear_bwd_data: { ...dense, bias: 'bool' },
  linear_bwd_weight: { ...dense, bias: 'bool' },
  logsoftmax_fwd: { classes: 'int' },
  logsoftmax_bwd: { classes: 'int' },
  softmax_fwd: { classes: 'int' },
  softmax_bwd: { classes: 'int' },
  dropout_fwd: { count: 'int', p: 'num' },
  dropout_bwd: { count: 'int', p: 'num' },
  nll_loss: { classes: 'int' },
  // skip: [offset, size] pairs of the parameter space another step updates (an sgd_conv_bf16), in order.
  sgd_update: { count: 'int', skip: 'nums?' },
  // The SGD update of one k×k conv's weights that also writes their bf16 copies (backends/cuda/sgd-weight-bf16.ts):
  // forward, dgrad: each copy's k order (WEIGHT_COPY_ORDERS: 0 none, then the reader's layout, conv-weight-bf16.ts).
  sgd_conv_bf16: { ...spatial, forward: 'int', dgrad: 'int' },
  // bf16w: the bf16 tensor-core kernel stages its weights from a conv_weight_bf16 copy `wb` (compiler/backends/cuda/conv-weight-bf16.ts).
  // yBf16: y is stored rounded to bf16, its statistics taken from the rounded values (lower/train-fused.ts bf16ConvOut).
  conv_fwd_fused: { ...spatial, bias: 'bool', ...inFlags, stats: 'bool', ...u8Input, bf16w: 'bool?', xBf16: 'bool?', yBf16: 'bool?', ...sumOnLoad },
  // addend: dx also sums another reader's gradient of the same input (g_add), a fanned-out value's sum in the epilogue.
  // dxBf16: dx is stored rounded to bf16, for the gradient kernels or grad_rebuild pass of the conv before a BN (lower/train-fused.ts bf16Gradients).
  // splits, splitTiles: a tap-major data gradient's reduction over K's 32-channel groups in that many splits of `splitTiles`
  // output tiles each, summed in split order by the last split block of each tile (backends/cuda/conv-mma-dgrad-splits.ts).
  conv_dgrad_fused: { ...spatial, bias: 'bool', ...gradFlags, ...outFlags, addend: 'bool?', bf16w: 'bool?', gBf16: 'bool?', dxBf16: 'bool?', ...rawBf16, splits: 'int?', splitTiles: 'int?', splitArea: 'int?', ...addBackward },
  // A conv's weights rounded to bf16 in the staged slice order of its forward (dgrad false) or data gradient's B operand;
  // gBn: that data gradient rebuilds dY' itself from a shared table (no grad_rebuild pass before it).
  conv_weight_bf16: { ...spatial, dgrad: 'bool', gBn: 'bool?' },
  // lastSplit: the last split block of each tile sums the splits into dw and db itself, no wgrad_reduce (lower/train-fused.ts wgradLastSplit).
  // waveTile: a 1×1 bf16 weight gradient takes that smaller tile (backends/cuda/conv-mma-wgrad-wave-tiles.ts), chosen by the GPU's waves (lower/wgrad-tile-waves.ts).
  // waveSplits: a stem's splits chosen for the GPU's waves though a wgrad_reduce sums them (lower/train-fused.ts stemWaveSplits).
  // residentBlocks: its splits were chosen at that many blocks a SM by ptxas (schedule/wgrad-gpu-choice.ts), which its launch bounds then ask of every arch.
  // dyOut: the dY' it rebuilds is also stored, rounded to bf16, in dy_raw for the data gradient (lower/train-fused.ts rebuildInWgrad).
  conv_wgrad_fused: { ...spatial, bias: 'bool', ...gradFlags, ...inFlags, splits: 'int', ...u8Input, gBf16: 'bool?', xBf16: 'bool?', gyBf16: 'bool?', lastSplit: 'bool?', waveSplits: 'bool?', waveTile: 'int?', residentBlocks: 'int?', dyOut: 'bool?' },
  wgrad_reduce: { count: 'int', K: 'int', bias: 'bool', splits: 'int' },
  bn_stats: channels,
  bn_finalize: { ...channels, eps: 'num', momentum: 'num' },
  bn_bwd_finalize: channels,
  act_apply: { ...channels, ...inFlags },
  // concat_place of a branch end with its pending BN/ReLU, if any, applied on the way (the fused training program).
  concat_apply: { ...slice, ...inFlags },
  // concat_take of a branch end with a pending BN, and that BN's Σdz, Σdz·x̂ partials of the slice, in one pass.
  concat_take_stats: { ...slice, outRelu: 'bool' },
  add_apply: { ...channels, ...endFlags, relu: 'bool' },
  add_bwd_fused: { ...channels, relu: 'bool', aStats: 'bool', aRelu: 'bool', bStats: 'bool', bRelu: 'bool' },
  act_bwd_stats: { ...channels, outRelu: 'bool' },
  // bf16: dx is stored rounded to bf16, for readers that round it so when they stage it anyway (lower/train-fused.ts).
  // gBf16: g is a data gradient stored in bf16 (conv_dgrad_fused dxBf16).
  grad_rebuild: { ...channels, ...gradFlags, bf16: 'bool?', gBf16: 'bool?', gyBf16: 'bool?' },
  // bf16: y is stored rounded to bf16, for conv readers that round it so when they stage it anyway (lower/train-fused.ts).
  // xBf16: x is a conv's output stored in bf16 (bf16ConvOut), widened on load.
  maxpool_fwd_fused: { ...pool, ...inFlags, bf16: 'bool?', xBf16: 'bool?' },
  avgpool_fwd_fused: { ...pool, ...inFlags, xBf16: 'bool?' },
  // gBf16, dxBf16: g (a conv's data gradient) and dx stored in bf16 (lower/train-fused.ts bf16Gradients); the average pool's never are.
  maxpool_bwd_fused: { ...pool, ...outFlags, gBf16: 'bool?', dxBf16: 'bool?', eyBf16: 'bool?' },
  avgpool_bwd_fused: { ...pool, ...outFlags, gBf16: 'bool?', dxBf16: 'bool?', eyBf16: 'bool?' },
  // A residual add that only an average pool reads (a ResNet's last block), done inside the pool: a, b its branch
  // ends with their pending BN/ReLU, relu the block's ReLU; the sum is never stored (lower/train-fused.ts).
  avgpool_add_fwd: { ...pool, ...endFlags, relu: 'bool' },
  // Its backward in one pass: the pool's gradient, masked by the block's ReLU recomputed from the ends, and their BN partials.
  avgpool_add_bwd: { ...pool, ...endFlags, relu: 'bool' },
} as const satisfies Record<string, ConstSchema>;

/** What a kernel computes; the renderers turn each into a call of the kernel library. */
export type OpKind = keyof typeof constSchemas;
/** The constants (shapes and options baked into the kernel) of each op. */
export type OpConsts = { readonly [K in OpKind]: ConstsOf<(typeof constSchemas)[K]> };

export type Direction = 'in' | 'out' | 'inout';

/** One buffer of an op: `size` is its element count (per image for activations) given the step's consts. */
interface BufferRule<C, N extends string = string> {
  readonly name: N;
  readonly dir: Direction;
  readonly dtype?: Dtype | ((c: C) => Dtype); // f32 unless said
  readonly when?: (c: C) => boolean; // passed only when this holds (a bias, a pending transform)
  readonly size: (c: C) => number;
  readonly atLeast?: true; // a shared scratch buffer sized for the largest user: the rule is a lower bound
}

type Rules = { readonly [K in OpKind]: readonly BufferRule<OpConsts[K]>[] };

/**
 * A buffer's element type. Sizes count 4-byte elements (runtime/core's spaces) whatever the type: a u8 buffer
 * ⌈bytes/4⌉, a bf16 one ⌈elements/2⌉ (storageWords), so the planner and the runtime's arenas stay in words.
 */
export type Dtype = 'f32' | 'i32' | 'u8' | 'bf16';

/** The 4-byte elements that hold `elements` values of `dtype` (a per-image size: images lie back to back in its elements). */
export const storageWords = (dtype: Dtype, elements: number) => (dtype === 'bf16' ? Math.ceil(elements / 2) : dtype === 'u8' ? Math.ceil(elements / 4) : elements);

/** The x buffer of a conv: uint8 images (a stem), a max pool's output stored bf16 (xBf16), or fp32; its size in 4-byte elements. */
type ConvInputConsts = ConvShape & { u8Mean?: readonly number[]; xBf16?: boolean };
const convInputDtype = (c: ConvInputConsts): Dtype => (c.u8Mean ? 'u8' : c.xBf16 ? 'bf16' : 'f32');
const convInput = { name: 'x', dir: 'in', dtype: convInputDtype, size: (c: ConvInputConsts) => storageWords(convInputDtype(c), inPlane(c)) } as const;

/** A buffer of `elements` values stored in bf16 where `bf16` says (⌈elements/2⌉ words), else fp32. */
const maybeBf16 = <C,>(bf16: (c: C) => boolean | undefined, elements: (c: C) => number) => ({
  dtype: (c: C): Dtype => (bf16(c) ? 'bf16' : 'f32'),
  size: (c: C) => storageWords(bf16(c) ? 'bf16' : 'f32', elements(c)),
});

/** The g buffer of a conv's gradient kernels: the gradient of its output, bf16 where a grad_rebuild pass or the next conv's data gradient stored it so (gBf16). */
const convGradient = { name: 'g', dir: 'in', ...maybeBf16<ConvShape & { gBf16?: boolean }>((c) => c.gBf16, (c) => c.K * c.P * c.Q) } as const;

/** The shape constants of a conv or a pool: C×H×W in, K×P×Q out, R×S window, stride, padding. */
export type ConvShape = ConstsOf<typeof spatial>;

// Size rules shared by the families.
const inPlane = (c: ConvShape) => c.C * c.H * c.W;
const outPlane = (c: ConvShape) => c.K * c.P * c.Q;
const convWeights = (c: ConvShape) => c.K * c.C * c.R * c.S;
/**
 * Floats of a conv_weight_bf16 copy: B's rows (K forward, C data gradient) × its reduction in whole 32-deep slices, two bf16 a float.
 * A stem's forward copy holds the larger reduction of its space-to-depth form (conv-mma-stem-s2d.ts), which its kernel may take.
 */
export function bf16WeightFloats(c: ConvShape, dgrad: boolean): number {
  const s2d = dgrad ? undefined : s2dStem(c);
  const depth = dgrad ? c.K * c.R * c.S : s2d ? s2d.conv.C * s2d.conv.R * s2d.conv.S : c.C * c.R * c.S;
  return (dgrad ? c.C : c.K) * Math.ceil(depth / 32) * 16;
}
/**
 * Tickets (unsigned counters in f32 words) a weight gradient's last-split fold needs: one per output tile of
 * its C·R·S × K grid, at most one per 64 × 8 (the smallest tensor-core tile, backends/cuda/conv-mma-tile.ts;
 * the kernel checks its grid fits).
 */
/** A data gradient whose reduction runs in splits (backends/cuda/conv-mma-dgrad-splits.ts). */
const dgradSplit = (c: { splits?: number }) => (c.splits ?? 1) > 1;
export const wgradTicketsBound = (CRS: number, K: number) => Math.ceil(CRS / 64) * Math.ceil(K / 8);
const perChannel = (c: { C: number }) => c.C;
const plane = (c: { C: number; HW: number }) => c.C * c.HW;
/** Per-tile statistics partials: one per channel and 32-position tile of a plane (lower/train-fused.ts STAT_TILE). */
const tiles = (C: number, HW: number) => Math.ceil(HW / 32) * C;
const one = () => 1;
const withBias = (c: { bias: boolean }) => c.bias;
/** The elements per image of a training BN's output (and its gradient): its own C channels, or the concat's outTotal. */
const bnOutputPlane = (c: { C: number; HW: number; outTotal?: number }) => (c.outTotal ?? c.C) * c.HW;
/** The elements per image of a conv's output buffer (and its gradient): its own K channels, or the concat's yTotal. */
/**
 * The per-image floats of a conv's per-tile BN sums (runtime/include/nincc/cpu/bn_moments.h ConvMoments: 3 doubles a
 * channel and pixel tile), sized for the narrowest instruction set's 8-pixel tiles: ceil(N·HW/8) ≤ N·ceil(HW/8).
 */
export const BN_MOMENT_MIN_TILE_PIXELS = 8;
export const bnMomentFloats = (C: number, HW: number) => C * Math.ceil(HW / BN_MOMENT_MIN_TILE_PIXELS) * 6;
const convOutputPlane = (c: ConvShape & { yTotal?: number }) => (c.yTotal ?? c.K) * c.P * c.Q;
/** The elements per image of a pool's output (and its gradient): its own K channels, or the concat's outTotal. */
const poolOutputPlane = (c: ConvShape & { outTotal?: number }) => (c.outTotal ?? c.K) * c.P * c.Q;

/** The prologue's scale/shift of the input's pending BN. */
const pendingInput = <C extends { C: number; inBn: boolean }>(): BufferRule<C, 'in_scale' | 'in_shift'>[] => [
  { name: 'in_scale', dir: 'in', when: (c) => c.inBn, size: perChannel },
  { name: 'in_shift', dir: 'in', when: (c) => c.inBn, size: perChannel },
];
type RebuildName = 'g_y' | 'g_scale' | 'g_shift' | 'g_gamma' | 'g_mean' | 'g_invstd' | 'g_dgamma' | 'g_dbeta';
/** The prologue that rebuilds a raw gradient from the gradient of a value (ch × positions) with a pending transform. */
const rebuild = <C extends { gBn: boolean; gRelu: boolean; gyBf16?: boolean }>(ch: (c: C) => number, positions: (c: C) => number): BufferRule<C, RebuildName>[] => {
  const bn = (c: C) => c.gBn;
  return [
    { name: 'g_y', dir: 'in', when: (c) => c.gBn || c.gRelu, ...maybeBf16<C>((c) => c.gyBf16, (c) => ch(c) * positions(c)) },
    { name: 'g_scale', dir: 'in', when: bn, size: ch },
    { name: 'g_shift', dir: 'in', when: bn, size: ch },
    { name: 'g_gamma', dir: 'in', when: bn, size: ch },
    { name: 'g_mean', dir: 'in', when: bn, size: ch },
    { name: 'g_invstd', dir: 'in', when: bn, size: ch },
    { name: 'g_dgamma', dir: 'in', when: bn, size: ch },
    { name: 'g_dbeta', dir: 'in', when: bn, size: ch },
  ];
};
type StatsName = 'e_y' | 'e_scale' | 'e_shift' | 'e_mean' | 'e_invstd' | 'e_dz' | 'e_dzx';
/**
 * The epilogue's inputs and Σdz, Σdz·x̂ partials for the pending BN of the value (C × HW) whose gradient
 * is written; `on`: the consts that call for it (always, when undefined); `yBf16`: e_y, the value's raw
 * buffer, is a conv output stored in bf16.
 */
const backwardStats = <C,>(C: (c: C) => number, HW: (c: C) => number, on?: (c: C) => boolean, yBf16: (c: C) => boolean | undefined = () => false): BufferRule<C, StatsName>[] => {
  return [
    { name: 'e_y', dir: 'in', when: on, ...maybeBf16(yBf16, (c) => C(c) * HW(c)) },
    ...(['e_scale', 'e_shift', 'e_mean', 'e_invstd'] as const).map((name): BufferRule<C, StatsName> => ({ name, dir: 'in', when: on, size: C })),
    { name: 'e_dz', dir: 'out', when: on, size: (c) => tiles(C(c), HW(c)) },
    { name: 'e_dzx', dir: 'out', when: on, size: (c) => tiles(C(c), HW(c)) },
  ];
};

/**
 * backwardStats's buffers for one branch end `p` of a residual add (p_y, p_scale, …, p_dz, p_dzx), over C channels
 * of `HW` positions; its raw value p_y is read when `read` says (the mask of the block's ReLU), else with the rest.
 */
const branchStats = <C extends { C: number }, P extends 'a' | 'b'>(p: P, on: (c: C) => boolean, HW: (c: C) => number, read: (c: C) => boolean = on): BufferRule<C, `${P}_${'y' | 'scale' | 'shift' | 'mean' | 'invstd' | 'dz' | 'dzx'}`>[] => [
  { name: `${p}_y`, dir: 'in', when: read, size: (c) => c.C * HW(c) },
  ...(['scale', 'shift', 'mean', 'invstd'] as const).map((n) => ({ name: `${p}_${n}` as const, dir: 'in' as const, when: on, size: perChannel })),
  { name: `${p}_dz`, dir: 'out', when: on, size: (c) => tiles(c.C, HW(c)) },
  { name: `${p}_dzx`, dir: 'out', when: on, size: (c) => tiles(c.C, HW(c)) },
];

/** A residual add's two branch ends a and b of `size` elements, each with its pending BN's scale/shift when it has one. */
const addEnds = <C extends { C: number; aBn: boolean; bBn: boolean }>(size: (c: C) => number): BufferRule<C, 'a' | 'a_scale' | 'a_shift' | 'b' | 'b_scale' | 'b_shift'>[] =>
  (['a', 'b'] as const).flatMap((p) => {
    const on = (c: C) => (p === 'a' ? c.aBn : c.bBn);
    return [
      { name: p, dir: 'in' as const, size },
      { name: `${p}_scale` as const, dir: 'in' as const, when: on, size: perChannel },
      { name: `${p}_shift` as const, dir: 'in' as const, when: on, size: perChannel },
    ];
  });

/** A conv_fwd_fused's residual ends (sumOnLoad): xa and xb, each with its pending BN's scale/shift. */
const sumEnds = (): BufferRule<OpConsts['conv_fwd_fused'], 'xa' | 'xa_scale' | 'xa_shift' | 'xb' | 'xb_scale' | 'xb_shift'>[] =>
  (['a', 'b'] as const).flatMap((p) => {
    const bn = (c: OpConsts['conv_fwd_fused']) => c.sumInput === true && (p === 'a' ? c.aBn : c.bBn) === true;
    return [
      { name: `x${p}` as const, dir: 'in' as const, when: (c: OpConsts['conv_fwd_fused']) => c.sumInput === true, size: inPlane },
      { name: `x${p}_scale` as const, dir: 'in' as const, when: bn, size: perChannel },
      { name: `x${p}_shift` as const, dir: 'in' as const, when: bn, size: perChannel },
    ];
  });

/**
 * Whether the block ReLU's mask [out > 0] is recomputed from the two branch ends rather than read from out:
 * when both ends have a pending BN, the pass reads both raw ends for their partials anyway, so reading out
 * too would be one more activation-sized read (a projection block; an identity shortcut is plain data, not
 * read here, so reading it would cost what reading out does). Bitwise the forward's mask: the same fmaf per
 * end, then the same sum.
 */
export const maskFromEnds = (c: { relu: boolean; aStats: boolean; bStats: boolean }) => c.relu && c.aStats && c.bStats;

/** A conv_dgrad_fused's add backward (addBwd) as add_bwd_fused's mask flags. */
const addBackwardFlags = (c: { sumRelu?: boolean; aStats?: boolean; bStats?: boolean }) => ({ relu: c.sumRelu === true, aStats: c.aStats === true, bStats: c.bStats === true });

const softmax = [
  { name: 'x', dir: 'in', size: (c: { classes: number }) => c.classes },
  { name: 'y', dir: 'out', size: (c: { classes: number }) => c.classes },
] as const;
const softmaxBackward = [
  { name: 'y', dir: 'in', size: (c: { classes: number }) => c.classes },
  { name: 'g', dir: 'in', size: (c: { classes: number }) => c.classes },
  { name: 'dx', dir: 'out', size: (c: { classes: number }) => c.classes },
] as const;
const elementwise = <I extends 'x' | 'g', O extends 'y' | 'dx'>(input: I, output: O): BufferRule<{ count: number }, I | O>[] => [
  { name: input, dir: 'in', size: (c) => c.count },
  { name: output, dir: 'out', size: (c) => c.count },
];
/** A pointwise backward: dx from the incoming gradient and what the forward saved (its input or output). */
const pointwiseBackward = <S extends 'x' | 'y'>(saved: S): BufferRule<{ count: number }, S | 'g' | 'dx'>[] => [
  { name: saved, dir: 'in', size: (c) => c.count },
  { name: 'g', dir: 'in', size: (c) => c.count },
  { name: 'dx', dir: 'out', size: (c) => c.count },
];
/** A concat's output (or its gradient): `total` channels of HW positions. */
const joinedPlane = (c: { total: number; HW: number }) => c.total * c.HW;
/** A branch end's C channels written into its slice of the concat's output. */
const slicePlace: BufferRule<OpConsts['concat_place'], 'x' | 'y'>[] = [
  { name: 'x', dir: 'in', size: plane },
  { name: 'y', dir: 'out', size: joinedPlane },
];
const poolForward = [
  { name: 'x', dir: 'in', size: inPlane },
  { name: 'y', dir: 'out', size: outPlane },
] as const;
/** A cpu training BN backward's per-channel inputs: gamma and what its forward saved (bn_bwd, bn_relu_maxpool_bwd). */
const bnBackwardSaved = [
  { name: 'gamma', dir: 'in', size: perChannel },
  { name: 'save_mean', dir: 'in', size: perChannel },
  { name: 'save_invstd', dir: 'in', size: perChannel },
] as const;
/** … and its parameters' gradients, written after dx. */
const bnParamGradients = [
  { name: 'dgamma', dir: 'out', size: perChannel },
  { name: 'dbeta', dir: 'out', size: perChannel },
] as const;
/** A training pool's input and output, the output perhaps its slice of a concat's (endOutput). */
const poolTrainForward = [
  { name: 'x', dir: 'in', size: inPlane },
  { name: 'y', dir: 'out', size: poolOutputPlane },
] as const;

/**
 * The buffers of each op in kernel-argument order (plan.json's step `args`, an ABI with runtime/core).
 * The names are the CUDA kernels' parameter names (backends/cuda/*.ts); the cpu renderer reads the same.
 */
const rulesTable = {
  conv_fwd: [
    convInput,
    { name: 'w', dir: 'in', size: convWeights },
    { name: 'b', dir: 'in', when: withBias, size: (c) => c.K },
    { name: 'y', dir: 'out', size: convOutputPlane },
    { name: 'bn_moments', dir: 'out', when: (c) => c.bnMoments === true, size: (c) => bnMomentFloats(c.K, c.P * c.Q) },
  ],
  conv_bwd_data: [
    { name: 'g', dir: 'in', size: convOutputPlane },
    { name: 'w', dir: 'in', size: convWeights },
    { name: 'g_add', dir: 'in', when: (c) => c.addend === true, size: inPlane },
    { name: 'dx', dir: 'out', size: inPlane },
  ],
  conv_bwd_weight: [
    convInput,
    { name: 'g', dir: 'in', size: convOutputPlane },
    { name: 'dw', dir: 'out', size: convWeights },
    { name: 'db', dir: 'out', when: withBias, size: (c) => c.K },
  ],
  conv_infer: [
    convInput,
    // Folded weights are packed for the cpu conv algorithm; the cuda kernel reads their first K×C·R·S as plain rows.
    { name: 'w', dir: 'in', size: (c) => (c.packed ? convPackedWeightsFloats(c) : convWeights(c)) },
    { name: 'wb', dir: 'in', when: (c) => c.bf16w === true, size: (c) => bf16WeightFloats(c, false) },
    { name: 'b', dir: 'in', when: withBias, size: (c) => c.K },
    { name: 'r', dir: 'in', when: (c) => c.residual === true, size: convOutputPlane },
    { name: 'y', dir: 'out', size: convOutputPlane },
  ],
  fold_bn: [
    { name: 'w', dir: 'in', size: (c) => c.K * c.CRS },
    { name: 'bias', dir: 'in', when: withBias, size: (c) => c.K },
    { name: 'gamma', dir: 'in', size: (c) => c.K },
    { name: 'beta', dir: 'in', size: (c) => c.K },
    { name: 'mean', dir: 'in', size: (c) => c.K },
    { name: 'var', dir: 'in', size: (c) => c.K },
    { name: 'w_out', dir: 'out', size: (c) => c.K * c.CRS },
    { name: 'b_out', dir: 'out', size: (c) => c.K },
    { name: 'packed', dir: 'out', when: (c) => c.packed, size: convPackedWeightsFloats },
  ],
  bn_fwd_train: [
    { name: 'x', dir: 'in', size: plane },
    { name: 'gamma', dir: 'in', size: perChannel },
    { name: 'beta', dir: 'in', size: perChannel },
    { name: 'running_mean', dir: 'inout', size: perChannel },
    { name: 'running_var', dir: 'inout', size: perChannel },
    { name: 'r', dir: 'in', when: (c) => c.residual === true, size: plane },
    { name: 'moments', dir: 'in', when: (c) => c.convMoments === true, size: (c) => bnMomentFloats(c.C, c.HW) },
    { name: 'y', dir: 'out', size: bnOutputPlane },
    { name: 'save_mean', dir: 'out', size: perChannel },
    { name: 'save_invstd', dir: 'out', size: perChannel },
  ],
  bn_bwd: [
    { name: 'x', dir: 'in', size: plane },
    { name: 'g', dir: 'in', size: bnOutputPlane },
    { name: 'y', dir: 'in', when: (c) => c.relu === true, size: bnOutputPlane }, // the BN+ReLU pass's output: g is the ReLU's gradient
    ...bnBackwardSaved,
    { name: 'dx', dir: 'out', size: plane },
    ...bnParamGradients,
  ],
  bn_relu_maxpool_bwd: [
    { name: 'x', dir: 'in', size: inPlane },
    { name: 'g', dir: 'in', size: outPlane }, // the pool's output gradient
    { name: 'argmax', dir: 'in', dtype: 'i32', size: outPlane },
    { name: 'y', dir: 'in', size: inPlane }, // the BN+ReLU pass's output, the pool's input
    ...bnBackwardSaved,
    { name: 'dx', dir: 'out', size: inPlane },
    ...bnParamGradients,
  ],
  bn_eval: [
    { name: 'x', dir: 'in', size: plane },
    { name: 'gamma', dir: 'in', size: perChannel },
    { name: 'beta', dir: 'in', size: perChannel },
    { name: 'mean', dir: 'in', size: perChannel },
    { name: 'var', dir: 'in', size: perChannel },
    { name: 'y', dir: 'out', size: plane },
  ],
  relu_fwd: elementwise('x', 'y'),
  tanh_fwd: elementwise('x', 'y'),
  tanh_bwd: pointwiseBackward('y'),
  sigmoid_fwd: elementwise('x', 'y'),
  sigmoid_bwd: pointwiseBackward('y'),
  threshold_fwd: elementwise('x', 'y'),
  threshold_bwd: pointwiseBackward('x'),
  lrn_fwd: [
    { name: 'x', dir: 'in', size: plane },
    { name: 'y', dir: 'out', size: plane },
    { name: 'scale', dir: 'out', size: plane }, // k + alpha/size·Σx², kept for the backward
  ],
  lrn_bwd: [
    { name: 'x', dir: 'in', size: plane },
    { name: 'y', dir: 'in', size: plane },
    { name: 'scale', dir: 'in', size: plane },
    { name: 'g', dir: 'in', size: plane },
    { name: 'dx', dir: 'out', size: plane },
  ],
  zeropad_fwd: [
    { name: 'x', dir: 'in', size: (c) => c.C * c.H * c.W },
    { name: 'y', dir: 'out', size: (c) => c.C * c.P * c.Q },
  ],
  zeropad_bwd: [
    { name: 'g', dir: 'in', size: (c) => c.C * c.P * c.Q },
    { name: 'dx', dir: 'out', size: (c) => c.C * c.H * c.W },
  ],
  add: [
    { name: 'a', dir: 'in', size: (c) => c.count },
    { name: 'b', dir: 'in', size: (c) => c.count },
    { name: 'y', dir: 'out', size: (c) => c.count },
  ],
  add_infer: [
    { name: 'a', dir: 'in', size: (c) => c.count },
    { name: 'b', dir: 'in', size: (c) => c.count },
    { name: 'y', dir: 'out', size: (c) => c.count },
  ],
  // Each branch's step writes its own channels of y; together they write all of it.
  concat_place: slicePlace,
  concat_apply: [
    { name: 'x', dir: 'in', size: (c) => c.C * c.HW },
    ...pendingInput<OpConsts['concat_apply']>(),
    { name: 'y', dir: 'out', size: (c) => c.total * c.HW },
  ],
  concat_take: [
    { name: 'g', dir: 'in', size: (c) => c.total * c.HW },
    { name: 'dx', dir: 'out', size: (c) => c.C * c.HW },
  ],
  concat_take_stats: [
    { name: 'g', dir: 'in', size: (c) => c.total * c.HW },
    { name: 'dx', dir: 'out', size: (c) => c.C * c.HW },
    ...backwardStats<OpConsts['concat_take_stats']>((c) => c.C, (c) => c.HW),
  ],
  // As concat_place, with the ReLU applied; its backward reads the forward's y and the gradient in the joined buffers.
  relu_fwd_slice: slicePlace,
  relu_bwd_slice: [{ name: 'y', dir: 'in', size: joinedPlane }, { name: 'g', dir: 'in', size: joinedPlane }, { name: 'dx', dir: 'out', size: plane }],
  tanh_fwd_slice: slicePlace,
  tanh_bwd_slice: [{ name: 'y', dir: 'in', size: joinedPlane }, { name: 'g', dir: 'in', size: joinedPlane }, { name: 'dx', dir: 'out', size: plane }],
  relu_bwd: [
    { name: 'y', dir: 'in', size: (c) => c.count },
    { name: 'g', dir: 'in', size: (c) => c.count },
    { name: 'dx', dir: 'out', size: (c) => c.count },
  ],
  maxpool_fwd: [...poolTrainForward, { name: 'argmax', dir: 'out', dtype: 'i32', size: outPlane }],
  maxpool_fwd_infer: poolForward,
  pointwise_pair_infer: [
    { name: 'x', dir: 'in', size: (c) => c.C * c.H * c.W },
    { name: 'w1', dir: 'in', size: (c) => c.w1Floats },
    { name: 'b1', dir: 'in', size: (c) => c.K },
    { name: 'w2', dir: 'in', size: (c) => c.w2Floats },
    { name: 'b2', dir: 'in', size: (c) => c.K },
    { name: 'y', dir: 'out', size: (c) => c.K * c.H * c.W },
  ],
  block_band_infer: [
    { name: 'x', dir: 'in', size: inPlane },
    { name: 'w0', dir: 'in', size: (c) => c.w0Floats },
    { name: 'b0', dir: 'in', size: (c) => c.K },
    { name: 'w1', dir: 'in', size: (c) => c.w1Floats },
    { name: 'b1', dir: 'in', size: (c) => c.K },
    { name: 'w2', dir: 'in', size: (c) => c.w2Floats },
    { name: 'b2', dir: 'in', size: (c) => c.K },
    { name: 'y', dir: 'out', size: (c) => c.K * c.MP * c.MQ },
  ],
  maxpool_bwd: [
    { name: 'g', dir: 'in', size: poolOutputPlane },
    { name: 'argmax', dir: 'in', dtype: 'i32', size: outPlane },
    { name: 'dx', dir: 'out', size: inPlane },
  ],
  avgpool_fwd: poolTrainForward,
  avgpool_bwd: [
    { name: 'g', dir: 'in', size: poolOutputPlane },
    { name: 'dx', dir: 'out', size: inPlane },
  ],
  linear_fwd: [
    { name: 'x', dir: 'in', size: (c) => c.in },
    { name: 'w', dir: 'in', size: (c) => c.out * c.in },
    { name: 'b', dir: 'in', when: withBias, size: (c) => c.out },
    { name: 'y', dir: 'out', size: (c) => c.out },
  ],
  linear_infer: [
    { name: 'x', dir: 'in', size: (c) => c.in },
    { name: 'w', dir: 'in', size: (c) => c.out * c.in },
    { name: 'b', dir: 'in', when: withBias, size: (c) => c.out },
    { name: 'y', dir: 'out', size: (c) => c.out },
  ],
  linear_bwd_data: [
    { name: 'g', dir: 'in', size: (c) => c.out },
    { name: 'w', dir: 'in', size: (c) => c.out * c.in },
    { name: 'dx', dir: 'out', size: (c) => c.in },
  ],
  linear_bwd_weight: [
    { name: 'x', dir: 'in', size: (c) => c.in },
    { name: 'g', dir: 'in', size: (c) => c.out },
    { name: 'dw', dir: 'out', size: (c) => c.out * c.in },
    { name: 'db', dir: 'out', when: withBias, size: (c) => c.out },
  ],
  logsoftmax_fwd: softmax,
  logsoftmax_bwd: softmaxBackward,
  softmax_fwd: softmax,
  softmax_bwd: softmaxBackward,
  dropout_fwd: elementwise('x', 'y'),
  dropout_bwd: elementwise('g', 'dx'),
  nll_loss: [
    { name: 'logp', dir: 'in', size: (c) => c.classes },
    { name: 'labels', dir: 'in', dtype: 'i32', size: one },
    { name: 'loss', dir: 'out', size: one },
    { name: 'dlogp', dir: 'out', size: (c) => c.classes },
  ],
  sgd_update: [
    { name: 'w', dir: 'inout', size: (c) => c.count },
    { name: 'g', dir: 'inout', size: (c) => c.count }, // weight decay is added into the gradient
    { name: 'mom', dir: 'inout', size: (c) => c.count },
  ],
  sgd_conv_bf16: [
    { name: 'w', dir: 'inout', size: convWeights },
    { name: 'g', dir: 'inout', size: convWeights },
    { name: 'mom', dir: 'inout', size: convWeights },
    { name: 'wb', dir: 'out', when: (c) => c.forward !== 0, size: (c) => bf16WeightFloats(c, false) },
    { name: 'wbd', dir: 'out', when: (c) => c.dgrad !== 0, size: (c) => bf16WeightFloats(c, true) },
  ],
  conv_fwd_fused: [
    { ...convInput, when: (c) => c.sumInput !== true },
    ...sumEnds(),
    ...pendingInput<OpConsts['conv_fwd_fused']>(),
    { name: 'w', dir: 'in', size: convWeights },
    { name: 'wb', dir: 'in', when: (c) => c.bf16w === true, size: (c) => bf16WeightFloats(c, false) },
    { name: 'b', dir: 'in', when: withBias, size: (c) => c.K },
    { name: 'y', dir: 'out', ...maybeBf16<OpConsts['conv_fwd_fused']>((c) => c.yBf16, outPlane) },
    { name: 'x_out', dir: 'out', when: (c) => c.sumInput === true, size: inPlane },
    { name: 'st_mean', dir: 'out', when: (c) => c.stats, size: (c) => tiles(c.K, c.P * c.Q) },
    { name: 'st_m2', dir: 'out', when: (c) => c.stats, size: (c) => tiles(c.K, c.P * c.Q) },
  ],
  conv_dgrad_fused: [
    convGradient,
    ...rebuild<OpConsts['conv_dgrad_fused']>((c) => c.K, (c) => c.P * c.Q),
    { name: 'w', dir: 'in', size: convWeights },
    { name: 'wb', dir: 'in', when: (c) => c.bf16w === true, size: (c) => bf16WeightFloats(c, true) },
    { name: 'g_add', dir: 'in', when: (c) => c.addend === true, size: inPlane },
    { name: 'dx', dir: 'out', ...maybeBf16<OpConsts['conv_dgrad_fused']>((c) => c.dxBf16, inPlane) },
    ...backwardStats<OpConsts['conv_dgrad_fused']>(perChannel, (c) => c.H * c.W, (c) => c.outStats, (c) => c.eyBf16),
    // The residual add's backward in the epilogue (addBwd): add_bwd_fused's mask input y and its ends' partials.
    { name: 'y', dir: 'in', when: (c) => c.addBwd === true && c.sumRelu === true && !maskFromEnds(addBackwardFlags(c)), size: inPlane },
    ...branchStats<OpConsts['conv_dgrad_fused'], 'a'>('a', (c) => c.addBwd === true && c.aStats === true, (c) => c.H * c.W),
    ...branchStats<OpConsts['conv_dgrad_fused'], 'b'>('b', (c) => c.addBwd === true && c.bStats === true, (c) => c.H * c.W),
    // A split data gradient's fp32 partials (each split's tiles' accumulators) and its tiles' tickets: scratch shared by every split one.
    { name: 'dpart', dir: 'out', when: dgradSplit, atLeast: true, size: (c) => (c.splits ?? 1) * (c.splitTiles ?? 0) * (c.splitArea ?? 0) },
    { name: 'dtickets', dir: 'inout', when: dgradSplit, atLeast: true, size: (c) => c.splitTiles ?? 0 },
  ],
  conv_wgrad_fused: [
    convGradient,
    ...rebuild<OpConsts['conv_wgrad_fused']>((c) => c.K, (c) => c.P * c.Q),
    { name: 'dy_raw', dir: 'out', dtype: 'bf16', when: (c) => c.dyOut === true, size: (c) => storageWords('bf16', outPlane(c)) },
    convInput,
    ...pendingInput<OpConsts['conv_wgrad_fused']>(),
    // One scratch pair serves every conv of the program, sized for the largest.
    { name: 'wpart', dir: 'out', atLeast: true, size: (c) => c.splits * convWeights(c) },
    { name: 'bpart', dir: 'out', atLeast: true, size: (c) => c.splits * c.K },
    { name: 'dw', dir: 'out', when: (c) => c.lastSplit === true, size: convWeights },
    { name: 'db', dir: 'out', when: (c) => c.lastSplit === true && c.bias, size: (c) => c.K },
    { name: 'tickets', dir: 'inout', when: (c) => c.lastSplit === true, atLeast: true, size: (c) => wgradTicketsBound(c.C * c.R * c.S, c.K) },
  ],
  wgrad_reduce: [
    { name: 'wpart', dir: 'in', atLeast: true, size: (c) => c.splits * c.count },
    { name: 'bpart', dir: 'in', atLeast: true, size: (c) => c.splits * c.K },
    { name: 'dw', dir: 'out', size: (c) => c.count },
    { name: 'db', dir: 'out', when: withBias, size: (c) => c.K },
  ],
  bn_stats: [
    { name: 'x', dir: 'in', size: plane },
    { name: 'st_mean', dir: 'out', size: (c) => tiles(c.C, c.HW) },
    { name: 'st_m2', dir: 'out', size: (c) => tiles(c.C, c.HW) },
  ],
  bn_finalize: [
    { name: 'st_mean', dir: 'in', size: (c) => tiles(c.C, c.HW) },
    { name: 'st_m2', dir: 'in', size: (c) => tiles(c.C, c.HW) },
    { name: 'gamma', dir: 'in', size: perChannel },
    { name: 'beta', dir: 'in', size: perChannel },
    { name: 'running_mean', dir: 'inout', size: perChannel },
    { name: 'running_var', dir: 'inout', size: perChannel },
    { name: 'save_mean', dir: 'out', size: perChannel },
    { name: 'save_invstd', dir: 'out', size: perChannel },
    { name: 'scale', dir: 'out', size: perChannel },
    { name: 'shift', dir: 'out', size: perChannel },
  ],
  bn_bwd_finalize: [
    { name: 'st_dz', dir: 'in', size: (c) => tiles(c.C, c.HW) },
    { name: 'st_dzx', dir: 'in', size: (c) => tiles(c.C, c.HW) },
    { name: 'dgamma', dir: 'out', size: perChannel },
    { name: 'dbeta', dir: 'out', size: perChannel },
  ],
  act_apply: [{ name: 'x', dir: 'in', size: plane }, ...pendingInput<OpConsts['act_apply']>(), { name: 'y', dir: 'out', size: plane }],
  // A residual add of two branch ends, each with its pending BN/ReLU applied on load, then the block's ReLU.
  add_apply: [...addEnds<OpConsts['add_apply']>(plane), { name: 'y', dir: 'out', size: plane }],
  // Its backward in one pass: dz = g·[y > 0] (the block's ReLU) for both branch ends, and the Σdz, Σdz·x̂
  // partials of each end's pending BN (a_*/b_*, as backwardStats's e_*).
  add_bwd_fused: [
    { name: 'g', dir: 'in', size: plane },
    { name: 'y', dir: 'in', when: (c) => c.relu && !maskFromEnds(c), size: plane },
    { name: 'dz', dir: 'out', when: (c) => c.relu, size: plane },
    ...branchStats<OpConsts['add_bwd_fused'], 'a'>('a', (c) => c.aStats, (c) => c.HW),
    ...branchStats<OpConsts['add_bwd_fused'], 'b'>('b', (c) => c.bStats, (c) => c.HW),
  ],
  act_bwd_stats: [
    { name: 'g', dir: 'in', size: plane },
    ...backwardStats<OpConsts['act_bwd_stats']>(perChannel, (c) => c.HW), // lowering emits it only for a pending BN
  ],
  conv_weight_bf16: [
    { name: 'w', dir: 'in', size: convWeights },
    { name: 'wb', dir: 'out', size: (c) => bf16WeightFloats(c, c.dgrad) },
  ],
  grad_rebuild: [
    { name: 'g', dir: 'in', ...maybeBf16<OpConsts['grad_rebuild']>((c) => c.gBf16, plane) },
    ...rebuild<OpConsts['grad_rebuild']>(perChannel, (c) => c.HW),
    { name: 'dx', dir: 'out', ...maybeBf16<OpConsts['grad_rebuild']>((c) => c.bf16, plane) },
  ],
  maxpool_fwd_fused: [
    { name: 'x', dir: 'in', ...maybeBf16<OpConsts['maxpool_fwd_fused']>((c) => c.xBf16, inPlane) },
    ...pendingInput<OpConsts['maxpool_fwd_fused']>(),
    { name: 'y', dir: 'out', ...maybeBf16<OpConsts['maxpool_fwd_fused']>((c) => c.bf16, outPlane) },
    { name: 'argmax', dir: 'out', dtype: 'i32', size: outPlane },
  ],
  avgpool_fwd_fused: [{ name: 'x', dir: 'in', ...maybeBf16<OpConsts['avgpool_fwd_fused']>((c) => c.xBf16, inPlane) }, ...pendingInput<OpConsts['avgpool_fwd_fused']>(), poolForward[1]],
  maxpool_bwd_fused: [
    { name: 'g', dir: 'in', ...maybeBf16<OpConsts['maxpool_bwd_fused']>((c) => c.gBf16, outPlane) },
    { name: 'argmax', dir: 'in', dtype: 'i32', size: outPlane },
    { name: 'dx', dir: 'out', ...maybeBf16<OpConsts['maxpool_bwd_fused']>((c) => c.dxBf16, inPlane) },
    ...backwardStats<OpConsts['maxpool_bwd_fused']>(perChannel, (c) => c.H * c.W, (c) => c.outStats, (c) => c.eyBf16),
  ],
  avgpool_bwd_fused: [
    { name: 'g', dir: 'in', size: outPlane },
    { name: 'dx', dir: 'out', size: inPlane },
    ...backwardStats<OpConsts['avgpool_bwd_fused']>(perChannel, (c) => c.H * c.W, (c) => c.outStats, (c) => c.eyBf16),
  ],
  avgpool_add_fwd: [...addEnds<OpConsts['avgpool_add_fwd']>(inPlane), poolForward[1]],
  // dz (the gradient of both ends' pending values) from the pool's gradient g; an end's raw value is read for
  // the ReLU's mask or its BN's partials (branchStats's buffers, the end's raw value first).
  avgpool_add_bwd: [
    { name: 'g', dir: 'in', size: outPlane },
    { name: 'dz', dir: 'out', size: inPlane },
    ...branchStats<OpConsts['avgpool_add_bwd'], 'a'>('a', (c) => c.aBn, (c) => c.H * c.W, (c) => c.relu || c.aBn),
    ...branchStats<OpConsts['avgpool_add_bwd'], 'b'>('b', (c) => c.bBn, (c) => c.H * c.W, (c) => c.relu || c.bBn),
  ],
} as const satisfies Rules;
const bufferRules: Rules = rulesTable;

/** The names of the buffers an op can take (whatever its consts), for the builder's typed buffer record. */
export type BufferName<K extends OpKind> = (typeof rulesTable)[K][number]['name'];

/** Runtime scalars each op's kernel takes after its buffers (plan.json's step `scalars`, in order). */
const scalarNames: Partial<Record<OpKind, readonly string[]>> = {
  sgd_update: ['lr', 'wd', 'momentum', 'first'], // first: the momentum buffer starts as the gradient
  sgd_conv_bf16: ['lr', 'wd', 'momentum', 'first'],
};

export interface BufferContract {
  readonly name: string;
  readonly dir: Direction;
  readonly dtype: Dtype;
  /** Element count (per image for activations); `atLeast`: a lower bound (a shared scratch buffer). */
  readonly size: number;
  readonly atLeast: boolean;
}

export const isOpKind = (op: string): op is OpKind => Object.hasOwn(constSchemas, op);

/** Every op, in the table's order. */
export const OP_KINDS: readonly OpKind[] = Object.keys(constSchemas).filter(isOpKind);

/** The schema of an op's constants: each key's type (`int`, `num`, `bool`; `bool?`, `int?`: optional). */
export const constSchema = (op: OpKind): ConstSchema => constSchemas[op];

export const opScalars = (op: OpKind): readonly string[] => scalarNames[op] ?? [];

/** The buffers a step of `op` with these consts passes, in kernel-argument order, with their sizes. */
export function opBuffers<K extends OpKind>(op: K, consts: OpConsts[K]): BufferContract[] {
  const rules: readonly BufferRule<OpConsts[K]>[] = bufferRules[op];
  return rules
    .filter((r) => r.when?.(consts) ?? true)
    .map((r) => ({ name: r.name, dir: r.dir, dtype: typeof r.dtype === 'function' ? r.dtype(consts) : (r.dtype ?? 'f32'), size: r.size(consts), atLeast: r.atLeast ?? false }));
}
