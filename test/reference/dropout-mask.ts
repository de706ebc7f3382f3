// Reads back the dropout mask a forwardBackward of DROPOUT_MLP drew (the runtime never exposes it): with
// one image, linear4's weight gradient is the outer product dy ⊗ dropout(h), so row `label` divided by
// dy[label] is the dropout layer's output, exactly 0 where a unit was dropped.
import type { ShapedModel } from '../../compiler/ir.js';
import type { Model } from '../../runtime/model.js';
import { forward } from './interpret.js';
import { readWeights } from './artifacts.js';

export interface ObservedDropout {
  readonly keep: Uint8Array; // 1 where the unit survived
  readonly output: Float64Array; // the dropout layer's output as the gradient shows it
  readonly input: Float64Array; // the dropout layer's input, from the reference
}

/** After `forwardBackward(image, [label])` on DROPOUT_MLP (one image), with that call's output log-probs. */
export function observeDropout(m: Model, spec: ShapedModel, image: Float32Array, label: number, logp: Float32Array): ObservedDropout {
  const hidden = spec.layers[2].input[0]; // linear(20, H) → dropout → linear(H, C)
  const input = forward(spec, readWeights(m), image, 1, { mode: 'eval' }).activations[1].data;
  const dW = m.getGradient('linear4.weight');
  const dy = Math.exp(logp[label]) - 1; // d(−logp[label])/d(z[label]) for a batch of one
  const output = Float64Array.from({ length: hidden }, (_, h) => dW[label * hidden + h] / dy);
  return { keep: Uint8Array.from(output, (v) => (v !== 0 ? 1 : 0)), output, input };
}
