// The front end's one capability check: the network opened into the chain lowering takes (a block's branches
// one after another, each reading the block's input, then the merge: an add or a channel concat), or an error
// at the first block or layer that the device asked for does not lower yet (issue #17). What each device
// lowers is said here and nowhere else.
import { error, type Diagnostic } from '../../grammar/diagnostics.js';
import { callSiteNote } from './expand-defs.js';
import { isBlock, type ShapedBlock, type ShapedLayer, type ShapedModel, type ShapedNetLayer, type ShapedNetNode, type ShapedNetwork } from '../ir.js';
import { layerSpecs } from './layers.js';

export type Device = 'cpu' | 'emu' | 'cuda';
export const DEVICES: readonly Device[] = ['cpu', 'emu', 'cuda'];

/** What lowering and each device's kernels take beyond NIN's chain (conv, bn, relu, floor pools, view, linear, softmaxes, dropout). */
interface Capability {
  readonly layers: ReadonlySet<string>; // the zoo's layers (ZOO_LAYERS)
  readonly ceilPools: boolean;
  readonly blocks: boolean; // residual, concat, and depthconcat whose branches give the same map size
  /** What the training program takes of them (else the build has inference only, and says why: trainingProblem). */
  readonly trains: { readonly layers: ReadonlySet<string>; readonly ceilPools: boolean; readonly blocks: boolean };
}
const ZOO_LAYERS = ['lrn', 'threshold', 'tanh', 'sigmoid', 'identity', 'zeropad'] as const;
const LOWERED_ZOO: ReadonlySet<string> = new Set(ZOO_LAYERS);
const capabilities: Readonly<Record<Device, Capability>> = {
  cpu: { layers: LOWERED_ZOO, ceilPools: true, blocks: true, trains: { layers: LOWERED_ZOO, ceilPools: true, blocks: true } },
  // The CUDA renderers run them all (backends/cuda/zoo.ts, pool.ts), the fused training program
  // (lower/train-fused.ts) included.
  emu: { layers: LOWERED_ZOO, ceilPools: true, blocks: true, trains: { layers: LOWERED_ZOO, ceilPools: true, blocks: true } },
  cuda: { layers: LOWERED_ZOO, ceilPools: true, blocks: true, trains: { layers: LOWERED_ZOO, ceilPools: true, blocks: true } },
};

const trainsAll = (d: Device) => capabilities[d].trains.layers.size === LOWERED_ZOO.size && capabilities[d].trains.ceilPools && capabilities[d].trains.blocks;
const onDevice = (device: Device) => {
  const can = DEVICES.filter(trainsAll);
  return `is not lowered for the ${device} device yet (issue #17): the ${can.join(' and ')} device${can.length === 1 ? '' : 's'} can build, train and run it`;
};

/** Why the device cannot lower this node (undefined: it can). */
function whyNot(n: ShapedNetNode, device: Device): string | undefined {
  const can = capabilities[device];
  if (isBlock(n)) {
    if (!can.blocks) return `a ${n.kind} block ${onDevice(device)}`;
    return undefined;
  }
  if ((ZOO_LAYERS as readonly string[]).includes(n.kind) && !can.layers.has(n.kind)) return `${n.kind} (${layerSpecs[n.kind].torch}) ${onDevice(device)}`;
  if ((n.kind === 'maxpool' || n.kind === 'avgpool') && n.attrs.ceil && !can.ceilPools) return `${n.kind}:ceil() (ceil mode) ${onDevice(device)}`;
  return undefined;
}

/** The first node (depth first, in Torch's order) that the device cannot lower, and why. */
function firstProblem(nodes: readonly ShapedNetNode[], device: Device): Diagnostic | undefined {
  for (const n of nodes) {
    const why = whyNot(n, device);
    if (why) return error('E090', why, n.span, n.callSites.map(callSiteNote));
    if (isBlock(n)) {
      for (const b of n.branches) {
        const inner = firstProblem(b.nodes, device);
        if (inner) return inner;
      }
    }
  }
  return undefined;
}

/** Appends a node list to the chain from the value at `at` (a position in `out`; −1 the model's input); returns where its output is. */
function open(nodes: readonly ShapedNetNode[], at: number, out: ShapedLayer[]): number {
  for (const n of nodes) {
    if (isBlock(n)) at = openBlock(n, at, out);
    else {
      out.push(chainLayer(n, at, out.length));
      at = out.length - 1;
    }
  }
  return at;
}

function chainLayer(n: ShapedNetLayer, at: number, position: number): ShapedLayer {
  const from = at === position - 1 ? {} : { from: [at] };
  return { ...n, index: position + 1, ...from };
}

