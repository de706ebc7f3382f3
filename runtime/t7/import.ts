// Matches a Torch7 network's modules to a spec's layers, one for one in order, and copies their weights into
// nincc's parameter layout (`conv1.weight`, `bn2.running_var`, …). Pure: file values and a ShapedModel in, tensors out.
import { callSiteNote } from '../../compiler/front/expand-defs.js';
import { poolOutputSize } from '../../compiler/front/infer-shapes.js';
import { isBlock, opLayers, type ShapedLayer, type ShapedModel, type ShapedNetNode, type ShapedOpLayer } from '../../compiler/ir.js';
import { lowerParams, paramId } from '../../compiler/lower/params.js';
import { formatPosition } from '../../grammar/diagnostics.js';
import type { SafeTensor } from '../io/safetensors.js';
import { firstBlock, type FileNode } from './network-tree.js';
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
  const layers = opLayers(model.layers);
  if (model.network) {
    importTree(model, network, layers, put, notes);
    for (const e of entries) if (!tensors.has(e.name)) throw new Error(`import-t7: nothing filled ${e.name}`);
    return { tensors, notes, warnings: compareTransform(model, network) };
  }
  const block = firstBlock(network.nodes);
  if (block) {
    throw new T7ImportError(`module ${positionLabel(block.position)} is ${block.described}, a ${block.block} block, but the spec ${model.name} (${model.file}) is a chain of layers: write the block in the spec (docs/spec-language.md#blocks-residual-and-concat)`);
  }
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
      if (view.ceilMode !== (a.ceil === true)) {
        // Ceil and floor mode are the same computation whenever they give the same output size.
        const [, H, W] = layer.input;
        const padded = a.padW !== 0 || a.padH !== 0;
        const size = [poolOutputSize(H, a.kH, a.dH, a.padH, view.ceilMode, padded), poolOutputSize(W, a.kW, a.dW, a.padW, view.ceilMode, padded)];
        if (size[0] !== layer.output[1] || size[1] !== layer.output[2]) {
          const mode = (ceil: boolean) => (ceil ? 'ceil' : 'floor');
          return mismatch(`${mode(view.ceilMode)} mode pools ${H}x${W} to ${shapeText(size)}, the spec's ${mode(a.ceil === true)} mode to ${layer.output[1]}x${layer.output[2]}`);
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
    case 'lrn': {
      const a = layer.attrs;
      const b = op.kind === 'lrn' ? op.attrs : undefined;
      if (!b || a.size !== b.size || !close(a.alpha, b.alpha) || !close(a.beta, b.beta) || !close(a.k, b.k)) return mismatch();
      return;
    }
    case 'threshold':
      if (op.kind !== 'threshold' || !close(op.attrs.th, layer.attrs.th) || !close(op.attrs.v, layer.attrs.v)) return mismatch();
      return;
    case 'zeropad': {
      const a = layer.attrs;
      const b = op.kind === 'zeropad' ? op.attrs : undefined;
      if (!b || a.l !== b.l || a.r !== b.r || a.t !== b.t || a.b !== b.b) return mismatch();
      return;
    }
    case 'relu':
    case 'logsoftmax':
    case 'softmax':
    case 'tanh':
    case 'sigmoid':
    case 'identity':
      return;
  }
}

/** `module (5)(1)(2)` or `module (5) (nn.ConcatTable + nn.CAddTable)`: a file node in messages. */
const fileNodeText = (n: FileNode) => (n.kind === 'module' ? `module ${positionLabel(n.module.position)} is ${viewModule(n.module).described}` : `module ${positionLabel(n.position)} is ${n.described} (a ${n.block} block)`);
const specNodeText = (n: ShapedNetNode) => (isBlock(n) ? `a ${n.kind} block at ${formatPosition(n.span)}` : `${specLayerString(n)} at ${formatPosition(n.span)}`);

/**
 * A spec with blocks against the file's containers, node for node: a layer to a module, a block to a container
 * of the same kind with as many branches, each branch's nodes in order. The spec's layers are visited in
 * Torch's order, the order of the opened chain (`layers`), whose positions name the tensors.
 */
function importTree(model: ShapedModel, network: Network, layers: readonly ShapedOpLayer[], put: Put, notes: string[]): void {
  let next = 0;
  const chainLayer = (kind: string): ShapedOpLayer => {
    const l = layers[next++];
    if (l?.kind !== kind) throw new Error(`import-t7: the spec's chain and network disagree at layer ${next}`); // a bug here, not in the file
    return l;
  };
  const walk = (spec: readonly ShapedNetNode[], file: readonly FileNode[], where: string, top: boolean) => {
    let i = 0;
    // As for a chain: the spec's leading view(-1) may stand for a file network that takes flat vectors.
    const first = spec[0];
    if (top && first && !isBlock(first) && first.kind === 'view' && first.output.length === 1 && file[0]?.kind === 'module' && viewModule(file[0].module).op?.kind !== 'view') {
      notes.push(`the spec's ${specNodeText(first)} has no module in the file: the file's network takes the flattened input`);
      chainLayer('view');
      i = 1;
    }
    for (const f of file) {
      const s = spec[i++];
      if (!s) throw new T7ImportError(`${fileNodeText(f)} but ${where} ends at ${specNodeText(spec[spec.length - 1])}`);
      if (f.kind === 'module' && !isBlock(s)) matchModule(f.module, viewModule(f.module), chainLayer(s.kind), put);
      else if (f.kind === 'block' && isBlock(s) && f.block === s.kind) {
        if (f.branches.length !== s.branches.length) throw new T7ImportError(`${fileNodeText(f)} with ${f.branches.length} branches but the spec's ${specNodeText(s)} has ${s.branches.length}`);
        s.branches.forEach((b, k) => walk(b.nodes, f.branches[k], `branch ${k + 1} of the spec's ${specNodeText(s)}`, false));
      } else throw new T7ImportError(`${fileNodeText(f)} but the spec has ${specNodeText(s)} there (in ${where})`);
    }
    const missing = spec.slice(i);
    if (missing.length === 0) return;
    const lastFile = file.length > 0 ? fileNodeText(file[file.length - 1]).replace(/ is .*/, '') : 'no modules';
    // Only the network may end early, and only by parameter-free layers (fb.resnet.torch saved no LogSoftMax).
    const weighted = missing.find((n) => isBlock(n) || n.params > 0);
    if (!top || weighted) throw new T7ImportError(`${where} ends after ${lastFile} in the file but the spec goes on with ${specNodeText(weighted ?? missing[0])}`);
    notes.push(`the file's network ends after ${lastFile}; the spec's parameter-free ${missing.map(specNodeText).join(', ')} ${missing.length === 1 ? 'is' : 'are'} not in the file`);
  };
  walk(model.network ?? [], network.nodes, `the spec ${model.name}`, true);
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
