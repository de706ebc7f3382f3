// CUDA kernel of dropout, forward and backward: the mask is a hash of the call's seed salted by the layer
// and of the element index, the same on every device (docs/design.md §5).
import { cppDouble, element, flat, params, perElement, type Consts, type CudaKernel } from './parts.js';
import type { KernelStep } from '../../lower/program-ir.js';
import { dropoutSeedCpp } from '../dropout-seed.js';

export function dropout(k: KernelStep, c: Consts<'dropout_fwd' | 'dropout_bwd'>, forward: boolean): CudaKernel {
  // Torch7 nn.Dropout (v2): kept elements scaled by 1/(1 − p). The mask is the cpu kernels' own
  // (nincc::dropout_keeps over the batch-flat element index, the call seed salted by the layer), so
  // both devices drop the same elements and the backward redraws the forward's mask.
  const scale = c.p < 1 ? `(1.0f / (1.0f - ${cppDouble(c.p)}f))` : '0.0f'; // in float, as the cpu kernel computes it
  const body = [
    ...element(c.count),
    `const long long at = (long long)img * ${c.count} + i;`,
    ...(c.p <= 0
      ? ['(void)seed;', `nincc::st(&${forward ? 'y' : 'dx'}[at], nincc::ld(&${forward ? 'x' : 'g'}[at]));`]
      : [
          `const unsigned long long salted = ${dropoutSeedCpp('seed', k.layer)};`,
          `const bool keep = nincc::dropout_keeps(salted, (unsigned long long)at, ${cppDouble(c.p)}f);`,
          forward ? `nincc::st(&y[at], keep ? nincc::ld(&x[at]) * ${scale} : 0.0f);` : `nincc::st(&dx[at], keep ? nincc::ld(&g[at]) * ${scale} : 0.0f);`,
        ]),
  ];
  const names = forward ? ['x', { name: 'y', out: true }] : ['g', { name: 'dx', out: true }];
  return { params: params(k, names, [], true), body, launch: { ...perElement(c.count), seed: true }, fused: `dropout ${forward ? 'mask' : 'backward'} (mask recomputed from the call seed, never stored)` };
}
