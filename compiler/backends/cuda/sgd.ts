// CUDA kernel of the SGD update (torch/optim semantics, docs/design.md §3).
import { flat, params, type Consts, type CudaKernel } from './parts.js';
import type { KernelStep } from '../../lower/program-ir.js';

export function sgdUpdate(k: KernelStep, c: Consts<'sgd_update'>): CudaKernel {
  // torch/optim sgd in its order (runtime/include/nincc/cpu/sgd.h): weight decay into g, momentum
  // buffer (= g on the first step after a reset), then w ← w − lr·buf.
  const body = [
    'const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;',
    `if (i >= ${c.count}) return;`,
    '(void)n;',
    'float grad = nincc::ld(&g[i]);',
    'const float weight = nincc::ld(&w[i]);',
    'if (wd != 0.0f) { grad = grad + wd * weight; nincc::st(&g[i], grad); }',
    'if (momentum != 0.0f) { const float buf = first != 0.0f ? grad : momentum * nincc::ld(&mom[i]) + grad; nincc::st(&mom[i], buf); grad = buf; }',
    'nincc::st(&w[i], weight - lr * grad);',
  ];
  return { params: params(k, [{ name: 'w', out: true }, { name: 'g', out: true }, { name: 'mom', out: true }], ['lr', 'wd', 'momentum', 'first']), body, launch: flat(c.count) };
}
