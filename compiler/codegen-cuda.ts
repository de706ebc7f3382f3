// Pass: inference kernel steps → CUDA source (kernels.cu) written once against the device primitives
// (runtime/include/nincc/device/primitives.cuh), so it runs on a GPU (nvcc) and on the SIMT emulator
// (g++ -DNINCC_EMU, the `emu` device). Each step also gets its launch rule for plan.json.
//
// First increment (issue 4): inference only (prepare_infer + infer), simple correct kernels: NCHW, a
// shared-memory tiled implicit-GEMM convolution, one thread per output element elsewhere; training
// programs have no kernels here and no launch rules, so the emu device refuses them.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import nunjucks from 'nunjucks';
import { NINCC_VERSION, type Plan, type PlanLaunch } from './emit-plan.js';
import type { KernelStep, Program } from './plan-ir.js';
import { packageRoot } from './package-root.js';

const templateText = readFileSync(join(packageRoot(), 'compiler/templates/kernels.cu.njk'), 'utf8');
/** This generator and its template, for the artifact's cache key: a change to either rebuilds. */
export function cudaCodegenDigest(): string {
  return createHash('sha256').update(readFileSync(new URL(import.meta.url))).update(templateText).digest('hex');
}

const env = new nunjucks.Environment(null, { autoescape: false, throwOnUndefined: true, trimBlocks: false });

/** The programs the cuda/emu kernels cover in this increment. */
export const CUDA_PROGRAMS: readonly string[] = ['prepare_infer', 'infer'];

const BLOCK = 256;

/** A C++ float literal that reads back as the same double (then rounded to float, as the cpu kernels do). */
function cppDouble(v: number): string {
  const s = String(v);
  return /[.eE]/.test(s) ? s : `${s}.0`;
}

interface CudaKernel {
  readonly params: string;
  readonly body: string[];
  readonly launch: PlanLaunch;
}

/** One thread per element of `perImage` elements of each image: grid (⌈perImage/block⌉, 1, N). */
function perElement(perImage: number): PlanLaunch {
  const block = Math.min(BLOCK, Math.max(32, Math.ceil(perImage / 32) * 32));
  return { grid: [Math.ceil(perImage / block), 1, 1], batchAxis: 2, block: [block, 1, 1], shared: 0 };
}

/** Parameter list: the step's buffers (inputs const, the outputs named in `outputs` writable), then n. */
function params(k: KernelStep, names: readonly string[], outputs: ReadonlySet<string>): string {
  if (names.length !== k.args.length) throw new Error(`internal error: ${k.kernel} has ${k.args.length} buffers, the cuda kernel names ${names.length}`);
  return [...names.map((n) => (outputs.has(n) ? `float* ${n}` : `const float* ${n}`)), 'int n'].join(', ');
}

