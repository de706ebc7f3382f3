// A Torch7 network read off a .t7 file's values: where the network is, its modules in order (nested
// nn.Sequentials flattened), and each nn.*/cudnn.* module's fields as a nincc LayerOp plus its tensors.
import type { LayerKind, LayerOp } from '../../compiler/ir.js';
import { layerSpecs } from '../../compiler/front/layers.js';
import { torchModuleString } from '../../compiler/report/torch-print.js';
import { isModule, leafModules, positionLabel, T7ImportError, TreeReader, type FileModule, type FileNode } from './network-tree.js';
import { describeValue, T7Object, T7Storage, T7Table, T7Tensor, type T7Value } from './values.js';

export { positionLabel, T7ImportError, type FileModule } from './network-tree.js';

export interface Network {
  /** The network: a module, or a plain table with `modules` (treated as an nn.Sequential). */
  readonly root: T7Object | T7Table;
  readonly foundAt: 'the file itself' | "the file's model field" | 'a table with modules';
  /** The network's modules with its containers read as blocks (runtime/t7/network-tree.ts). */
  readonly nodes: readonly FileNode[];
  /** Every leaf module in forward order; nested nn.Sequentials are flattened, a block's branches one after another. */
  readonly modules: readonly FileModule[];
  readonly nested: boolean;
  /** The file's transform.mean/std (beside the network, or one of its fields), when present. */
  readonly transform?: { readonly mean: readonly number[]; readonly std: readonly number[] };
}

const field = (v: T7Value | undefined, name: string) => (v instanceof T7Object || v instanceof T7Table ? v.get(name) : undefined);

/** Finds the network: the file itself, its `model` field, or a table with `.modules`. */
export function findNetwork(root: T7Value): Network {
  let net: T7Object | T7Table;
  let foundAt: Network['foundAt'];
  if (isModule(root)) [net, foundAt] = [root, 'the file itself'];
  else if (isModule(field(root, 'model'))) [net, foundAt] = [field(root, 'model') as T7Object, "the file's model field"];
  else if (root instanceof T7Table && root.get('modules') instanceof T7Table) [net, foundAt] = [root, 'a table with modules'];
  else {
    const keys = root instanceof T7Table || root instanceof T7Object ? [...(root instanceof T7Table ? root : root.fields).entries.keys()].filter((k) => typeof k !== 'object').map(String) : [];
    const what = `${describeValue(root)}${keys.length > 0 ? ` with keys ${keys.slice(0, 8).join(', ')}${keys.length > 8 ? ', …' : ''}` : ''}`;
    throw new T7ImportError(`no network found: the file holds ${what} (expected an nn module, a table whose model field is one, or a table with modules)`);
  }
  const reader = new TreeReader();
  const nodes: FileNode[] = net instanceof T7Table || net.className === 'nn.Sequential' ? reader.sequence(net, []) : [{ kind: 'module', module: { position: [1], object: net } }];
  const transform = readTransform(field(root, 'transform') ?? field(net, 'transform'));
  return { root: net, foundAt, nodes, modules: leafModules(nodes), nested: reader.nested, ...(transform ? { transform } : {}) };
}

/** transform.mean/std as numbers, from a table of numbers, a tensor or a single number. */
function readTransform(t: T7Value | undefined): Network['transform'] {
  const numbers = (v: T7Value | undefined): number[] | undefined => {
    if (typeof v === 'number') return [v];
    if (v instanceof T7Tensor || v instanceof T7Storage) return v.toNumbers();
    if (v instanceof T7Table) {
      const list = v.list();
      return list.length > 0 && list.every((x) => typeof x === 'number') ? (list as number[]) : undefined;
    }
    return undefined;
  };
  const mean = numbers(field(t, 'mean'));
  const std = numbers(field(t, 'std'));
  return mean && std ? { mean, std } : undefined;
}

