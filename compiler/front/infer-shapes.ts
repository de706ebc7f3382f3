// Pass: Torch7's shape rules layer by layer and block by block, with parameter and multiply-accumulate counts per image.
import { error, formatPosition, type Diagnostic, type Note } from '../../grammar/diagnostics.js';
import { callSiteNote, type Gaps } from './expand-defs.js';
import { isBlock, type Block, type NetLayer, type NetNode, type PoolAttrs, type Shape, type ShapedBlock, type ShapedNetNode } from '../ir.js';
import { keepsShape } from './layers.js';
import { exceeds, maxElementsPerImage, maxMacs, maxParams, product } from './size-limits.js';

export interface ShapeResult {
  readonly nodes: readonly ShapedNetNode[];
  readonly output?: Shape;
  readonly diagnostics: readonly Diagnostic[];
}

const show = (s: Shape) => s.join('x');
const elements = (s: Shape) => s.reduce((a, b) => a * b, 1);

/** Torch's floor-mode output size; the same formula for conv and both pools. */
export function outputSize(input: number, kernel: number, stride: number, pad: number): number {
  return Math.floor((input + 2 * pad - kernel) / stride) + 1;
}

/**
 * Torch's pooling output size (THNN SpatialMaxPooling/SpatialAveragePooling): floor or, after `:ceil()`, ceil of
 * the window count; when the pool is padded on either side (`padded`: padW or padH, as THNN tests it), a last
 * window that would start past the input and its left padding is dropped, in both directions.
 */
