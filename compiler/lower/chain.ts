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

/**
 * The residual add that the kernel ending at position i (a conv group at inference, a BN in cpu training)
 * can take into its epilogue: a two-input add that is i's only reader and comes right after it (past an
 * identity branch written after i's, which only the add reads), whose other input (through nn.Identity)
 * was computed before the kernel's first layer, `headAt`: the shortcut. Its position `at`, or undefined.
 */
export function closingAdd(layers: readonly ShapedLayer[], reads: readonly number[], headAt: number, i: number): { at: number; shortcut: number } | undefined {
  if (reads[i] !== 1) return undefined;
  let at = i + 1;
  while (at < layers.length && layers[at].kind === 'identity' && reads[at] === 1) at++;
  const from = at < layers.length && layers[at].kind === 'add' ? inputsOf(layers, at) : [];
  if (from.length !== 2 || !from.includes(i)) return undefined;
  for (let k = i + 1; k < at; k++) if (!from.includes(k)) return undefined;
  let shortcut = from.find((p) => p !== i);
  while (shortcut !== undefined && shortcut >= 0 && layers[shortcut].kind === 'identity') shortcut = inputsOf(layers, shortcut)[0];
  return shortcut !== undefined && shortcut < headAt ? { at, shortcut } : undefined;
}

/** Whether layer at + 1 is a ReLU that is the only reader of layer at's output (a block's ReLU after its add). */
export const reluFollows = (layers: readonly ShapedLayer[], reads: readonly number[], at: number): boolean =>
  layers[at + 1]?.kind === 'relu' && reads[at] === 1 && inputsOf(layers, at + 1).join() === String(at);

/** Whether the ReLU right after position i is i's only reader (a block's ReLU, which the add's pass can apply). */
export function soleReluAfter(layers: readonly ShapedLayer[], reads: readonly number[], i: number): boolean {
  return layers[i + 1]?.kind === 'relu' && reads[i] === 1 && inputsOf(layers, i + 1).join() === String(i);
}

/**
 * The position of the first layer that reads the two-input residual add at i (or the block's ReLU that alone reads
 * it), in chain order, which is the order the programs run their steps: where that is a conv, the fused training
 * program may leave the add to it (lower/train-fused.ts addInNextConv). Undefined when nothing reads it.
 */
export function firstReaderOfAdd(layers: readonly ShapedLayer[], i: number): number | undefined {
  const from = inputsOf(layers, i);
  if (layers[i].kind !== 'add' || from.length !== 2 || from[0] === from[1]) return undefined;
  const tail = soleReluAfter(layers, readers(layers), i) ? i + 1 : i;
  const first = layers.findIndex((_, q) => q > tail && inputsOf(layers, q).includes(tail));
  return first < 0 ? undefined : first;
}

/**
 * The position of the average pool that alone reads the two-input residual add at i (or the block's ReLU that
 * alone reads it): the fused training program leaves such an add to that pool, the sum never stored
 * (lower/train-fused.ts, docs/design.md §4: a ResNet's last block). Undefined when there is none.
 */
export function poolTakingAdd(layers: readonly ShapedLayer[], i: number): number | undefined {
  const reads = readers(layers);
  const from = inputsOf(layers, i);
  if (layers[i].kind !== 'add' || from.length !== 2 || from[0] === from[1]) return undefined;
  const tail = soleReluAfter(layers, reads, i) ? i + 1 : i;
  return reads[tail] === 1 && layers[tail + 1]?.kind === 'avgpool' && inputsOf(layers, tail + 1).join() === String(tail) ? tail + 1 : undefined;
}
