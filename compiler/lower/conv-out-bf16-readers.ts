// Which training convs may store their raw output y in bf16 (lower/train-fused.ts bf16ConvOut): those whose
// every reader widens each load of it, so the one rounding happens where y is written.
import type { ShapedLayer } from '../ir.js';
import { inputsOf } from './chain.js';

/** Whether layer q is i's only reader and reads nothing else. */
const onlyReader = (layers: readonly ShapedLayer[], reads: readonly number[], i: number, q: number) =>
  q < layers.length && reads[i] === 1 && inputsOf(layers, q).join() === String(i);

/**
 * Whether the conv at position `pos` may store y in bf16: y, through the BN whose statistics its epilogue
 * writes and that BN's ReLU (each the previous one's only reader), is read by one conv or one max or average
 * pool. Those read it only in kernels that widen each load (the next conv's forward, weight gradient and data
 * gradient's BN partials; a pool's forward and backward partials), and the conv's own gradients rebuild dY'
 * from it (grad_rebuild, or their staging). Any other reader (a linear layer, a block's merge, a
 * materialized value) keeps y in fp32.
 */
export function convOutBf16(layers: readonly ShapedLayer[], reads: readonly number[], pos: number): boolean {
  let at = pos;
  if (layers[at + 1]?.kind === 'bn' && onlyReader(layers, reads, at, at + 1)) at += 1;
  if (layers[at + 1]?.kind === 'relu' && onlyReader(layers, reads, at, at + 1)) at += 1;
  const reader = layers[at + 1];
  return reader !== undefined && onlyReader(layers, reads, at, at + 1) && (reader.kind === 'conv' || reader.kind === 'maxpool' || reader.kind === 'avgpool');
}
