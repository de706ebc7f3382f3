// Matches a Torch7 network's modules to a spec's layers, one for one in order, and copies their weights into
// nincc's parameter layout (`conv1.weight`, `bn2.running_var`, …). Pure: file values and a ShapedModel in, tensors out.
import { callSiteNote } from '../../compiler/front/expand-defs.js';
import { opLayers, type ShapedLayer, type ShapedModel, type ShapedOpLayer } from '../../compiler/ir.js';
import { lowerParams, paramId } from '../../compiler/lower/params.js';
import { formatPosition } from '../../grammar/diagnostics.js';
import type { SafeTensor } from '../io/safetensors.js';
import { positionLabel, specLayerString, T7ImportError, viewModule, type FileModule, type ModuleView, type Network } from './nn-modules.js';
import type { T7Tensor } from './values.js';

export interface ImportResult {
  /** Every parameter and running statistic of the spec, as float32, by nincc's names. */
  readonly tensors: Map<string, SafeTensor>;
  /** Differences that are accepted (a parameter-free layer the file lacks, a flattened nesting, …). */
  readonly notes: readonly string[];
  /** Differences that change results but not the weights (the preprocessing transform). */
  readonly warnings: readonly string[];
}

/** Hyperparameters read from a file are doubles written from Lua literals; allow only rounding noise. */
const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));

const shapeText = (s: readonly number[]) => s.join('x');

export function importNetwork(model: ShapedModel, network: Network): ImportResult {
  const layout = lowerParams(model);
  const entries = [...layout.params, ...layout.state];
  const tensors = new Map<string, SafeTensor>();
  const notes: string[] = [];
  const warnings: string[] = [];
  const put = (layer: ShapedLayer, field: string, data: Float32Array) => {
    const name = paramId(layer, field);
    const entry = entries.find((e) => e.name === name);
    if (!entry) throw new Error(`import-t7: the spec has no tensor ${name}`); // a bug here, not in the file
    tensors.set(name, { dtype: 'F32', shape: [...entry.shape], data });
  };
  if (model.network) throw new T7ImportError(`${model.file}: a spec with residual/concat blocks cannot take a Torch7 file yet (issue #17)`);
  const layers = opLayers(model.layers);
  const modules = network.modules;

  if (network.nested) {
    notes.push(`the file's network nests nn.Sequentials; their ${modules.length} modules are matched in order to the spec's flat layer list`);
  }
  let next = 0; // the spec layer the next module must match
  // The spec's input is always C×H×W, so a spec for a Torch network that takes flat vectors starts with view(-1).
  if (layers[0]?.kind === 'view' && layers[0].output.length === 1 && modules.length > 0 && viewModule(modules[0]).op?.kind !== 'view') {
    notes.push(`the spec's layer 1 (${formatPosition(layers[0].span)}) ${specLayerString(layers[0])} has no module in the file: the file's network takes the flattened input`);
    next = 1;
  }
  for (const m of modules) {
    const layer = layers[next];
    const view = viewModule(m);
    if (!layer) {
      const last = layers[layers.length - 1];
      throw new T7ImportError(`module ${positionLabel(m.position)} is ${view.described} but the spec ${model.name} ends at layer ${last.index} (${formatPosition(last.span)}) ${specLayerString(last)}`);
    }
    matchModule(m, view, layer, put);
    next++;
  }
  const missing = layers.slice(next);
  if (missing.length > 0) {
    const lastModule = modules.length > 0 ? `module ${positionLabel(modules[modules.length - 1].position)}` : 'no modules';
    const weighted = missing.find((l) => entries.some((e) => e.layer === l.index));
    if (weighted) {
      throw new T7ImportError(`the file's network ends after ${lastModule} but the spec's layer ${weighted.index} (${formatPosition(weighted.span)}) ${specLayerString(weighted)} has weights`);
    }
    const list = missing.map((l) => `${l.index} (${formatPosition(l.span)}) ${specLayerString(l)}`).join(', ');
    notes.push(`the file's network ends after ${lastModule}; the spec's parameter-free layer${missing.length === 1 ? '' : 's'} ${list} ${missing.length === 1 ? 'is' : 'are'} not in the file`);
  }
  for (const e of entries) if (!tensors.has(e.name)) throw new Error(`import-t7: nothing filled ${e.name}`);
  warnings.push(...compareTransform(model, network));
  return { tensors, notes, warnings };
}