function openBlock(n: ShapedBlock, at: number, out: ShapedLayer[]): number {
  const shapeAt = (p: number) => (p < 0 ? n.input : out[p].output);
  const ends = n.branches.map((b, i) => {
    const end = open(b.nodes, at, out);
    return n.kind === 'depthconcat' ? centred(n, i, end, shapeAt(end), out) : end;
  });
  out.push({
    kind: n.kind === 'residual' ? 'add' : 'concat',
    attrs: {},
    index: out.length + 1,
    span: n.span,
    callSites: n.callSites,
    from: ends,
    input: shapeAt(ends[0]),
    output: n.output,
    params: 0,
    macs: 0,
  });
  return out.length - 1;
}

/**
 * A depthconcat branch's map centred in the block's larger H×W with a zero border (nn.DepthConcat: the
 * output zeroed, each branch copied at start = ⌊(size − own)/2⌋, so an odd difference leaves the extra
 * row/column below/right): a zeropad layer after the branch's end, whose backward crops the gradient back.
 * Returns where the branch's (centred) output is.
 */
function centred(n: ShapedBlock, branch: number, end: number, shape: readonly number[], out: ShapedLayer[]): number {
  const [C, h, w] = shape;
  const [, H, W] = n.output;
  if (h === H && w === W) return end;
  const t = Math.floor((H - h) / 2), l = Math.floor((W - w) / 2);
  out.push({
    kind: 'zeropad',
    attrs: { l, r: W - w - l, t, b: H - h - t },
    index: out.length + 1,
    span: n.branches[branch].span,
    callSites: n.callSites,
    ...(end === out.length - 1 ? {} : { from: [end] }),
    input: [C, h, w],
    output: [C, H, W],
    params: 0,
    macs: 0,
  });
  return out.length - 1;
}

/** The network as the chain lowering takes for `device`, or the E090 at the first node that device does not lower. */
export function lowerableChain(net: ShapedNetwork, device: Device = 'cpu'): { model: ShapedModel } | { problem: Diagnostic } {
  const problem = firstProblem(net.nodes, device);
  if (problem) return { problem };
  const layers: ShapedLayer[] = [];
  open(net.nodes, -1, layers);
  const { nodes, ...header } = net;
  return { model: { ...header, layers, ...(nodes.some(isBlock) ? { network: nodes } : {}) } };
}

/** Whether the device's training program does not take the layer. */
const untrained = (l: ShapedLayer, device: Device) => {
  const t = capabilities[device].trains;
  if (l.kind === 'add' || l.kind === 'concat') return !t.blocks;
  if ((l.kind === 'maxpool' || l.kind === 'avgpool') && l.attrs.ceil === true) return !t.ceilPools;
  return (ZOO_LAYERS as readonly string[]).includes(l.kind) && !t.layers.has(l.kind);
};

/**
 * Why the device's training program cannot be lowered for the model (plan.json's `untrainable`: the build
 * has inference only), naming the first layer it does not take; undefined when it can.
 */
export function trainingProblem(model: ShapedModel, device: Device): string | undefined {
  const l = model.layers.find((x) => untrained(x, device));
  if (!l) return undefined;
  const what = l.kind === 'add' ? 'a residual block' : l.kind === 'concat' ? 'a concat block' : l.kind === 'maxpool' || l.kind === 'avgpool' ? `${l.kind}:ceil()` : l.kind;
  const others = DEVICES.filter(trainsAll);
  return `${what} at ${l.span.file}:${l.span.start.line}:${l.span.start.column} is not lowered for training on the ${device} device yet (issue #17; inference is, and the ${others.join(' and ')} device trains it)`;
}

/** The first layer of an opened chain that `device` does not lower, as `file:line:col: why` (buildArtifact's check for callers that skipped compileSpec's). */
export function deviceProblem(model: ShapedModel, device: Device): string | undefined {
  const can = capabilities[device];
  for (const l of model.layers) {
    const zoo = (ZOO_LAYERS as readonly string[]).includes(l.kind) && !can.layers.has(l.kind);
    const block = (l.kind === 'add' || l.kind === 'concat') && !can.blocks;
    const ceil = (l.kind === 'maxpool' || l.kind === 'avgpool') && l.attrs.ceil === true && !can.ceilPools;
    if (zoo || block || ceil) {
      const what = block ? `a block (its ${l.kind === 'add' ? 'residual add' : 'channel concat'})` : ceil ? `${l.kind}:ceil() (ceil mode)` : l.kind;
      return `${l.span.file}:${l.span.start.line}:${l.span.start.column}: ${what} ${onDevice(device)}`;
    }
  }
  return undefined;
}