// The index prologue of a per-element kernel: `i` in this image, `img` the image (blockIdx.z < n).
const element = (count: number) => [
  'const int img = int(blockIdx.z);',
  `const int i = int(blockIdx.x * blockDim.x + threadIdx.x);`,
  `if (img >= n || i >= ${count}) return;`,
];

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
      return { params: params(k, names, new Set(['w_out', 'b_out', 'packed'])), body, launch: { grid: [Math.ceil(c.K / block), 1, 1], block: [block, 1, 1], shared: 0 } };
    }
    case 'conv_infer': {
      // An implicit GEMM per image, Y[K][P·Q] = W[K][C·R·S] · X_col[C·R·S][P·Q], in 32×32 output tiles:
      // each step stages a 16-deep slice of the weights and of the (never materialized) im2col matrix
      // in shared memory; thread (tx, ty) of the 32×8 block owns column tx and rows ty + 8i, i < 4.
      // Padding reads as 0, so every output sums its products in C·R·S order, as the direct loop would.
      const names = ['x', 'w', ...(c.bias ? ['b'] : []), 'y'];
      const PQ = c.P * c.Q, CRS = c.C * c.R * c.S, RS = c.R * c.S;
      const body = [
        'NINCC_SHARED_2D(float, ws, 16, 33);  // ws[kk][m] = W[k0 + m][c0 + kk] (+1 column: no bank conflicts)',
        'NINCC_SHARED_2D(float, xs, 16, 32);  // xs[kk][j] = X_col[c0 + kk][j0 + j]',
        'const int img = int(blockIdx.z);',
        'if (img >= n) return;',
        'const int tx = int(threadIdx.x), ty = int(threadIdx.y), t = ty * 32 + tx;',
        'const int j0 = int(blockIdx.x) * 32, k0 = int(blockIdx.y) * 32;',
        `const float* xi = x + (long long)img * ${c.C * c.H * c.W};`,
        'float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};',
        `for (int c0 = 0; c0 < ${CRS}; c0 += 16) {`,
        '  for (int e = t; e < 16 * 32; e += 256) {',
        '    const int kk = e / 32, col = e % 32, crs = c0 + kk;',
        `    const int k = k0 + col, j = j0 + col;`,
        `    ws[kk][col] = (k < ${c.K} && crs < ${CRS}) ? w[(long long)k * ${CRS} + crs] : 0.0f;`,
        '    float v = 0.0f;',
        `    if (crs < ${CRS} && j < ${PQ}) {`,
        `      const int ch = crs / ${RS}, r = crs / ${c.S} % ${c.R}, s = crs % ${c.S};`,
        `      const int h = j / ${c.Q} * ${c.sh} - ${c.ph} + r, u = j % ${c.Q} * ${c.sw} - ${c.pw} + s;`,
        `      if (h >= 0 && h < ${c.H} && u >= 0 && u < ${c.W}) v = xi[(ch * ${c.H} + h) * ${c.W} + u];`,
        '    }',
        '    xs[kk][col] = v;',
        '  }',
        '  __syncthreads();',
        '  NINCC_UNROLL',
        '  for (int kk = 0; kk < 16; ++kk) {',
        '    const float bv = xs[kk][tx];',
        '    NINCC_UNROLL',
        '    for (int i = 0; i < 4; ++i) acc[i] = fmaf(ws[kk][ty + 8 * i], bv, acc[i]);',
        '  }',
        '  __syncthreads();',
        '}',
        'NINCC_UNROLL',
        'for (int i = 0; i < 4; ++i) {',
        '  const int k = k0 + ty + 8 * i, j = j0 + tx;',
        `  if (k >= ${c.K} || j >= ${PQ}) continue;`,
        `  float v = acc[i]${c.bias ? ' + b[k]' : ''};`,
        ...(c.relu ? ['  v = v > 0.0f ? v : 0.0f;'] : []),
        `  y[(long long)img * ${c.K * PQ} + (long long)k * ${PQ} + j] = v;`,
        '}',
      ];
      return { params: params(k, names, new Set(['y'])), body, launch: { grid: [Math.ceil(PQ / 32), Math.ceil(c.K / 32), 1], batchAxis: 2, block: [32, 8, 1], shared: 0 } };
    }
    case 'linear_infer': {
      const names = ['x', 'w', ...(c.bias ? ['b'] : []), 'y'];
      const body = [
        ...element(c.out),
        `const float* xi = x + (long long)img * ${c.in};`,
        `const float* wo = w + (long long)i * ${c.in};`,
        'float acc = 0.0f;',
        `for (int j = 0; j < ${c.in}; ++j) acc = fmaf(xi[j], wo[j], acc);`,
        ...(c.bias ? ['acc += b[i];'] : []),
        ...(c.relu ? ['acc = acc > 0.0f ? acc : 0.0f;'] : []),
        `y[(long long)img * ${c.out} + i] = acc;`,
      ];
      return { params: params(k, names, new Set(['y'])), body, launch: perElement(c.out) };
    }
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
      return { params: params(k, names, new Set(['y'])), body, launch: perElement(out) };
    }
    case 'relu_fwd': {
      const body = [...element(c.count), `const long long at = (long long)img * ${c.count} + i;`, 'y[at] = x[at] > 0.0f ? x[at] : 0.0f;'];
      return { params: params(k, ['x', 'y'], new Set(['y'])), body, launch: perElement(c.count) };
    }
    case 'maxpool_fwd_infer':
    case 'avgpool_fwd': {
      const out = c.C * c.P * c.Q;
      const max = k.op === 'maxpool_fwd_infer';
      // Torch7 floor mode; max: -inf padding, ties to the first maximum, NaN wins; avg: count_include_pad.
      const body = [
        ...element(out),
        `const int ch = i / ${c.P * c.Q}, p = i / ${c.Q} % ${c.P}, q = i % ${c.Q};`,
        `const float* plane = x + (long long)img * ${c.C * c.H * c.W} + (long long)ch * ${c.H * c.W};`,
        `const int h0 = max(p * ${c.sh} - ${c.ph}, 0), h1 = min(p * ${c.sh} - ${c.ph} + ${c.R}, ${c.H});`,
        `const int w0 = max(q * ${c.sw} - ${c.pw}, 0), w1 = min(q * ${c.sw} - ${c.pw} + ${c.S}, ${c.W});`,
        ...(max
          ? [
              'float best = -INFINITY;',
              'bool found = false;',
              'for (int h = h0; h < h1; ++h)',
              `  for (int v = w0; v < w1; ++v) {`,
              `    const float e = plane[h * ${c.W} + v];`,
              '    if (!found || e > best || e != e) { best = e; found = true; }',
              '  }',
              `y[(long long)img * ${out} + i] = best;`,
            ]
          : [
              'float sum = 0.0f;',
              `for (int h = h0; h < h1; ++h) for (int v = w0; v < w1; ++v) sum += plane[h * ${c.W} + v];`,
              `y[(long long)img * ${out} + i] = sum / ${cppDouble(c.R * c.S)}f;`,
            ]),
      ];
      return { params: params(k, ['x', 'y'], new Set(['y'])), body, launch: perElement(out) };
    }
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
      return { params: params(k, ['x', 'y'], new Set(['y'])), body, launch: { grid: [1, 1, 1], batchAxis: 2, block: [32, 1, 1], shared: 0 } };
    }
    default:
      throw new Error(`internal error: no cuda kernel for ${k.op} (${k.kernel}) in this increment`);
  }
}

