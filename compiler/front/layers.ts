// The built-in layers: argument lists in Torch7's order, Torch's defaults for omitted trailing arguments.
import type { LayerKind, LayerOp } from '../ir.js';

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
  readonly kind: LayerKind;
  readonly torch: string; // Torch7 class name
  readonly args: readonly ArgSpec[];
  readonly variadic?: boolean; // view(...) takes one or more sizes
  readonly build: (a: readonly number[]) => LayerOp;
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

export const layerSpecs: Readonly<Record<LayerKind, LayerSpec>> = {
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
  maxpool: { kind: 'maxpool', torch: 'nn.SpatialMaxPooling', args: poolArgs((g, i) => g[i]), build: (a) => ({ kind: 'maxpool', attrs: poolAttrs(a) }) },
  // Torch: dW = dW or 1; dH = dH or 1
  avgpool: { kind: 'avgpool', torch: 'nn.SpatialAveragePooling', args: poolArgs(() => 1), build: (a) => ({ kind: 'avgpool', attrs: poolAttrs(a) }) },
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
  },
  logsoftmax: { kind: 'logsoftmax', torch: 'nn.LogSoftMax', args: [], build: () => ({ kind: 'logsoftmax', attrs: {} }) },
  softmax: { kind: 'softmax', torch: 'nn.SoftMax', args: [], build: () => ({ kind: 'softmax', attrs: {} }) },
  dropout: {
    kind: 'dropout',
    torch: 'nn.Dropout',
    args: [{ name: 'p', integer: false, default: () => 0.5, check: (v) => (v >= 0 && v < 1 ? undefined : 'must be in [0, 1)') }],
    build: (a) => ({ kind: 'dropout', attrs: { p: a[0] } }),
  },
};

export function isLayerName(name: string): name is LayerKind {
  return Object.prototype.hasOwnProperty.call(layerSpecs, name);
}

export function requiredArgCount(spec: LayerSpec): number {
  return spec.args.filter((a) => a.default === undefined).length;
}