export function poolOutputSize(input: number, kernel: number, stride: number, pad: number, ceil: boolean, padded = pad > 0): number {
  const span = input + 2 * pad - kernel;
  const size = (ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  return padded && (size - 1) * stride >= input + pad ? size - 1 : size;
}

type Step = { output: Shape; params: number; macs: number } | { problem: Diagnostic };

/** The layer whose output feeds the next one (undefined: the model input), told as a note and in words. */
interface Source {
  readonly note: Note;
  readonly name: string;
}

/** Where a node list's input comes from when no node before it in the list made it: the model input or a branch's. */
type Origin = (input: Shape) => Source;
const modelInput: Origin = (input) => ({ note: { message: `the input ${show(input)} is the model input` }, name: 'the model input' });

/** `branch 2 of residual at m.model:12:3`: said of every diagnostic from inside a branch. */
const branchWords = (b: Block<unknown>, i: number) => `branch ${i + 1} of ${b.kind} at ${formatPosition(b.branches[i].span)}`;

/** What a note needs of the node before: also known for one whose output is only a recovery's guess. */
type Producer = Pick<NetNode, 'kind' | 'span' | 'callSites'> & { readonly input: Shape };

function sourceOf(previous: Producer | undefined, input: Shape, origin: Origin): Source {
  if (!previous) return origin(input);
  // A layer written in a def is placed in the network by the outermost call that expanded it.
  const outer = previous.callSites[previous.callSites.length - 1];
  const where = `${previous.kind} at ${formatPosition(previous.span)}${outer ? ` (${callSiteNote(outer).message})` : ''}`;
  const message = previous.kind === 'view' ? `${where} turns ${show(previous.input)} into ${show(input)}` : `the input ${show(input)} comes from ${where}`;
  return { note: { message, span: previous.span }, name: previous.kind };
}

function spatial(l: NetLayer, input: Shape, k: [number, number], d: [number, number], p: [number, number], channels: number, from: Source, ceil = false): Step {
  const notes = l.callSites.map(callSiteNote);
  if (input.length !== 3) return { problem: error('E035', `${l.kind} expects a CxHxW input, got ${input.length === 1 ? `${input[0]} flat features` : show(input)}`, l.span, [...notes, from.note]) };
  const [, h, w] = input;
  const padded = p[0] > 0 || p[1] > 0;
  const oh = poolOutputSize(h, k[1], d[1], p[1], ceil, padded);
  const ow = poolOutputSize(w, k[0], d[0], p[0], ceil, padded);
  if (oh < 1 || ow < 1) {
    // Name the failing side with the argument names the user wrote (kW before kH, as in Torch).
    const side = (what: string, size: number, i: 0 | 1, s: string) => `input ${what} ${size} is too small for k${s} ${k[i]} with d${s} ${d[i]} and pad${s} ${p[i]}`;
    const why = [...(oh < 1 ? [side('height', h, 1, 'H')] : []), ...(ow < 1 ? [side('width', w, 0, 'W')] : [])].join(', and ');
    const formula = { message: 'output size = floor((input + 2*pad - kernel) / stride) + 1 must be at least 1' };
    return { problem: error('E031', `${l.kind} output would be ${oh}x${ow} (HxW): ${why}`, l.span, [...notes, formula]) };
  }
  return { output: [channels, oh, ow], params: 0, macs: 0 };
}

function pool(l: NetLayer, a: PoolAttrs, input: Shape, from: Source): Step {
  // Torch asserts kW/2 >= padW: padding beyond half the window would make windows of only padding.
  if (a.padW > Math.floor(a.kW / 2) || a.padH > Math.floor(a.kH / 2)) {
    return {
      problem: error('E032', `${l.kind} pad ${a.padW},${a.padH} is larger than half the kernel ${a.kW}x${a.kH} (at most ${Math.floor(a.kW / 2)},${Math.floor(a.kH / 2)})`, l.span, l.callSites.map(callSiteNote)),
    };
  }
  return spatial(l, input, [a.kW, a.kH], [a.dW, a.dH], [a.padW, a.padH], input[0], from, a.ceil === true);
}

function inferLayer(l: NetLayer, input: Shape, from: Source): Step {
  const notes = l.callSites.map(callSiteNote);
  const traced = [...notes, from.note];
  switch (l.kind) {
    case 'conv': {
      const a = l.attrs;
      if (input.length === 3 && input[0] !== a.nIn) return { problem: error('E030', `conv expects ${a.nIn} input planes, got ${input[0]}`, l.span, traced) };
      const s = spatial(l, input, [a.kW, a.kH], [a.dW, a.dH], [a.padW, a.padH], a.nOut, from);
      if ('problem' in s) return s;
      const weights = a.nOut * a.nIn * a.kW * a.kH;
      return { output: s.output, params: weights + (a.bias ? a.nOut : 0), macs: weights * s.output[1] * s.output[2] };
    }
    case 'bn': {
      const a = l.attrs;
      if (input.length !== 3) return { problem: error('E035', `bn (SpatialBatchNormalization) expects a CxHxW input, got ${show(input)}`, l.span, traced) };
      if (input[0] !== a.nFeatures) return { problem: error('E030', `bn expects ${a.nFeatures} input planes, got ${input[0]}`, l.span, traced) };
      return { output: input, params: a.affine ? 2 * a.nFeatures : 0, macs: 0 };
    }
    case 'maxpool':
    case 'avgpool':
      return pool(l, l.attrs, input, from);
    case 'view': {
      const total = elements(input);
      const sizes = l.attrs.sizes;
      const free = sizes.filter((s) => s === -1).length;
      if (free > 1) return { problem: error('E033', 'view may have at most one -1', l.span, notes) };
      const known = elements(sizes.filter((s) => s !== -1));
      if (free === 1 ? total % known !== 0 : known !== total) {
        return { problem: error('E033', `view(${sizes.join(', ')}) does not fit the ${total} elements of a ${show(input)} input`, l.span, traced) };
      }
      return { output: sizes.map((s) => (s === -1 ? total / known : s)), params: 0, macs: 0 };
    }
    case 'linear': {
      const a = l.attrs;
      if (input.length !== 1) return { problem: error('E035', `linear expects flat features, got ${show(input)} (add view(-1) before it)`, l.span, traced) };
      if (input[0] !== a.nIn) return { problem: error('E033', `linear(${a.nIn}, ${a.nOut}) expects ${a.nIn} features, ${from.name} gives ${input[0]}`, l.span, traced) };
      return { output: [a.nOut], params: a.nIn * a.nOut + (a.bias ? a.nOut : 0), macs: a.nIn * a.nOut };
    }
    case 'logsoftmax':
    case 'softmax':
      if (input.length !== 1) return { problem: error('E035', `${l.kind} expects flat features, got ${show(input)} (add view(-1) before it)`, l.span, traced) };
      return { output: input, params: 0, macs: 0 };
    case 'zeropad': {
      const a = l.attrs;
      if (input.length !== 3) return { problem: error('E035', `zeropad (SpatialZeroPadding) expects a CxHxW input, got ${show(input)}`, l.span, traced) };
      const [c, h, w] = input;
      if (h + a.t + a.b < 1 || w + a.l + a.r < 1) {
        return { problem: error('E031', `zeropad output would be ${h + a.t + a.b}x${w + a.l + a.r} (HxW): input ${h}x${w} is cropped away`, l.span, traced) };
      }
      return { output: [c, h + a.t + a.b, w + a.l + a.r], params: 0, macs: 0 };
    }
    case 'lrn':
      if (input.length !== 3) return { problem: error('E035', `lrn (SpatialCrossMapLRN) expects a CxHxW input, got ${show(input)}`, l.span, traced) };
      return { output: input, params: 0, macs: 0 };
    case 'relu':
    case 'dropout':
    case 'threshold':
    case 'tanh':
    case 'sigmoid':
    case 'identity':
      return { output: input, params: 0, macs: 0 };
  }
}

/** The layer's counts against the exact limits (size-limits.ts), computed again in BigInt for the message. */
function overLimit(l: NetLayer, output: Shape): Diagnostic | undefined {
  const notes = l.callSites.map(callSiteNote);
  if (exceeds(product(output), maxElementsPerImage)) {
    return error('E004', `${l.kind} output ${show(output)} has ${product(output)} elements per image, more than the limit of ${maxElementsPerImage}`, l.span, notes);
  }
  const weights = l.kind === 'conv' ? product([l.attrs.nOut, l.attrs.nIn, l.attrs.kW, l.attrs.kH]) : l.kind === 'linear' ? product([l.attrs.nIn, l.attrs.nOut]) : 0n;
  if (exceeds(weights, maxElementsPerImage)) return error('E004', `${l.kind} has ${weights} weights, more than the limit of ${maxElementsPerImage}`, l.span, notes);
  const macs = l.kind === 'conv' ? weights * product(output.slice(1)) : weights;
  if (exceeds(macs, maxMacs)) return error('E004', `${l.kind} needs ${macs} multiply-accumulates per image, more than 2^53 - 1`, l.span, notes);
  return undefined;
}

/**
 * What the next layer sees after `l` failed on `input`, so that independent errors further on are reported in
 * the same run: a linear's outputs, the input of a layer that keeps its shape, else unknown.
 */
function recover(l: NetLayer, input: Shape): Shape | undefined {
  if (l.kind === 'linear') return [l.attrs.nOut];
  return keepsShape.has(l.kind) ? input : undefined;
}

interface ListResult {
  readonly nodes: ShapedNetNode[];
  readonly output?: Shape; // undefined: unknown after an error
}

/** Shapes a node list (the model's or a branch's) from its input; diagnostics go to `out`. */
function inferList(list: readonly NetNode[], input: Shape, origin: Origin, gaps: Gaps, out: Diagnostic[]): ListResult {
  const listGaps = gaps.get(list) ?? new Set<number>();
  const shaped: ShapedNetNode[] = [];
  let current: Shape | undefined = input;
  // The node whose output `current` is, also when that output is a recovery's guess (named in notes).
  let producer: Producer | undefined;
  const produced = (l: NetNode, from: Shape, output: Shape | undefined) => {
    producer = output ? { kind: l.kind, span: l.span, callSites: l.callSites, input: from } : undefined;
    current = output;
  };
  for (const [i, l] of list.entries()) {
    if (listGaps.has(i)) current = undefined;
    // After an error that leaves the shape unknown, only a linear layer says again what flows on.
    if (!current) {
      produced(l, [], l.kind === 'linear' ? [l.attrs.nOut] : undefined);
      continue;
    }
    const from: Shape = current;
    if (isBlock(l)) {
      const block = inferBlock(l, from, sourceOf(producer, from, origin), gaps, out);
      if (block.node) shaped.push(block.node);
      produced(l, from, block.output);
      continue;
    }
    let step = inferLayer(l, from, sourceOf(producer, from, origin));
    if ('problem' in step && step.problem.code === 'E030' && l.kind === 'conv' && from.length === 3) {
      // The planes are wrong; what the conv does to the height and width may be wrong too, independently.
      out.push(step.problem);
      step = inferLayer(l, [l.attrs.nIn, from[1], from[2]], sourceOf(producer, from, origin));
      if ('problem' in step) out.push(step.problem);
      produced(l, from, 'problem' in step ? undefined : step.output);
      continue;
    }
    if ('problem' in step) {
      out.push(step.problem);
      produced(l, from, recover(l, from));
      continue;
    }
    const limit = overLimit(l, step.output);
    if (limit) {
      out.push(limit);
      produced(l, from, undefined);
      continue;
    }
    const layer: ShapedNetNode = { ...l, input: from, output: step.output, params: step.params, macs: step.macs };
    shaped.push(layer);
    producer = layer;
    current = step.output;
  }
  return { nodes: shaped, ...(current ? { output: current } : {}) };
}

/** How a block merges its branches' outputs: the merged shape, or why branch i does not fit branch 1 (0-based i). */
function merge(kind: Block<unknown>['kind'], outputs: readonly Shape[]): { output: Shape } | { branch: number; why: string } {
  const first = outputs[0];
  for (let i = 1; i < outputs.length; i++) {
    const o = outputs[i];
    if (kind === 'residual' && show(o) !== show(first)) return { branch: i, why: 'the branches of a residual block are added and must give the same shape' };
    if (kind === 'concat' && (o.length !== first.length || show(o.slice(1)) !== show(first.slice(1)))) {
      return { branch: i, why: 'concat joins along channels: the other sizes must agree (depthconcat centres smaller maps in the largest)' };
    }
    if (kind === 'depthconcat' && (o.length !== 3 || first.length !== 3)) return { branch: i, why: 'depthconcat joins CxHxW maps along channels' };
  }
  if (kind === 'residual') return { output: first };
  const channels = outputs.reduce((t, o) => t + o[0], 0);
  if (kind === 'concat') return { output: [channels, ...first.slice(1)] };
  return { output: [channels, Math.max(...outputs.map((o) => o[1])), Math.max(...outputs.map((o) => o[2]))] };
}

/** Shapes each branch from the block's input and merges them; every diagnostic from inside says which branch. */
function inferBlock(b: Block<NetNode>, input: Shape, from: Source, gaps: Gaps, out: Diagnostic[]): { node?: ShapedBlock; output?: Shape } {
  const outer = b.callSites.map(callSiteNote);
  const results = b.branches.map((branch, i) => {
    const inner: Diagnostic[] = [];
    // A branch's first layer reads the block's input: its note says where that came from.
    const before = from.note.message.match(/^the input \S+ (?:of the branch )?(.*)$/);
    const message = (x: Shape) => `the input ${show(x)} of the branch ${before ? before[1] : `is the block's: ${from.note.message}`}`;
    const origin: Origin = (x) => ({ note: { message: message(x), ...(from.note.span ? { span: from.note.span } : {}) }, name: from.name });
    const r = inferList(branch.nodes, input, origin, gaps, inner);
    out.push(...inner.map((d) => ({ ...d, notes: [...(d.notes ?? []), { message: `in ${branchWords(b, i)}`, span: branch.span }] })));
    // After an error inside, the branch's output is at best a recovery's guess: not one to check the merge with.
    return inner.length > 0 ? { nodes: r.nodes } : r;
  });
  const outputs = results.map((r) => r.output);
  const known = outputs.filter((o): o is Shape => o !== undefined);
  if (known.length < outputs.length) return b.kind === 'residual' && known.length > 0 ? { output: known[0] } : {};
  const merged = merge(b.kind, known);
  if ('why' in merged) {
    const i = merged.branch;
    const first = { message: `branch 1 at ${formatPosition(b.branches[0].span)} gives ${show(known[0])}`, span: b.branches[0].span };
    out.push(error('E050', `branch ${i + 1} of ${b.kind} gives ${show(known[i])}, branch 1 gives ${show(known[0])}: ${merged.why}`, b.branches[i].span, [...outer, first]));
    return b.kind === 'residual' ? { output: known[0] } : {};
  }
  if (exceeds(product(merged.output), maxElementsPerImage)) {
    out.push(error('E004', `${b.kind} output ${show(merged.output)} has ${product(merged.output)} elements per image, more than the limit of ${maxElementsPerImage}`, b.span, outer));
    return {};
  }
  const branches = b.branches.map((branch, i) => ({ span: branch.span, nodes: results[i].nodes }));
  const all = branches.flatMap((br) => br.nodes);
  const node: ShapedBlock = {
    ...b,
    branches,
    input,
    output: merged.output,
    params: all.reduce((t, n) => t + n.params, 0),
    macs: all.reduce((t, n) => t + n.macs, 0),
  };
  return { node, output: merged.output };
}

/** `gaps`: for each node list, the positions before which a call failed to expand (expand-defs): the shape there is unknown. */
export function inferShapes(nodes: readonly NetNode[], input: Shape, gaps: Gaps = new Map()): ShapeResult {
  const diagnostics: Diagnostic[] = [];
  const r = inferList(nodes, input, modelInput, gaps, diagnostics);
  if (diagnostics.length === 0 && nodes.length > 0) {
    const params = BigInt(r.nodes.reduce((t, l) => t + l.params, 0)); // each layer's is below 2^31, and so few of them that the sum is exact
    if (exceeds(params, maxParams)) diagnostics.push(error('E004', `the model has ${params} parameters, more than the limit of ${maxParams}`, nodes[nodes.length - 1].span));
  }
  const anyGap = [...gaps.values()].some((g) => g.size > 0);
  return diagnostics.length > 0 || !r.output || anyGap ? { nodes: r.nodes, diagnostics } : { nodes: r.nodes, output: r.output, diagnostics };
}