type Put = (layer: ShapedLayer, field: string, data: Float32Array) => void;

function matchModule(m: FileModule, view: ModuleView, layer: ShapedOpLayer, put: Put): void {
  const label = `module ${positionLabel(m.position)}`;
  const mismatch = (detail?: string): never => {
    const sites = layer.callSites.map((s) => `\n  ${callSiteNote(s).message}`).join('');
    throw new T7ImportError(`${label} is ${view.described} but the spec's layer ${layer.index} (${formatPosition(layer.span)}) is ${specLayerString(layer)}${detail ? ` (${detail})` : ''}${sites}`);
  };
  const op = view.op;
  if (!op) return mismatch(`nincc has no layer for ${view.className}`);
  if (op.kind !== layer.kind) return mismatch();
  if (view.unsupported) return mismatch(`${view.unsupported} has no nincc equivalent`);
  const tensorOf = (field: keyof ModuleView['tensors'], expected: readonly number[], alternatives: readonly (readonly number[])[] = []): T7Tensor => {
    const t = view.tensors[field];
    if (!t) throw new T7ImportError(`${label} (${view.described}) has no ${field}`);
    const ok = [expected, ...alternatives].some((s) => shapeText(s) === shapeText(t.sizes));
    if (!ok) throw new T7ImportError(`${label} (${view.described}) has ${field} ${shapeText(t.sizes)}, expected ${[expected, ...alternatives].map(shapeText).join(' or ')}`);
    return t;
  };
  switch (layer.kind) {
    case 'conv': {
      const a = layer.attrs;
      const b = op.kind === 'conv' ? op.attrs : undefined;
      if (!b || (['nIn', 'nOut', 'kW', 'kH', 'dW', 'dH', 'padW', 'padH', 'bias'] as const).some((k) => a[k] !== b[k])) return mismatch();
      // nn.SpatialConvolutionMM (and old SpatialConvolution) keep the weight as nOut × (nIn·kH·kW): the same row-major order.
      put(layer, 'weight', tensorOf('weight', [a.nOut, a.nIn, a.kH, a.kW], [[a.nOut, a.nIn * a.kH * a.kW]]).toFloat32());
      if (a.bias) put(layer, 'bias', tensorOf('bias', [a.nOut]).toFloat32());
      return;
    }
    case 'bn': {
      const a = layer.attrs;
      const b = op.kind === 'bn' ? op.attrs : undefined;
      if (!b || a.nFeatures !== b.nFeatures || !close(a.eps, b.eps) || !close(a.momentum, b.momentum) || a.affine !== b.affine) return mismatch();
      const c = [a.nFeatures];
      if (a.affine) {
        put(layer, 'weight', tensorOf('weight', c).toFloat32());
        put(layer, 'bias', tensorOf('bias', c).toFloat32());
      }
      put(layer, 'running_mean', tensorOf('running_mean', c).toFloat32());
      if (view.tensors.running_var) put(layer, 'running_var', tensorOf('running_var', c).toFloat32());
      else if (view.tensors.running_std) {
        // Version-1 BN kept running_std = the running average of 1/sqrt(var + eps) and normalised with
        // (x − mean)·running_std. Torch's own BatchNormalization:read converts it as running_std^-2 − eps.
        const std = tensorOf('running_std', c).toFloat64();
        put(layer, 'running_var', Float32Array.from(std, (s) => 1 / (s * s) - a.eps));
      } else throw new T7ImportError(`${label} (${view.described}) has neither running_var nor running_std`);
      return;
    }
    case 'maxpool':
    case 'avgpool': {
      const a = layer.attrs;
      const b = op.kind === 'maxpool' || op.kind === 'avgpool' ? op.attrs : undefined;
      if (!b || (['kW', 'kH', 'dW', 'dH', 'padW', 'padH'] as const).some((k) => a[k] !== b[k])) return mismatch();
      if (view.ceilMode) {
        // Ceil mode is the same computation whenever it gives floor mode's output size.
        const [, H, W] = layer.input;
        const ceil = [ceilPoolSize(H, a.kH, a.dH, a.padH), ceilPoolSize(W, a.kW, a.dW, a.padW)];
        if (ceil[0] !== layer.output[1] || ceil[1] !== layer.output[2]) {
          return mismatch(`ceil mode pools ${H}x${W} to ${shapeText(ceil)}, the spec's floor mode to ${layer.output[1]}x${layer.output[2]}`);
        }
      }
      return;
    }
    case 'view': {
      // nn.View(1024) and view(-1) are the same layer when they give the same shape per image.
      const sizes = op.kind === 'view' ? op.attrs.sizes : [];
      const shape = resolveView(sizes, layer.input.reduce((x, y) => x * y, 1));
      if (!shape || shapeText(shape) !== shapeText(layer.output)) {
        return mismatch(`it gives ${shape ? shapeText(shape) : 'no shape'} per image from ${shapeText(layer.input)}, the spec ${shapeText(layer.output)}`);
      }
      return;
    }
    case 'linear': {
      const a = layer.attrs;
      const b = op.kind === 'linear' ? op.attrs : undefined;
      if (!b || a.nIn !== b.nIn || a.nOut !== b.nOut || a.bias !== b.bias) return mismatch();
      put(layer, 'weight', tensorOf('weight', [a.nOut, a.nIn]).toFloat32());
      if (a.bias) put(layer, 'bias', tensorOf('bias', [a.nOut]).toFloat32());
      return;
    }
    case 'dropout':
      if (op.kind !== 'dropout' || !close(op.attrs.p, layer.attrs.p)) return mismatch();
      return;
    case 'relu':
    case 'logsoftmax':
    case 'softmax':
      return;
  }
}

