// The built-in layers: argument lists in Torch7's order, Torch's defaults for omitted trailing arguments.
import type { NetLayerKind, NetLayerOp } from '../ir.js';

/** The largest size, count or window: they are int32 in the runtime. */
export const maxSize = 2 ** 31 - 1;

export interface ArgSpec {
  readonly name: string;
  readonly integer: boolean;
  /** Torch's default when the argument is omitted; absent means required. */
  readonly default?: (given: readonly number[]) => number;
  readonly check?: (v: number) => string | undefined; // a reason the value is invalid
}

export interface LayerSpec {
  readonly kind: NetLayerKind;
  readonly torch: string; // Torch7 class name
  readonly args: readonly ArgSpec[];
  readonly variadic?: boolean; // view(...) takes one or more sizes
  readonly build: (a: readonly number[]) => NetLayerOp;
  /** `:name()` after the call, as Torch's Lua sets a mode on the module: what each does to the built layer. */
  readonly methods?: Readonly<Record<string, (op: NetLayerOp) => NetLayerOp>>;
}

const positive = (v: number) => (v >= 1 ? undefined : 'must be at least 1');
const nonNegative = (v: number) => (v >= 0 ? undefined : 'must not be negative');
const flag = (v: number) => (v === 0 || v === 1 ? undefined : 'must be 0 or 1');

const poolArgs = (strideDefault: (g: readonly number[], i: number) => number): ArgSpec[] => [
  { name: 'kW', integer: true, check: positive },
  { name: 'kH', integer: true, check: positive },
  { name: 'dW', integer: true, check: positive, default: (g) => strideDefault(g, 0) },
  { name: 'dH', integer: true, check: positive, default: (g) => strideDefault(g, 1) },
  { name: 'padW', integer: true, check: nonNegative, default: () => 0 },
  { name: 'padH', integer: true, check: nonNegative, default: () => 0 },
];
const poolAttrs = (a: readonly number[]) => ({ kW: a[0], kH: a[1], dW: a[2], dH: a[3], padW: a[4], padH: a[5] });

// Torch's pooling modules: `:ceil()` rounds the output size up, `:floor()` (the default) down.
const poolMethods: LayerSpec['methods'] = {
  ceil: (op) => (op.kind === 'maxpool' || op.kind === 'avgpool' ? { ...op, attrs: { ...op.attrs, ceil: true } } : op),
  floor: (op) => {
    if (op.kind !== 'maxpool' && op.kind !== 'avgpool') return op;
    const { ceil: _, ...attrs } = op.attrs;
    return { ...op, attrs };
  },
};
// Torch's SpatialConvolution and Linear: `:noBias()` drops the bias (fb.resnet.torch's convolutions have none).
const noBias: LayerSpec['methods'] = {
  noBias: (op) => (op.kind === 'conv' ? { ...op, attrs: { ...op.attrs, bias: false } } : op.kind === 'linear' ? { ...op, attrs: { ...op.attrs, bias: false } } : op),
};
const noArgs = (kind: 'tanh' | 'sigmoid' | 'identity', torch: string): LayerSpec => ({ kind, torch, args: [], build: () => ({ kind, attrs: {} }) });

