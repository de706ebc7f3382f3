// Whether a model takes its images as uint8 NHWC pixels, normalised by its first conv while loading
// (issue #20): which models can, and the consts that tell that conv's kernels how to normalise.
import { error, formatPosition, type Diagnostic } from '../../grammar/diagnostics.js';
import type { ShapedLayer, ShapedModel } from '../ir.js';
import { inputsOf } from './chain.js';

/** The normalisation of a uint8 stem: value v of channel c enters the network as (v/255 − mean[c])/std[c]. */
export interface U8Stem {
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

/** The consts of the stem conv's steps (ops.ts u8Input): present only on the steps that read the images. */
export const stemConsts = (s: U8Stem | undefined) => (s ? { u8Mean: s.mean, u8Std: s.std } : {});

/** The 4-byte elements per image of a u8 buffer of `bytes` bytes (runtime/core counts every space in 4-byte elements). */
export const u8Words = (bytes: number) => Math.ceil(bytes / 4);

/** Why the model cannot take uint8 images and the layer that stands in the way, or undefined when it can. */
function u8InputObstacle(m: ShapedModel): { readonly reason: string; readonly layer?: ShapedLayer } | undefined {
  const first = m.layers[0];
  if (!first || first.kind !== 'conv') return { reason: `its first layer is ${first ? `a ${first.kind}` : 'missing'}, not a conv: uint8 images are normalised by the first conv`, ...(first ? { layer: first } : {}) };
  const others = m.layers.filter((_, i) => i > 0 && inputsOf(m.layers, i).includes(-1));
  if (others.length > 0) return { reason: `layer ${others[0].index} (${others[0].kind}) reads the images too: only the first conv may read uint8 images`, layer: others[0] };
  if (m.input.length !== 3) return { reason: `its input is ${m.input.join('x')}, not C×H×W images`, layer: first };
  return undefined;
}

/** Why the model cannot take uint8 images, or undefined when it can: only its first layer, a conv, reads the input. */
export function u8InputProblem(m: ShapedModel): string | undefined {
  return u8InputObstacle(m)?.reason;
}

/** E091 at the layer that keeps the model from taking uint8 images, for a build that asked for them; undefined when it can. */
export function u8InputDiagnostic(m: ShapedModel): Diagnostic | undefined {
  const o = u8InputObstacle(m);
  if (!o) return undefined;
  const span = o.layer?.span ?? { file: m.file, start: { line: 1, column: 1, offset: 0 }, end: { line: 1, column: 1, offset: 0 } };
  return error('E091', `model ${m.name} cannot take uint8 images (--input u8): ${o.reason}; build it with --input f32`, span);
}

/** The stem normalisation of a model that takes uint8 images: the spec's transform, else mean 0, std 1 (values in [0, 1]). */
export function u8Stem(m: ShapedModel): U8Stem {
  const problem = u8InputDiagnostic(m);
  if (problem) throw new Error(`${formatPosition(problem.span)}: ${problem.message}`);
  const channels = m.input[0];
  return m.transform ?? { mean: new Array<number>(channels).fill(0), std: new Array<number>(channels).fill(1) };
}