// Which nincc layer each Torch class is; cudnn.* modules carry the fields of their nn.* twins.
const CLASS_KINDS: Readonly<Record<string, LayerKind>> = {
  'nn.SpatialConvolution': 'conv',
  'nn.SpatialConvolutionMM': 'conv',
  'cudnn.SpatialConvolution': 'conv',
  'nn.SpatialBatchNormalization': 'bn',
  'cudnn.SpatialBatchNormalization': 'bn',
  'nn.ReLU': 'relu',
  'cudnn.ReLU': 'relu',
  'nn.SpatialMaxPooling': 'maxpool',
  'cudnn.SpatialMaxPooling': 'maxpool',
  'nn.SpatialAveragePooling': 'avgpool',
  'cudnn.SpatialAveragePooling': 'avgpool',
  'nn.View': 'view',
  'nn.Reshape': 'view',
  'nn.Linear': 'linear',
  'nn.LogSoftMax': 'logsoftmax',
  'cudnn.LogSoftMax': 'logsoftmax',
  'nn.SoftMax': 'softmax',
  'cudnn.SoftMax': 'softmax',
  'nn.Dropout': 'dropout',
  'nn.SpatialCrossMapLRN': 'lrn',
  'nn.Threshold': 'threshold',
  'nn.Tanh': 'tanh',
  'nn.Sigmoid': 'sigmoid',
  'nn.Identity': 'identity',
  'nn.SpatialZeroPadding': 'zeropad',
};

/** The layer of a class: cudnn.X as its nn.X twin (cudnn's modules keep nn's fields). */
const classKind = (className: string): LayerKind | undefined => CLASS_KINDS[className] ?? CLASS_KINDS[className.replace(/^cudnn\./, 'nn.')];

/** One file module as nincc sees it. */
export interface ModuleView {
  readonly className: string;
  /** The nincc layer it is; absent for classes nincc has no layer for. */
  readonly op?: LayerOp;
  /** Torch's print line (`cudnn.SpatialConvolution(3 -> 96, 11x11, 4,4, 5,5)`); for unknown classes the class name. */
  readonly printed: string;
  /** For messages: the print line, with BN's, LRN's and Threshold's constructor arguments and pooling's :ceil() that the print leaves out. */
  readonly described: string;
  readonly ceilMode: boolean;
  /** A setting nincc's layer cannot express (`count_include_pad = false`, `groups = 2`, …). */
  readonly unsupported?: string;
  readonly tensors: Readonly<Partial<Record<'weight' | 'bias' | 'running_mean' | 'running_var' | 'running_std', T7Tensor>>>;
}

