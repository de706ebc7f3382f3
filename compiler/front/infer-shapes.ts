// Pass: Torch7's shape rules layer by layer, with parameter and multiply-accumulate counts per image.
import { error, formatPosition, type Diagnostic, type Note } from '../../grammar/diagnostics.js';
import { callSiteNote } from './expand-defs.js';
import type { Layer, PoolAttrs, Shape, ShapedLayer } from '../ir.js';
import { exceeds, maxElementsPerImage, maxMacs, maxParams, product } from './size-limits.js';

export interface ShapeResult {
  readonly layers: readonly ShapedLayer[];
  readonly output?: Shape;
  readonly diagnostics: readonly Diagnostic[];
}

const show = (s: Shape) => s.join('x');
const elements = (s: Shape) => s.reduce((a, b) => a * b, 1);

/** Torch's floor-mode output size; the same formula for conv and both pools. */
export function outputSize(input: number, kernel: number, stride: number, pad: number): number {
  return Math.floor((input + 2 * pad - kernel) / stride) + 1;
}

type Step = { output: Shape; params: number; macs: number } | { problem: Diagnostic };

/** The layer whose output feeds the next one (undefined: the model input), told as a note and in words. */
interface Source {
  readonly note: Note;
  readonly name: string;
}

function sourceOf(previous: ShapedLayer | undefined, input: Shape): Source {
  if (!previous) return { note: { message: `the input ${show(input)} is the model input` }, name: 'the model input' };
  // A layer written in a def is placed in the network by the outermost call that expanded it.
  const outer = previous.callSites[previous.callSites.length - 1];
  const where = `${previous.kind} at ${formatPosition(previous.span)}${outer ? ` (${callSiteNote(outer).message})` : ''}`;
  const message = previous.kind === 'view' ? `${where} turns ${show(previous.input)} into ${show(input)}` : `the input ${show(input)} comes from ${where}`;
  return { note: { message, span: previous.span }, name: previous.kind };
}

function spatial(l: Layer, input: Shape, k: [number, number], d: [number, number], p: [number, number], channels: number, from: Source): Step {
  const notes = l.callSites.map(callSiteNote);
  if (input.length !== 3) return { problem: error('E035', `${l.kind} expects a CxHxW input, got ${input.length === 1 ? `${input[0]} flat features` : show(input)}`, l.span, [...notes, from.note]) };
  const [, h, w] = input;
  const oh = outputSize(h, k[1], d[1], p[1]);
  const ow = outputSize(w, k[0], d[0], p[0]);
  if (oh < 1 || ow < 1) {
    // Name the failing side with the argument names the user wrote (kW before kH, as in Torch).
    const side = (what: string, size: number, i: 0 | 1, s: string) => `input ${what} ${size} is too small for k${s} ${k[i]} with d${s} ${d[i]} and pad${s} ${p[i]}`;
    const why = [...(oh < 1 ? [side('height', h, 1, 'H')] : []), ...(ow < 1 ? [side('width', w, 0, 'W')] : [])].join(', and ');
    const formula = { message: 'output size = floor((input + 2*pad - kernel) / stride) + 1 must be at least 1' };
    return { problem: error('E031', `${l.kind} output would be ${oh}x${ow} (HxW): ${why}`, l.span, [...notes, formula]) };
  }
  return { output: [channels, oh, ow], params: 0, macs: 0 };
}

function pool(l: Layer, a: PoolAttrs, input: Shape, from: Source): Step {
  // Torch asserts kW/2 >= padW: padding beyond half the window would make windows of only padding.
  if (a.padW > Math.floor(a.kW / 2) || a.padH > Math.floor(a.kH / 2)) {
    return {
      problem: error('E032', `${l.kind} pad ${a.padW},${a.padH} is larger than half the kernel ${a.kW}x${a.kH} (at most ${Math.floor(a.kW / 2)},${Math.floor(a.kH / 2)})`, l.span, l.callSites.map(callSiteNote)),
    };
  }
  return spatial(l, input, [a.kW, a.kH], [a.dW, a.dH], [a.padW, a.padH], input[0], from);
}

function inferLayer(l: Layer, input: Shape, from: Source): Step {
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
    case 'relu':
    case 'dropout':
      return { output: input, params: 0, macs: 0 };
  }
}

/** The layer's counts against the exact limits (size-limits.ts), computed again in BigInt for the message. */
function overLimit(l: Layer, output: Shape): Diagnostic | undefined {
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
function recover(l: Layer, input: Shape): Shape | undefined {
  if (l.kind === 'linear') return [l.attrs.nOut];
  // bn, relu, dropout and the softmaxes pass their input on unchanged, whatever they declared.
  if (l.kind === 'bn' || l.kind === 'relu' || l.kind === 'dropout' || l.kind === 'logsoftmax' || l.kind === 'softmax') return input;
  return undefined;
}

/** `gaps`: 0-based indices before which a call failed to expand (expand-defs): the shape there is unknown. */
export function inferShapes(layers: readonly Layer[], input: Shape, gaps: ReadonlySet<number> = new Set()): ShapeResult {
  const shaped: ShapedLayer[] = [];
  const diagnostics: Diagnostic[] = [];
  let current: Shape | undefined = input;
  // The layer whose output `current` is, also when that output is a recovery's guess (named in notes).
  let producer: ShapedLayer | undefined;
  const produced = (l: Layer, from: Shape, output: Shape | undefined) => {
    producer = output ? { ...l, input: from, output, params: 0, macs: 0 } : undefined;
    current = output;
  };
  for (const [i, l] of layers.entries()) {
    if (gaps.has(i)) current = undefined;
    // After an error that leaves the shape unknown, only a linear layer says again what flows on.
    if (!current) {
      produced(l, [], l.kind === 'linear' ? [l.attrs.nOut] : undefined);
      continue;
    }
    const from: Shape = current;
    let step = inferLayer(l, from, sourceOf(producer, from));
    if ('problem' in step && step.problem.code === 'E030' && l.kind === 'conv' && from.length === 3) {
      // The planes are wrong; what the conv does to the height and width may be wrong too, independently.
      diagnostics.push(step.problem);
      step = inferLayer(l, [l.attrs.nIn, from[1], from[2]], sourceOf(producer, from));
      if ('problem' in step) diagnostics.push(step.problem);
      produced(l, from, 'problem' in step ? undefined : step.output);
      continue;
    }
    if ('problem' in step) {
      diagnostics.push(step.problem);
      produced(l, from, recover(l, from));
      continue;
    }
    const limit = overLimit(l, step.output);
    if (limit) {
      diagnostics.push(limit);
      produced(l, from, undefined);
      continue;
    }
    const layer: ShapedLayer = { ...l, input: from, output: step.output, params: step.params, macs: step.macs };
    shaped.push(layer);
    producer = layer;
    current = step.output;
  }
  if (diagnostics.length === 0) {
    const params = BigInt(shaped.reduce((t, l) => t + l.params, 0)); // each layer's is below 2^31: the sum is exact
    if (exceeds(params, maxParams)) diagnostics.push(error('E004', `the model has ${params} parameters, more than the limit of ${maxParams}`, layers[layers.length - 1].span));
  }
  return diagnostics.length > 0 || !current || gaps.size > 0 ? { layers: shaped, diagnostics } : { layers: shaped, output: current, diagnostics };
}
