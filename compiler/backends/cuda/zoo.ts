// CUDA kernels of Torch7's zoo layers and the block merges, forward and backward (inference, and the fused
// training program of lower/train-fused.ts): Tanh, Sigmoid, Threshold, cross-map LRN, zero padding, the
// residual add (with the ReLU after the block), a branch's copy into its channels of a concat and back.
// One thread per output element; the formulas are the cpu kernels' (runtime/include/nincc/cpu/pointwise.h, lrn.h, pad.h, channels.h).
import type { KernelStep } from '../../lower/program-ir.js';
import { applyPending, cppDouble, element, fusedText, inputParams, params, perElement, type Consts, type CudaKernel } from './parts.js';

const f = (v: number) => `${cppDouble(v)}f`;

/** y = op(x) elementwise, as the cpu kernels write it. */
export function pointwise(k: KernelStep, c: Consts<'tanh_fwd' | 'sigmoid_fwd' | 'threshold_fwd'>, expression: (v: string) => string): CudaKernel {
  const body = [...element(c.count), `const long long at = (long long)img * ${c.count} + i;`, 'const float v = nincc::ld(&x[at]);', `nincc::st(&y[at], ${expression('v')});`];
  return { params: params(k, ['x', { name: 'y', out: true }]), body, launch: perElement(c.count) };
}

export const tanhForward = (k: KernelStep, c: Consts<'tanh_fwd'>) => pointwise(k, c, (v) => `tanhf(${v})`);
export const sigmoidForward = (k: KernelStep, c: Consts<'sigmoid_fwd'>) => pointwise(k, c, (v) => `1.0f / (1.0f + expf(-${v}))`);
export const thresholdForward = (k: KernelStep, c: Consts<'threshold_fwd'>) => pointwise(k, c, (v) => `${v} > ${f(c.th)} ? ${v} : ${f(c.v)}`);

/** dx = g·∂op from what the forward saved (`s`: its output y or input x), as the cpu kernels write it. */
function pointwiseBackward(k: KernelStep, c: Consts<'tanh_bwd' | 'sigmoid_bwd' | 'threshold_bwd'>, saved: 'x' | 'y', expression: (s: string, g: string) => string): CudaKernel {
  const body = [
    ...element(c.count),
    `const long long at = (long long)img * ${c.count} + i;`,
    `const float sv = nincc::ld(&${saved}[at]), gv = nincc::ld(&g[at]);`,
    `nincc::st(&dx[at], ${expression('sv', 'gv')});`,
  ];
  return { params: params(k, [saved, 'g', { name: 'dx', out: true }]), body, launch: perElement(c.count) };
}

export const tanhBackward = (k: KernelStep, c: Consts<'tanh_bwd'>) => pointwiseBackward(k, c, 'y', (y, g) => `${g} * (1.0f - ${y} * ${y})`);
export const sigmoidBackward = (k: KernelStep, c: Consts<'sigmoid_bwd'>) => pointwiseBackward(k, c, 'y', (y, g) => `${g} * (1.0f - ${y}) * ${y}`);
export const thresholdBackward = (k: KernelStep, c: Consts<'threshold_bwd'>) => pointwiseBackward(k, c, 'x', (x, g) => `${x} > ${f(c.th)} ? ${g} : 0.0f`);

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

/**
 * dx[c] = g[c]·scale[c]^−β − 2αβ/size·x[c]·Σ g[j]·y[j]/scale[j] over the channels j whose window holds c
 * (the cross term: every output in c's reach depends on x[c] through its scale).
 */
export function lrnBackward(k: KernelStep, c: Consts<'lrn_bwd'>): CudaKernel {
  const out = c.C * c.HW;
  const before = Math.floor((c.size - 1) / 2), after = c.size - 1 - before;
  const body = [
    ...element(out),
    `const int ch = i / ${c.HW}, p = i % ${c.HW};`,
    `const long long image = (long long)img * ${out};`,
    `const int j0 = max(ch - ${after}, 0), j1 = min(ch + ${before}, ${c.C - 1});`,
    'float sum = 0.0f;',
    `for (int j = j0; j <= j1; ++j) { const long long a = image + j * ${c.HW} + p; sum += nincc::ld(&g[a]) * nincc::ld(&y[a]) / nincc::ld(&scale[a]); }`,
    'const long long at = image + i;',
    `const float ratio = 2.0f * ${f(c.alpha)} * ${f(c.beta)} / ${f(c.size)};`,
    `nincc::st(&dx[at], nincc::ld(&g[at]) * powf(nincc::ld(&scale[at]), -${f(c.beta)}) - ratio * nincc::ld(&x[at]) * sum);`,
  ];
  return { params: params(k, ['x', 'y', 'scale', 'g', { name: 'dx', out: true }]), body, launch: perElement(out) };
}

/** A branch's C channels into channels offset… of the concat's `total`. */
export function concatPlace(k: KernelStep, c: Consts<'concat_place'>): CudaKernel {
  const part = c.C * c.HW;
  const body = [...element(part), `nincc::st(&y[((long long)img * ${c.total} + ${c.offset}) * ${c.HW} + i], nincc::ld(&x[(long long)img * ${part} + i]));`];
  return { params: params(k, ['x', { name: 'y', out: true }]), body, launch: perElement(part) };
}

/** concatPlace of a branch end with its pending BN/ReLU (if any) applied as it is read: the one pass that writes its channels. */
export function concatApply(k: KernelStep, c: Consts<'concat_apply'>): CudaKernel {
  const part = c.C * c.HW;
  const body = [...element(part), `float v = nincc::ld(&x[(long long)img * ${part} + i]);`, ...applyPending(c, 'v', `i / ${c.HW}`), `nincc::st(&y[((long long)img * ${c.total} + ${c.offset}) * ${c.HW} + i], v);`];
  const into = `into its channels ${c.offset}…${c.offset + c.C - 1} of the concat`;
  const fused = c.inBn || c.inRelu ? `${fusedText([c.inBn && 'BN scale/shift', c.inRelu && 'ReLU'])} of the branch end, written ${into}` : `the branch end copied ${into}`;
  return { params: params(k, ['x', ...inputParams(c), { name: 'y', out: true }]), body, launch: perElement(part), fused };
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

/** Its backward: each input element the gradient of the output element it went to (0 where it was cropped). */
export function zeropadBackward(k: KernelStep, c: Consts<'zeropad_bwd'>): CudaKernel {
  const count = c.C * c.H * c.W;
  const body = [
    ...element(count),
    `const int ch = i / ${c.H * c.W}, h = i / ${c.W} % ${c.H} + (${c.top}), w = i % ${c.W} + (${c.left});`,
    `const bool inside = h >= 0 && h < ${c.P} && w >= 0 && w < ${c.Q};`,
    `nincc::st(&dx[(long long)img * ${count} + i], inside ? nincc::ld(&g[((long long)img * ${c.C} + ch) * ${c.P * c.Q} + h * ${c.Q} + w]) : 0.0f);`,
  ];
  return { params: params(k, ['g', { name: 'dx', out: true }]), body, launch: perElement(count) };
}
