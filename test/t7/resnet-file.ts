// Torch7 ResNets as fb.resnet.torch's models/resnet.lua saved them (cudnn modules, convolutions without
// bias, basic blocks as nn.Sequential{nn.ConcatTable{branch, shortcut}, nn.CAddTable(true), ReLU(true)},
// shortcut type B: nn.Identity, or a strided 1×1 convolution + BN where the planes change), written by
// builders that read like that Lua; and a float64 forward of such a file's own module tree, for reference.
import type { T7Object, T7Value } from '../../runtime/t7/values.js';
import { T7Storage, T7Tensor } from '../../runtime/t7/values.js';
import * as L from '../reference/layers.js';
import { list, object, storage, tensor } from './writer.js';

type Next = () => number;

/** A module of a Torch network being built, as resnet.lua's locals name them. */
export class ResNetBuilder {
  constructor(private readonly next: Next, private readonly cudnn = true) {}

  private cls(nn: string): string {
    return this.cudnn ? nn.replace(/^nn\./, 'cudnn.') : nn;
  }

  private floats(count: number, lo: number, hi: number, sizes: readonly number[]) {
    const data = Float32Array.from({ length: count }, () => lo + (hi - lo) * this.next());
    return tensor(storage('float32', data, this.cudnn), sizes);
  }

  private buffers() {
    return { output: tensor(storage('float32', new Float32Array(0), this.cudnn), []), gradInput: tensor(storage('float32', new Float32Array(0), this.cudnn), []), train: false };
  }

  /** Convolution(nIn, nOut, kW, kH, dW, dH, padW, padH) after ConvInit: He-uniform weights, bias removed. */
  convolution(nIn: number, nOut: number, kW: number, kH: number, dW = 1, dH = 1, padW = 0, padH = 0): T7Object {
    const bound = Math.sqrt(6 / (nIn * kW * kH));
    const weight = this.floats(nOut * nIn * kH * kW, -bound, bound, [nOut, nIn, kH, kW]);
    return object(this.cls('nn.SpatialConvolution'), { nInputPlane: nIn, nOutputPlane: nOut, kW, kH, dW, dH, padW, padH, groups: 1, weight, ...this.buffers() });
  }

  /** SBatchNorm(n) with the statistics and affine parameters of a trained network. */
  batchNorm(n: number): T7Object {
    return object(this.cls('nn.SpatialBatchNormalization'), {
      eps: 1e-5, momentum: 0.1, affine: true,
      weight: this.floats(n, 0.5, 1.5, [n]), bias: this.floats(n, -0.3, 0.3, [n]),
      running_mean: this.floats(n, -0.3, 0.3, [n]), running_var: this.floats(n, 0.5, 2, [n]), ...this.buffers(),
    }, 2);
  }

  relu(): T7Object {
    return object(this.cls('nn.ReLU'), { inplace: true, threshold: 0, val: 0, ...this.buffers() });
  }

  sequential(...modules: T7Object[]): T7Object {
    return object('nn.Sequential', { modules: list(modules), ...this.buffers() });
  }

  /** shortcut(nIn, nOut, stride), type B. */
  shortcut(nIn: number, nOut: number, stride: number): T7Object {
    if (nIn === nOut) return object('nn.Identity', this.buffers());
    return this.sequential(this.convolution(nIn, nOut, 1, 1, stride, stride), this.batchNorm(nOut));
  }

  /** basicblock(nIn, n, stride). */
  basicBlock(nIn: number, n: number, stride: number): T7Object {
    const s = this.sequential(
      this.convolution(nIn, n, 3, 3, stride, stride, 1, 1), this.batchNorm(n), this.relu(),
      this.convolution(n, n, 3, 3, 1, 1, 1, 1), this.batchNorm(n),
    );
    const table = object('nn.ConcatTable', { modules: list([s, this.shortcut(nIn, n, stride)]), ...this.buffers() });
    return this.sequential(table, object('nn.CAddTable', { inplace: true, ...this.buffers() }), this.relu());
  }

  avgPool(k: number): T7Object {
    return object(this.cls('nn.SpatialAveragePooling'), { kW: k, kH: k, dW: 1, dH: 1, padW: 0, padH: 0, ceil_mode: false, count_include_pad: true, divide: true, ...this.buffers() });
  }