/** Reads a module's fields; a missing or mistyped field is an error naming the module. */
export function viewModule(m: FileModule): ModuleView {
  const o = m.object;
  const kind = classKind(o.className);
  const where = `module ${positionLabel(m.position)} (${o.className})`;
  const num = (name: string, fallback?: number): number => {
    const v = o.get(name);
    if (typeof v === 'number') return v;
    if (v === undefined && fallback !== undefined) return fallback;
    throw new T7ImportError(`${where} has ${v === undefined ? 'no field' : `${describeValue(v)} as field`} ${name}, expected a number`);
  };
  const flag = (name: string, fallback: boolean): boolean => {
    const v = o.get(name);
    return typeof v === 'boolean' ? v : fallback;
  };
  const tensors: Partial<Record<'weight' | 'bias' | 'running_mean' | 'running_var' | 'running_std', T7Tensor>> = {};
  for (const name of ['weight', 'bias', 'running_mean', 'running_var', 'running_std'] as const) {
    const v = o.get(name);
    if (v instanceof T7Tensor && v.numel > 0) tensors[name] = v;
    else if (v !== undefined && !(v instanceof T7Tensor)) throw new T7ImportError(`${where} has ${describeValue(v)} as field ${name}, expected a tensor`);
  }
  let op: LayerOp | undefined;
  let ceilMode = false;
  let unsupported: string | undefined;
  switch (kind) {
    case 'conv': {
      // Old SpatialConvolutionMM files have a single `padding`; Torch's padH defaults to padW.
      const padW = num('padW', num('padding', 0));
      op = { kind, attrs: { nIn: num('nInputPlane'), nOut: num('nOutputPlane'), kW: num('kW'), kH: num('kH'), dW: num('dW', 1), dH: num('dH', 1), padW, padH: num('padH', padW), bias: tensors.bias !== undefined } };
      if (num('groups', 1) !== 1) unsupported = `groups = ${num('groups')}`;
      break;
    }
    case 'bn': {
      const stats = tensors.running_mean ?? tensors.running_var ?? tensors.running_std ?? tensors.weight;
      if (!stats) throw new T7ImportError(`${where} has neither running statistics nor weights`);
      op = { kind, attrs: { nFeatures: stats.numel, eps: num('eps', 1e-5), momentum: num('momentum', 0.1), affine: flag('affine', tensors.weight !== undefined) } };
      break;
    }
    case 'maxpool':
    case 'avgpool': {
      const attrs = { kW: num('kW'), kH: num('kH'), dW: num('dW', kind === 'maxpool' ? num('kW') : 1), dH: num('dH', kind === 'maxpool' ? num('kH') : 1), padW: num('padW', 0), padH: num('padH', 0) };
      ceilMode = flag('ceil_mode', false);
      op = { kind, attrs: ceilMode ? { ...attrs, ceil: true } : attrs };
      const padded = attrs.padW !== 0 || attrs.padH !== 0;
      if (kind === 'avgpool' && padded && !flag('count_include_pad', true)) unsupported = 'count_include_pad = false';
      if (kind === 'avgpool' && !flag('divide', true)) unsupported = 'divide = false (a sum, not an average)';
      break;
    }
    case 'view': {
      const size = o.get('size');
      if (!(size instanceof T7Storage || size instanceof T7Tensor)) throw new T7ImportError(`${where} has ${describeValue(size)} as field size, expected a torch.LongStorage`);
      op = { kind, attrs: { sizes: size.toNumbers() } };
      break;
    }
    case 'linear': {
      const w = tensors.weight;
      if (!w || w.sizes.length !== 2) throw new T7ImportError(`${where} has ${describeValue(w ?? null)} as weight, expected a 2-D tensor`);
      op = { kind, attrs: { nIn: w.sizes[1], nOut: w.sizes[0], bias: tensors.bias !== undefined } };
      break;
    }
    case 'dropout':
      op = { kind, attrs: { p: num('p', 0.5) } };
      break;
    case 'relu':
      // nn.ReLU is nn.Threshold(0, 0); anything else is a different function.
      if (num('threshold', 0) !== 0 || num('val', 0) !== 0) unsupported = `threshold ${num('threshold', 0)}, value ${num('val', 0)}`;
      op = { kind, attrs: {} };
      break;
    case 'lrn':
      // nn.SpatialCrossMapLRN(size, alpha, beta, k); cudnn's keeps the same fields.
      op = { kind, attrs: { size: num('size'), alpha: num('alpha', 0.0001), beta: num('beta', 0.75), k: num('k', 1) } };
      break;
    case 'threshold':
      op = { kind, attrs: { th: num('threshold', 1e-6), v: num('val', 0) } };
      break;
    case 'zeropad':
      op = { kind, attrs: { l: num('pad_l'), r: num('pad_r'), t: num('pad_t'), b: num('pad_b') } };
      break;
    case 'logsoftmax':
    case 'softmax':
    case 'tanh':
    case 'sigmoid':
    case 'identity':
      op = { kind, attrs: {} };
      break;
    case undefined:
      break;
  }
  const printed = op ? o.className + opString(op).slice(layerSpecs[op.kind].torch.length) : o.className;
  // Torch prints BN, LRN and Threshold without their constructor arguments: messages add them.
  const withArguments = op?.kind === 'bn' || op?.kind === 'lrn' || op?.kind === 'threshold';
  const described = op && withArguments ? `${o.className}(${layerArguments(op).join(', ')})` : ceilMode ? `${printed}:ceil()` : printed;
  return { className: o.className, ...(op ? { op } : {}), printed, described, ceilMode, ...(unsupported ? { unsupported } : {}), tensors };
}

/** Torch's print line for an op, through the compiler's own printer. */
const opString = (op: LayerOp) => torchModuleString(op);

