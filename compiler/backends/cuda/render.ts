// Pass: kernel steps → CUDA source (kernels.cu) written once against the device primitives
// (runtime/include/nincc/device/primitives.cuh), so it runs on a GPU (nvcc) and on the SIMT emulator
// (g++ -DNINCC_EMU, the `emu` device). Each step also gets its launch rule for plan.json.
//
// This file: the inference kernels (prepare_infer + infer: BN folded into the conv, a shared-memory
// tiled implicit-GEMM convolution with bias/ReLU epilogue, one thread per output element elsewhere).
// The fused training program's kernels are in compiler/backends/cuda/train-kernels.ts. Activations are NCHW.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import nunjucks from 'nunjucks';
import { NINCC_VERSION, type Plan, type PlanLaunch } from '../../emit/plan.js';
import type { KernelStep, Program } from '../../lower/program-ir.js';
import { packageRoot } from '../../package-root.js';
import { convForward } from './conv.js';
import { linearForward, poolForward, trainKernel } from './train-kernels.js';
import { cppDouble, element, params, perElement, BLOCK, type CudaKernel } from './parts.js';

const templateText = readFileSync(join(packageRoot(), 'compiler/backends/cuda/kernels.cu.njk'), 'utf8');

const env = new nunjucks.Environment(null, { autoescape: false, throwOnUndefined: true, trimBlocks: false });

/** The step's buffers named in order, those in `outputs` writable. */
const withOutputs = (k: KernelStep, names: readonly string[], outputs: ReadonlySet<string>) => params(k, names.map((name) => ({ name, out: outputs.has(name) })));

function kernel(k: KernelStep): CudaKernel {
  const c = k.consts as Record<string, number & boolean>;
  switch (k.op) {
    case 'fold_bn': {
      // The folded weights go to both w_out and the `packed` buffer; the cuda conv reads plain K×CRS rows.
      const names = [...['w', ...(c.bias ? ['bias'] : []), 'gamma', 'beta', 'mean', 'var', 'w_out', 'b_out'], ...(c.packed ? ['packed'] : [])];
      const body = [
        'const int k = int(blockIdx.x * blockDim.x + threadIdx.x);',
        `if (k >= ${c.K}) return;`,
        '(void)n;',
        `const double scale = double(gamma[k]) / sqrt(double(var[k]) + ${cppDouble(c.eps)});`,
        `for (int j = 0; j < ${c.CRS}; ++j) {`,
        `  const float v = float(double(w[k * ${c.CRS} + j]) * scale);`,
        `  w_out[k * ${c.CRS} + j] = v;`,
        ...(c.packed ? [`  packed[k * ${c.CRS} + j] = v;`] : []),
        '}',
        `b_out[k] = float((${c.bias ? 'double(bias[k])' : '0.0'} - double(mean[k])) * scale + double(beta[k]));`,
      ];
      const block = Math.min(BLOCK, Math.ceil(c.K / 32) * 32);
      return { params: withOutputs(k, names, new Set(['w_out', 'b_out', 'packed'])), body, launch: { grid: [Math.ceil(c.K / block), 1, 1], block: [block, 1, 1], shared: 0 } };
    }
    case 'conv_infer':
      // The training forward's kernel with nothing pending and no statistics: BN is folded into w and b.
      return convForward(k, c);
    case 'linear_infer':
      return linearForward(k, c);
    case 'bn_eval': {
      const names = ['x', 'gamma', 'beta', 'mean', 'var', 'y'];
      const out = c.C * c.HW;
      const body = [
        ...element(out),
        `const int ch = i / ${c.HW};`,
        `const float invstd = float(1.0 / sqrt(double(var[ch]) + ${cppDouble(c.eps)}));`,
        `const long long at = (long long)img * ${out} + i;`,
        'y[at] = (x[at] - mean[ch]) * (invstd * gamma[ch]) + beta[ch];',
      ];
      return { params: withOutputs(k, names, new Set(['y'])), body, launch: perElement(out) };
    }
    case 'relu_fwd': {
      const body = [...element(c.count), `const long long at = (long long)img * ${c.count} + i;`, 'y[at] = x[at] > 0.0f ? x[at] : 0.0f;'];
      return { params: withOutputs(k, ['x', 'y'], new Set(['y'])), body, launch: perElement(c.count) };
    }
    case 'maxpool_fwd_infer':
    case 'avgpool_fwd':
      // The training kernel with nothing pending (the layer before has been folded or applied) and no argmax.
      return poolForward(k, c, k.op === 'maxpool_fwd_infer', false);
    case 'logsoftmax_fwd':
    case 'softmax_fwd': {
      // One warp per image: the row's max and sum of exponentials with warp reductions.
      const log = k.op === 'logsoftmax_fwd';
      const body = [
        'const int img = int(blockIdx.z), lane = int(threadIdx.x);',
        'if (img >= n) return;',
        `const float* xr = x + (long long)img * ${c.classes};`,
        `float* yr = y + (long long)img * ${c.classes};`,
        'float m = -INFINITY;',
        `for (int j = lane; j < ${c.classes}; j += 32) m = max(m, xr[j]);`,
        'm = nincc::warp_max(m);',
        'float s = 0.0f;',
        `for (int j = lane; j < ${c.classes}; j += 32) s += expf(xr[j] - m);`,
        'const float log_sum = logf(nincc::warp_sum(s));',
        `for (int j = lane; j < ${c.classes}; j += 32) yr[j] = ${log ? 'xr[j] - m - log_sum' : 'expf(xr[j] - m - log_sum)'};`,
      ];
      return { params: withOutputs(k, ['x', 'y'], new Set(['y'])), body, launch: { grid: [1, 1, 1], batchAxis: 2, block: [32, 1, 1], shared: 0 } };
    }
    default: {
      const train = trainKernel(k);
      if (!train) throw new Error(`internal error: no cuda kernel for ${k.op} (${k.kernel})`);
      return train;
    }
  }
}