export interface CudaSource {
  readonly text: string;
  readonly kernels: readonly string[];
  readonly launch: ReadonlyMap<string, PlanLaunch>;
}

export function generateCudaSource(programs: readonly Program[], info: { model: string; file: string; sourceHash: string }): CudaSource {
  const unique = new Map<string, KernelStep>();
  for (const p of programs) {
    if (!CUDA_PROGRAMS.includes(p.name)) continue;
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
    return { name: k.kernel, comment: k.comment, params: g.params, body: g.body, launch: g.launch, launchText, threads: g.launch.block[0] * g.launch.block[1] * g.launch.block[2] };
  });
  const text = env.renderString(templateText, { ...info, version: NINCC_VERSION, kernels });
  return { text, kernels: kernels.map((k) => k.name), launch: new Map(kernels.map((k) => [k.name, k.launch])) };
}

/** plan.json with each step of the cuda-covered programs given its launch rule. */
export function withLaunchRules(plan: Plan, launch: ReadonlyMap<string, PlanLaunch>): Plan {
  const programs = Object.fromEntries(
    Object.entries(plan.programs).map(([name, p]) => [
      name,
      CUDA_PROGRAMS.includes(name)
        ? {
            ...p,
            steps: p.steps.map((s) => {
              const l = launch.get(s.kernel);
              if (!l) throw new Error(`internal error: no launch rule for ${s.kernel}`);
              return { ...s, launch: l };
            }),
          }
        : p,
    ]),
  );
  return { ...plan, programs };
}
