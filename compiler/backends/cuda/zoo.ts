// CUDA kernels of Torch7's zoo layers and the block merges: the layers at inference only (the fused training
// program does not take them yet: front/lowerable.ts), the merges in training too: Tanh, Sigmoid, Threshold, cross-map LRN, the
// residual add (with the ReLU after the block), a branch's copy into its channels of a concat, zero padding.
// One thread per output element; the formulas are the cpu kernels' (runtime/include/nincc/cpu/pointwise.h, lrn.h, channels.h).
import type { KernelStep } from '../../lower/program-ir.js';
import { cppDouble, element, params, perElement, type Consts, type CudaKernel } from './parts.js';

const f = (v: number) => `${cppDouble(v)}f`;

/** y = op(x) elementwise, as the cpu kernels write it. */
export function pointwise(k: KernelStep, c: Consts<'tanh_fwd' | 'sigmoid_fwd' | 'threshold_fwd'>, expression: (v: string) => string): CudaKernel {
  const body = [...element(c.count), `const long long at = (long long)img * ${c.count} + i;`, 'const float v = nincc::ld(&x[at]);', `nincc::st(&y[at], ${expression('v')});`];
  return { params: params(k, ['x', { name: 'y', out: true }]), body, launch: perElement(c.count) };
}

export const tanhForward = (k: KernelStep, c: Consts<'tanh_fwd'>) => pointwise(k, c, (v) => `tanhf(${v})`);
export const sigmoidForward = (k: KernelStep, c: Consts<'sigmoid_fwd'>) => pointwise(k, c, (v) => `1.0f / (1.0f + expf(-${v}))`);
export const thresholdForward = (k: KernelStep, c: Consts<'threshold_fwd'>) => pointwise(k, c, (v) => `${v} > ${f(c.th)} ? ${v} : ${f(c.v)}`);

/** y = a + b (then max(0, ·) when the block's ReLU is fused): the residual merge, and a sum of two gradients in training. */
export function addInfer(k: KernelStep, c: Consts<'add_infer' | 'add'>): CudaKernel {
  const body = [
    ...element(c.count),
    `const long long at = (long long)img * ${c.count} + i;`,
    'const float v = nincc::ld(&a[at]) + nincc::ld(&b[at]);',
    `nincc::st(&y[at], ${c.relu ? 'v > 0.0f ? v : 0.0f' : 'v'});`,
  ];
  return { params: params(k, ['a', 'b', { name: 'y', out: true }]), body, launch: perElement(c.count), fused: c.relu ? 'residual add + ReLU' : 'residual add' };
}

/** y[c] = x[c]·(k + α/size·Σ x[j]²)^−β over c's window of channels; scale is written too (the contract's buffer). */
export function lrnForward(k: KernelStep, c: Consts<'lrn_fwd'>): CudaKernel {
  const out = c.C * c.HW;
  const before = Math.floor((c.size - 1) / 2);
  const body = [
    ...element(out),
    `const int ch = i / ${c.HW}, p = i % ${c.HW};`,
    `const float* image = x + (long long)img * ${out};`,
    `const int j0 = max(ch - ${before}, 0), j1 = min(ch + ${c.size - 1 - before}, ${c.C - 1});`,
    'float sum = 0.0f;',
    `for (int j = j0; j <= j1; ++j) { const float v = nincc::ld(&image[j * ${c.HW} + p]); sum += v * v; }`,
    `const float sc = ${f(c.k)} + ${f(c.alpha)} / ${f(c.size)} * sum;`,
    `const long long at = (long long)img * ${out} + i;`,
    'nincc::st(&scale[at], sc);',
    `nincc::st(&y[at], nincc::ld(&x[at]) * powf(sc, -${f(c.beta)}));`,
  ];
  return { params: params(k, ['x', { name: 'y', out: true }, { name: 'scale', out: true }]), body, launch: perElement(out) };
}

/** A branch's C channels into channels offset… of the concat's `total`. */
export function concatPlace(k: KernelStep, c: Consts<'concat_place'>): CudaKernel {
  const part = c.C * c.HW;
  const body = [...element(part), `nincc::st(&y[((long long)img * ${c.total} + ${c.offset}) * ${c.HW} + i], nincc::ld(&x[(long long)img * ${part} + i]));`];
  return { params: params(k, ['x', { name: 'y', out: true }]), body, launch: perElement(part) };
}

/** The gradient of a branch of a concat: its channels of the joined gradient. */
export function concatTake(k: KernelStep, c: Consts<'concat_take'>): CudaKernel {
  const part = c.C * c.HW;
  const body = [...element(part), `nincc::st(&dx[(long long)img * ${part} + i], nincc::ld(&g[((long long)img * ${c.total} + ${c.offset}) * ${c.HW} + i]));`];
  return { params: params(k, ['g', { name: 'dx', out: true }]), body, launch: perElement(part) };
}

/** nn.SpatialZeroPadding: each output element its input element, or 0 in the border. */
export function zeropadForward(k: KernelStep, c: Consts<'zeropad_fwd'>): CudaKernel {
  const out = c.C * c.P * c.Q;
  const body = [
    ...element(out),
    `const int ch = i / ${c.P * c.Q}, h = i / ${c.Q} % ${c.P} - (${c.top}), w = i % ${c.Q} - (${c.left});`,
    `const bool inside = h >= 0 && h < ${c.H} && w >= 0 && w < ${c.W};`,
    `nincc::st(&y[(long long)img * ${out} + i], inside ? nincc::ld(&x[((long long)img * ${c.C} + ch) * ${c.H * c.W} + h * ${c.W} + w]) : 0.0f);`,
  ];
  return { params: params(k, ['x', { name: 'y', out: true }]), body, launch: perElement(out) };
}
