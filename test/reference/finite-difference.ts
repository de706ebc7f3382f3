// A finite-difference check of a model's gradients: for the largest entries of each parameter, the
// analytic gradient against the central difference (L(w+h) − L(w−h)) / 2h of the loss. It sees errors the
// cpu-vs-device comparison cannot: those both engines share.
import type { Model } from '../../runtime/model.js';

export interface GradientMismatch {
  readonly tensor: string;
  readonly index: number;
  readonly analytic: number;
  readonly numeric: number;
  readonly bound: number;
}

/**
 * The entries (the `perTensor` largest |gradient| of each parameter) where the analytic gradient and the
 * central difference differ by more than 2% of the entry, plus 1e-3 of the tensor's scale, plus what the
 * float32 loss's rounding (8 ulps of it) does to a difference over 2h. A kink (ReLU, max-pool) crossed
 * inside ±h can also move the difference, which is why the largest entries, far from ties, are checked.
 */
export async function finiteDifferenceMismatches(model: Model, images: Float32Array, labels: Int32Array, perTensor = 2, h = 1e-3): Promise<GradientMismatch[]> {
  const loss = (await model.forwardBackward(images, labels)).loss;
  const lossNoise = (8 * 2 ** -23 * Math.abs(loss)) / (2 * h);
  const grads = new Map(model.info.params.map((t) => [t.name, Float32Array.from(model.getGradient(t.name))]));
  const out: GradientMismatch[] = [];
  for (const [tensor, grad] of grads) {
    const scale = Math.max(...Array.from(grad, Math.abs));
    const largest = Array.from(grad.keys()).sort((x, y) => Math.abs(grad[y]) - Math.abs(grad[x])).slice(0, perTensor);
    const w = model.getTensor(tensor);
    for (const index of largest) {
      const lossAt = async (delta: number) => {
        const moved = Float32Array.from(w);
        moved[index] += delta;
        model.setTensor(tensor, moved);
        return (await model.forwardBackward(images, labels)).loss;
      };
      const numeric = ((await lossAt(h)) - (await lossAt(-h))) / (2 * h);
      model.setTensor(tensor, w);
      const bound = 0.02 * Math.abs(grad[index]) + 1e-3 * scale + lossNoise;
      if (!(Math.abs(numeric - grad[index]) <= bound)) out.push({ tensor, index, analytic: grad[index], numeric, bound });
    }
  }
  return out;
}
