// CUDA kernels of the dense (linear) family: forward (training and inference), data and weight gradients.
import { element, flat, params, perElement, type Consts, type CudaKernel } from './parts.js';
import type { KernelStep } from '../../lower/program-ir.js';

/** y = x·wᵀ (+ b) (then ReLU for an inference linear whose ReLU was fused), one thread per output. */
export function linearForward(k: KernelStep, c: Consts<'linear_fwd' | 'linear_infer'>): CudaKernel {
  const names = ['x', 'w', ...(c.bias ? ['b'] : []), { name: 'y', out: true }];
  const body = [
    ...element(c.out),
    `const float* xi = x + (long long)img * ${c.in};`,
    `const float* wo = w + (long long)i * ${c.in};`,
    'float acc = 0.0f;',
    `for (int j = 0; j < ${c.in}; ++j) acc = nincc::ffma(nincc::ld(&xi[j]), nincc::ld(&wo[j]), acc);`,
    ...(c.bias ? ['acc += nincc::ld(&b[i]);'] : []),
    ...(c.relu ? ['acc = acc > 0.0f ? acc : 0.0f;'] : []),
    `nincc::st(&y[(long long)img * ${c.out} + i], acc);`,
  ];
  return { params: params(k, names), body, launch: perElement(c.out) };
}

export function linearBackwardData(k: KernelStep, c: Consts<'linear_bwd_data'>): CudaKernel {
  const body = [...element(c.in), `const float* gi = g + (long long)img * ${c.out};`, 'float acc = 0.0f;', `for (int o = 0; o < ${c.out}; ++o) acc = nincc::ffma(nincc::ld(&gi[o]), nincc::ld(&w[(long long)o * ${c.in} + i]), acc);`, `nincc::st(&dx[(long long)img * ${c.in} + i], acc);`];
  return { params: params(k, ['g', 'w', { name: 'dx', out: true }]), body, launch: perElement(c.in) };
}

export function linearBackwardWeight(k: KernelStep, c: Consts<'linear_bwd_weight'>): CudaKernel {
  // One thread per weight (then per bias): the batch summed in image order.
  const weights = c.out * c.in;
  const body = [
    'const long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;',
    `if (e < ${weights}) {`,
    `  const int o = int(e / ${c.in}), i = int(e % ${c.in});`,
    '  float acc = 0.0f;',
    `  for (int img = 0; img < n; ++img) acc = nincc::ffma(nincc::ld(&g[(long long)img * ${c.out} + o]), nincc::ld(&x[(long long)img * ${c.in} + i]), acc);`,
    '  nincc::st(&dw[e], acc);',
    ...(c.bias ? ['} else if (e < ' + (weights + c.out) + ') {', `  const int o = int(e - ${weights});`, '  float acc = 0.0f;', `  for (int img = 0; img < n; ++img) acc += nincc::ld(&g[(long long)img * ${c.out} + o]);`, '  nincc::st(&db[o], acc);'] : []),
    '}',
  ];
  const names = ['x', 'g', { name: 'dw', out: true }, ...(c.bias ? [{ name: 'db', out: true }] : [])];
  return { params: params(k, names), body, launch: flat(weights + (c.bias ? c.out : 0)) };
}