export const layerSpecs: Readonly<Record<NetLayerKind, LayerSpec>> = {
  conv: {
    kind: 'conv',
    torch: 'nn.SpatialConvolution',
    args: [
      { name: 'nInputPlane', integer: true, check: positive },
      { name: 'nOutputPlane', integer: true, check: positive },
      { name: 'kW', integer: true, check: positive },
      { name: 'kH', integer: true, check: positive },
      { name: 'dW', integer: true, check: positive, default: () => 1 },
      { name: 'dH', integer: true, check: positive, default: () => 1 },
      { name: 'padW', integer: true, check: nonNegative, default: () => 0 },
      // Torch: self.padH = padH or self.padW
      { name: 'padH', integer: true, check: nonNegative, default: (g) => g[6] },
    ],
    build: (a) => ({ kind: 'conv', attrs: { nIn: a[0], nOut: a[1], kW: a[2], kH: a[3], dW: a[4], dH: a[5], padW: a[6], padH: a[7], bias: true } }),
    methods: noBias,
  },
  bn: {
    kind: 'bn',
    torch: 'nn.SpatialBatchNormalization',
    args: [
      { name: 'nFeature', integer: true, check: positive },
      { name: 'eps', integer: false, default: () => 1e-5, check: (v) => (v > 0 ? undefined : 'must be positive') },
      { name: 'momentum', integer: false, default: () => 0.1, check: (v) => (v >= 0 && v <= 1 ? undefined : 'must be in [0, 1]') },
      { name: 'affine', integer: true, default: () => 1, check: flag },
    ],
    build: (a) => ({ kind: 'bn', attrs: { nFeatures: a[0], eps: a[1], momentum: a[2], affine: a[3] === 1 } }),
  },
  relu: { kind: 'relu', torch: 'nn.ReLU', args: [], build: () => ({ kind: 'relu', attrs: {} }) },
  // Torch: dW = dW or kW; dH = dH or kH
  maxpool: { kind: 'maxpool', torch: 'nn.SpatialMaxPooling', args: poolArgs((g, i) => g[i]), build: (a) => ({ kind: 'maxpool', attrs: poolAttrs(a) }), methods: poolMethods },
  // Torch: dW = dW or 1; dH = dH or 1
  avgpool: { kind: 'avgpool', torch: 'nn.SpatialAveragePooling', args: poolArgs(() => 1), build: (a) => ({ kind: 'avgpool', attrs: poolAttrs(a) }), methods: poolMethods },
  view: {
    kind: 'view',
    torch: 'nn.View',
    args: [{ name: 'size', integer: true, check: (v) => (v >= 1 || v === -1 ? undefined : 'must be positive or -1') }],
    variadic: true,
    build: (a) => ({ kind: 'view', attrs: { sizes: [...a] } }),
  },
  linear: {
    kind: 'linear',
    torch: 'nn.Linear',
    args: [
      { name: 'inputSize', integer: true, check: positive },
      { name: 'outputSize', integer: true, check: positive },
      { name: 'bias', integer: true, default: () => 1, check: flag },
    ],
    build: (a) => ({ kind: 'linear', attrs: { nIn: a[0], nOut: a[1], bias: a[2] === 1 } }),
    methods: noBias,
  },
  logsoftmax: { kind: 'logsoftmax', torch: 'nn.LogSoftMax', args: [], build: () => ({ kind: 'logsoftmax', attrs: {} }) },
  softmax: { kind: 'softmax', torch: 'nn.SoftMax', args: [], build: () => ({ kind: 'softmax', attrs: {} }) },
  dropout: {
    kind: 'dropout',
    torch: 'nn.Dropout',
    args: [{ name: 'p', integer: false, default: () => 0.5, check: (v) => (v >= 0 && v < 1 ? undefined : 'must be in [0, 1)') }],
    build: (a) => ({ kind: 'dropout', attrs: { p: a[0] } }),
  },
  // Torch: self.alpha = alpha or 0.0001; self.beta = beta or 0.75; self.k = k or 1
  lrn: {
    kind: 'lrn',
    torch: 'nn.SpatialCrossMapLRN',
    args: [
      { name: 'size', integer: true, check: positive },
      { name: 'alpha', integer: false, default: () => 0.0001 },
      { name: 'beta', integer: false, default: () => 0.75 },
      { name: 'k', integer: false, default: () => 1, check: (v) => (v > 0 ? undefined : 'must be positive') },
    ],
    build: (a) => ({ kind: 'lrn', attrs: { size: a[0], alpha: a[1], beta: a[2], k: a[3] } }),
  },
  // Torch: self.threshold = th or 1e-6; self.val = v or 0 (y = x if x > th, else v)
  threshold: {
    kind: 'threshold',
    torch: 'nn.Threshold',
    args: [
      { name: 'th', integer: false, default: () => 1e-6 },
      { name: 'v', integer: false, default: () => 0 },
    ],
    build: (a) => ({ kind: 'threshold', attrs: { th: a[0], v: a[1] } }),
  },
  // Torch: self.pad_r = pad_r or self.pad_l; pad_t and pad_b likewise (imagenet-multiGPU.torch's GoogLeNet pads before its pools)
  zeropad: {
    kind: 'zeropad',
    torch: 'nn.SpatialZeroPadding',
    args: [
      { name: 'pad_l', integer: true },
      { name: 'pad_r', integer: true, default: (g) => g[0] },
      { name: 'pad_t', integer: true, default: (g) => g[0] },
      { name: 'pad_b', integer: true, default: (g) => g[0] },
    ],
    build: (a) => ({ kind: 'zeropad', attrs: { l: a[0], r: a[1], t: a[2], b: a[3] } }),
  },
  tanh: noArgs('tanh', 'nn.Tanh'),
  sigmoid: noArgs('sigmoid', 'nn.Sigmoid'),
  identity: noArgs('identity', 'nn.Identity'),
};

/** Layers whose output shape is their input's, whatever their arguments: a bad call of one leaves the shape known. */
export const keepsShape: ReadonlySet<string> = new Set<NetLayerKind>(['relu', 'dropout', 'bn', 'logsoftmax', 'softmax', 'lrn', 'threshold', 'tanh', 'sigmoid', 'identity']);

export function isLayerName(name: string): name is NetLayerKind {
  return Object.prototype.hasOwnProperty.call(layerSpecs, name);
}

export function requiredArgCount(spec: LayerSpec): number {
  return spec.args.filter((a) => a.default === undefined).length;
}
