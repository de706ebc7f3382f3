// Pass: the learnable parameters (Torch's getParameters() order) and the persistent state of each layer.
import type { ShapedLayer, ShapedModel } from '../ir.js';
import type { BufferDecl, TensorEntry } from './program-ir.js';

export interface ParamLayout {
  readonly params: readonly TensorEntry[];
  readonly state: readonly TensorEntry[];
  readonly buffers: readonly BufferDecl[]; // param, grad and momentum views of each parameter, and state
  readonly paramSize: number;
  readonly stateSize: number;
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
export const paramId = (l: ShapedLayer, field: string) => `${l.kind}${l.index}.${field}`;
export const gradId = (l: ShapedLayer, field: string) => `grad:${paramId(l, field)}`;
export const wholeSpaceId = (space: 'param' | 'grad' | 'momentum') => `all:${space}`;
export const momentumId = (l: ShapedLayer, field: string) => `momentum:${paramId(l, field)}`;

export function lowerParams(m: ShapedModel): ParamLayout {
  const params: TensorEntry[] = [];
  const state: TensorEntry[] = [];
  const buffers: BufferDecl[] = [];
  let paramOffset = 0;
  let stateOffset = 0;
  const addParam = (l: ShapedLayer, field: string, shape: number[], init: TensorEntry['init']) => {
    const id = paramId(l, field);
    params.push({ name: id, buffer: id, shape, init, torch: { index: l.index, field }, layer: l.index });
    for (const [space, bid] of [['param', id], ['grad', gradId(l, field)], ['momentum', momentumId(l, field)]] as const) {
      buffers.push({ id: bid, space, size: size(shape), dtype: 'f32', offset: paramOffset });
    }
    paramOffset += size(shape);
  };
  const addState = (l: ShapedLayer, field: string, shape: number[], init: TensorEntry['init']) => {
    const id = paramId(l, field);
    state.push({ name: id, buffer: id, shape, init, torch: { index: l.index, field }, layer: l.index });
    buffers.push({ id, space: 'state', size: size(shape), dtype: 'f32', offset: stateOffset });
    stateOffset += size(shape);
  };
  for (const l of m.layers) {
    switch (l.kind) {
      case 'conv': {
        const a = l.attrs;
        // Torch7 SpatialConvolution:reset(): U(-1/sqrt(kW*kH*nInputPlane), +…) for weight and bias.
        const bound = 1 / Math.sqrt(a.kW * a.kH * a.nIn);
        addParam(l, 'weight', [a.nOut, a.nIn, a.kH, a.kW], { kind: 'uniform', bound });
        if (a.bias) addParam(l, 'bias', [a.nOut], { kind: 'uniform', bound });
        break;
      }
      case 'bn': {
        const c = l.attrs.nFeatures;
        // Torch7 BatchNormalization:reset(): weight ~ U(0,1), bias = 0; running_var starts at 1.
        if (l.attrs.affine) {
          addParam(l, 'weight', [c], { kind: 'uniform01' });
          addParam(l, 'bias', [c], { kind: 'zeros' });
        }
        addState(l, 'running_mean', [c], { kind: 'zeros' });
        addState(l, 'running_var', [c], { kind: 'ones' });
        break;
      }
      case 'linear': {
        const a = l.attrs;
        const bound = 1 / Math.sqrt(a.nIn);
        addParam(l, 'weight', [a.nOut, a.nIn], { kind: 'uniform', bound });
        if (a.bias) addParam(l, 'bias', [a.nOut], { kind: 'uniform', bound });
        break;
      }
      default:
        break;
    }
  }
  // Whole-space views, for the update that treats the flattened parameters alike.
  for (const space of ['param', 'grad', 'momentum'] as const) buffers.push({ id: wholeSpaceId(space), space, size: paramOffset, dtype: 'f32', offset: 0 });
  return { params, state, buffers, paramSize: paramOffset, stateSize: stateOffset };
}