export interface CudaSource {
  readonly text: string;
  readonly kernels: readonly string[];
  readonly launch: ReadonlyMap<string, PlanLaunch>;
  readonly fused: ReadonlyMap<string, string>; // kernel → what it fuses ('' for plain kernels)
}

export function generateCudaSource(programs: readonly Program[], info: { model: string; file: string; sourceHash: string }): CudaSource {
  const unique = new Map<string, KernelStep>();
  for (const p of programs) {
    for (const step of p.steps) {
      const seen = unique.get(step.kernel);
      if (seen && JSON.stringify([seen.op, seen.consts]) !== JSON.stringify([step.op, step.consts])) {
        throw new Error(`internal error: kernel ${step.kernel} is used with two different meanings`);
      }
      unique.set(step.kernel, step);
    }
  }
  const kernels = [...unique.values()].map((k) => {
    const g = kernel(k);
    const l = g.launch;
    const grid = l.grid.map((d, axis) => (axis === l.batchAxis ? (d === 1 ? 'N' : `${d}·N`) : String(d)));
    const launchText = `grid (${grid.join(', ')}), block (${l.block.join(', ')}), ${l.shared} B dynamic shared`;
    return { name: k.kernel, comment: k.comment, fused: g.fused ?? '', params: g.params, body: g.body, launch: g.launch, launchText, threads: g.launch.block[0] * g.launch.block[1] * g.launch.block[2] };
  });
  const text = env.renderString(templateText, { ...info, version: NINCC_VERSION, kernels });
  return { text, kernels: kernels.map((k) => k.name), launch: new Map(kernels.map((k) => [k.name, k.launch])), fused: new Map(kernels.map((k) => [k.name, k.fused])) };
}

/**
 * The training programs of a cuda/emu build are the fused ones, which only the CUDA kernels implement:
 * its cpu library is built without them (build.ts) and plan.json marks them cuda/emu only.
 */
export const CUDA_ONLY_PROGRAMS: readonly string[] = ['train_forward_backward', 'sgd_update'];

/** plan.json with every step given its launch rule (and the training programs marked cuda/emu only). */
export function withLaunchRules(plan: Plan, launch: ReadonlyMap<string, PlanLaunch>): Plan {
  const programs = Object.fromEntries(
    Object.entries(plan.programs).map(([name, p]) => [
      name,
      {
        ...p,
        steps: p.steps.map((s) => {
          const l = launch.get(s.kernel);
          if (!l) throw new Error(`internal error: no launch rule for ${s.kernel}`);
          return { ...s, launch: l };
        }),
        ...(CUDA_ONLY_PROGRAMS.includes(name) ? { devices: ['cuda', 'emu'] } : {}),
      },
    ]),
  );
  return { ...plan, programs };
}
