// The dataflow of an opened chain (front/lowerable.ts): which layer outputs each layer reads, and which
// values the backward needs a gradient for. A chain written without blocks reads the layer before, always.
import type { ShapedLayer } from '../ir.js';

/** The positions in `layers` of the values layer i reads (−1: the model's input), in its inputs' order. */
export const inputsOf = (layers: readonly ShapedLayer[], i: number): readonly number[] => layers[i].from ?? [i - 1];

/** How many reads of each layer's output there are (the last layer's: the program output, not counted). */
export function readers(layers: readonly ShapedLayer[]): number[] {
  const count = layers.map(() => 0);
  layers.forEach((_, i) => inputsOf(layers, i).forEach((p) => p >= 0 && count[p]++));
  return count;
}

/** For each layer: does the loss's gradient with respect to its output reach a parameter (it or a layer before it has some)? */
export function needsGradient(layers: readonly ShapedLayer[]): boolean[] {
  const need: boolean[] = [];
  layers.forEach((l, i) => need.push(l.params > 0 || inputsOf(layers, i).some((p) => p >= 0 && need[p])));
  return need;
}

/** The single input of layer i (a layer that is no merge). */
export function soleInput(layers: readonly ShapedLayer[], i: number): number {
  const from = inputsOf(layers, i);
  if (from.length !== 1) throw new Error(`internal error: layer ${layers[i].index} (${layers[i].kind}) reads ${from.length} values`);
  return from[0];
}