/** The layer's arguments in spec order, trailing ones equal to Torch's defaults left out (conv(96, 96, 1, 1)). */
export function layerArguments(op: LayerOp): string[] {
  let args: number[];
  switch (op.kind) {
    case 'conv': {
      const a = op.attrs;
      args = [a.nIn, a.nOut, a.kW, a.kH, a.dW, a.dH, a.padW, a.padH];
      break;
    }
    case 'bn':
      args = [op.attrs.nFeatures, op.attrs.eps, op.attrs.momentum, op.attrs.affine ? 1 : 0];
      break;
    case 'maxpool':
    case 'avgpool': {
      const a = op.attrs;
      args = [a.kW, a.kH, a.dW, a.dH, a.padW, a.padH];
      break;
    }
    case 'view':
      return op.attrs.sizes.map(String);
    case 'linear':
      args = [op.attrs.nIn, op.attrs.nOut, op.attrs.bias ? 1 : 0];
      break;
    case 'dropout':
      args = [op.attrs.p];
      break;
    case 'lrn':
      args = [op.attrs.size, op.attrs.alpha, op.attrs.beta, op.attrs.k];
      break;
    case 'threshold':
      args = [op.attrs.th, op.attrs.v];
      break;
    case 'zeropad':
      args = [op.attrs.l, op.attrs.r, op.attrs.t, op.attrs.b];
      break;
    default:
      return [];
  }
  const specs = layerSpecs[op.kind].args;
  const full = [...args];
  while (args.length > 0) {
    const last = specs[args.length - 1];
    if (!last.default || last.default(full) !== args[args.length - 1]) break;
    args.pop();
  }
  return args.map(String);
}

/** A layer as the spec writes it: `conv(96, 128, 1, 1)`, `relu`. */
export function specLayerString(op: LayerOp): string {
  const args = layerArguments(op);
  const call = layerSpecs[op.kind].args.length === 0 ? op.kind : `${op.kind}(${args.join(', ')})`;
  if ((op.kind === 'maxpool' || op.kind === 'avgpool') && op.attrs.ceil) return `${call}:ceil()`;
  return op.kind === 'conv' && !op.attrs.bias ? `${call}:noBias()` : call;
}

/** Containers whose children print as branches (Torch's ConcatTable/Concat:__tostring__), as network-tree.ts reads them. */
const BRANCHING = new Set(['nn.ConcatTable', 'nn.Concat', 'nn.DepthConcat']);

/** The file's network in Torch's print format: nested Sequentials indented, containers of branches as Torch draws them. */
export function torchPrintNetwork(net: Network): string {
  const children = (container: T7Object | T7Table) => (container.get('modules') as T7Table).list() as T7Object[];
  const render = (m: T7Object | T7Table, position: readonly number[]): string => {
    if (m instanceof T7Table || m.className === 'nn.Sequential') return sequence(m, position);
    if (BRANCHING.has(m.className)) return branches(m, position);
    return viewModule({ position, object: m }).printed;
  };
  const sequence = (container: T7Object | T7Table, prefix: readonly number[]): string => {
    const list = children(container);
    const arrows = list.map((_, i) => ` -> (${i + 1})`).join('');
    const lines = ['nn.Sequential {', `  [input${arrows} -> output]`];
    list.forEach((m, i) => lines.push(`  (${i + 1}): ${render(m, [...prefix, i + 1]).replace(/\n/g, '\n  ')}`));
    lines.push('}');
    return lines.join('\n');
  };
  const branches = (container: T7Object, prefix: readonly number[]): string => {
    const list = children(container);
    const lines = [`${container.className} {`, '  input'];
    list.forEach((m, i) => {
      const last = i === list.length - 1;
      lines.push(`  ${last ? '   `-> ' : '  |`-> '}(${i + 1}): ${render(m, [...prefix, i + 1]).replace(/\n/g, `\n  ${last ? '       ' : '  |    '}`)}`);
    });
    lines.push('     ... -> output', '}');
    return lines.join('\n');
  };
  return net.root instanceof T7Table || net.root.className === 'nn.Sequential' ? render(net.root, []) : viewModule(net.modules[0]).printed;
}