  /** nn.View(n):setNumInputDims(3). */
  view(n: number): T7Object {
    return object('nn.View', { size: storage('int64', BigInt64Array.of(BigInt(n))), numElements: n, numInputDims: 3, ...this.buffers() });
  }

  linear(nIn: number, nOut: number): T7Object {
    const bound = 1 / Math.sqrt(nIn);
    return object('nn.Linear', { weight: this.floats(nOut * nIn, -bound, bound, [nOut, nIn]), bias: this.floats(nOut, -bound, bound, [nOut]), ...this.buffers() });
  }
}

/**
 * test/reference/specs.ts's TINY_RESNET as resnet.lua (CIFAR layout, depth 8 cut to two blocks) builds it:
 * a 3×3 stem, a stage of one basic block at 8 planes, one of a strided block to 12 planes (projection shortcut),
 * 8×8 average pooling, View(12), Linear(12, 10), and no LogSoftMax (it trained with CrossEntropyCriterion).
 */
export function tinyResNetFile(next: Next, cudnn = true): T7Object {
  const b = new ResNetBuilder(next, cudnn);
  return b.sequential(
    b.convolution(3, 8, 3, 3, 1, 1, 1, 1), b.batchNorm(8), b.relu(),
    b.sequential(b.basicBlock(8, 8, 1)), // layer(basicblock, 8, 1)
    b.sequential(b.basicBlock(8, 12, 2)), // layer(basicblock, 12, 1, 2)
    b.avgPool(8), b.view(12), b.linear(12, 10),
  );
}

const numberField = (m: T7Object, name: string, fallback?: number): number => {
  const v = m.get(name);
  if (typeof v === 'number') return v;
  if (fallback !== undefined) return fallback;
  throw new Error(`reference: ${m.className} has no ${name}`);
};
const float64 = (v: T7Value | undefined): Float64Array | undefined => (v instanceof T7Tensor ? v.toFloat64() : undefined);

/** The float64 forward (evaluate mode) of a file's module, by its class, as Torch's Lua defines each one. */
export function torchForward(m: T7Object, x: L.Batch | L.Batch[]): L.Batch | L.Batch[] {
  const one = (): L.Batch => {
    if (Array.isArray(x)) throw new Error(`reference: ${m.className} given a table`);
    return x;
  };
  const children = () => ((m.get('modules') as { list(): T7Value[] }).list() as T7Object[]);
  switch (m.className.replace(/^cudnn\./, 'nn.')) {
    case 'nn.Sequential':
      return children().reduce<L.Batch | L.Batch[]>((y, child) => torchForward(child, y), x);
    case 'nn.ConcatTable':
      return children().map((child) => torchForward(child, one()) as L.Batch);
    case 'nn.CAddTable':
      if (!Array.isArray(x)) throw new Error('reference: nn.CAddTable given one tensor');
      return L.add(x);
    case 'nn.Identity':
      return x;
    case 'nn.SpatialConvolution': {
      const a = { nIn: numberField(m, 'nInputPlane'), nOut: numberField(m, 'nOutputPlane'), kW: numberField(m, 'kW'), kH: numberField(m, 'kH'), dW: numberField(m, 'dW'), dH: numberField(m, 'dH'), padW: numberField(m, 'padW'), padH: numberField(m, 'padH'), bias: m.get('bias') instanceof T7Tensor };
      return L.conv(one(), a, float64(m.get('weight'))!, float64(m.get('bias')));
    }
    case 'nn.SpatialBatchNormalization':
      return L.normalize(one(), float64(m.get('running_mean'))!, float64(m.get('running_var'))!, numberField(m, 'eps'), float64(m.get('weight'))!, float64(m.get('bias'))!);
    case 'nn.ReLU':
      return L.relu(one());
    case 'nn.SpatialAveragePooling':
      return L.avgPool(one(), { kW: numberField(m, 'kW'), kH: numberField(m, 'kH'), dW: numberField(m, 'dW'), dH: numberField(m, 'dH'), padW: numberField(m, 'padW', 0), padH: numberField(m, 'padH', 0) });
    case 'nn.View': {
      const size = m.get('size') as T7Storage;
      const b = one();
      return { n: b.n, shape: size.toNumbers(), data: b.data };
    }
    case 'nn.Linear': {
      const w = m.get('weight') as T7Tensor;
      return L.linear(one(), w.toFloat64(), float64(m.get('bias')), w.sizes[0]);
    }
    default:
      throw new Error(`reference: no forward for ${m.className}`);
  }
}
