// Whether a model takes its images as uint8 NHWC pixels, normalised by its first conv while loading
// (issue #20): which models can, and the consts that tell that conv's kernels how to normalise.
import type { ShapedModel } from '../ir.js';
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

/** Why the model cannot take uint8 images, or undefined when it can: only its first layer, a conv, reads the input. */
export function u8InputProblem(m: ShapedModel): string | undefined {
  const first = m.layers[0];
  if (!first || first.kind !== 'conv') return `its first layer is ${first ? `a ${first.kind}` : 'missing'}, not a conv: uint8 images are normalised by the first conv`;
  const others = m.layers.filter((_, i) => i > 0 && inputsOf(m.layers, i).includes(-1));
  if (others.length > 0) return `layer ${others[0].index} (${others[0].kind}) reads the images too: only the first conv may read uint8 images`;
  if (m.input.length !== 3) return `its input is ${m.input.join('x')}, not C×H×W images`;
  return undefined;
}

/** The stem normalisation of a model that takes uint8 images: the spec's transform, else mean 0, std 1 (values in [0, 1]). */
export function u8Stem(m: ShapedModel): U8Stem {
  const problem = u8InputProblem(m);
  if (problem) throw new Error(`${m.file}: model ${m.name} cannot take uint8 images: ${problem}`);
  const channels = m.input[0];
  return m.transform ?? { mean: new Array<number>(channels).fill(0), std: new Array<number>(channels).fill(1) };
}