/** Torch's ceil-mode pooled size: ceil((n + 2p − k)/s) + 1, less one if the last window starts in the padding. */
function ceilPoolSize(n: number, k: number, s: number, p: number): number {
  let out = Math.ceil((n + 2 * p - k) / s) + 1;
  if ((out - 1) * s >= n + p) out--;
  return out;
}

/** nn.View's per-image shape for `elements` inputs: one size may be -1 (inferred). */
function resolveView(sizes: readonly number[], elements: number): number[] | undefined {
  const known = sizes.filter((s) => s !== -1).reduce((a, b) => a * b, 1);
  const inferred = sizes.filter((s) => s === -1).length;
  if (inferred > 1 || known === 0) return undefined;
  if (inferred === 0) return known === elements ? [...sizes] : undefined;
  return elements % known === 0 ? sizes.map((s) => (s === -1 ? elements / known : s)) : undefined;
}

function compareTransform(model: ShapedModel, network: Network): string[] {
  const file = network.transform;
  const spec = model.transform;
  const text = (v: readonly number[]) => `{${v.join(', ')}}`;
  if (!file) return [];
  if (!spec) return [`the file has transform mean ${text(file.mean)} std ${text(file.std)} but the spec ${model.name} has no transform: inputs will not be normalised`];
  const differs = (a: readonly number[], b: readonly number[]) => a.length !== b.length || a.some((x, i) => Math.abs(x - b[i]) > 1e-6 * Math.max(1, Math.abs(b[i])));
  const out: string[] = [];
  for (const key of ['mean', 'std'] as const) {
    if (differs(file[key], spec[key])) out.push(`the file's transform.${key} ${text(file[key])} differs from the spec's ${text(spec[key])}: nincc normalises with the spec's`);
  }
  return out;
}
