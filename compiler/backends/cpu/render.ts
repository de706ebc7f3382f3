// Pass: kernel steps → C++ calls of the CPU kernel library, formatted by the nunjucks template.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import nunjucks from 'nunjucks';
import type { KernelStep, Program } from '../../lower/program-ir.js';
import { NINCC_VERSION, type Plan } from '../../emit/plan.js';
import { chooseConvAlgorithm, packedConvWeightsSize, winogradKindCpp, winogradWeightsSize, type ConvConsts } from '../../schedule/cpu-conv-algorithm.js';
import { packageRoot } from '../../package-root.js';
import { dropoutSeedCpp } from '../dropout-seed.js';

const templateText = readFileSync(join(packageRoot(), 'compiler/backends/cpu/kernels.cpu.cc.njk'), 'utf8');
const env = new nunjucks.Environment(null, { autoescape: false, throwOnUndefined: true, trimBlocks: false });

/** A C++ double literal that reads back as the same double. */
export function cppDouble(v: number): string {
  const s = String(v);
  return /[.eE]/.test(s) ? s : `${s}.0`;
}

function body(k: KernelStep): string[] {
  const c = k.consts as Record<string, number & boolean>;
  const cf = (i: number) => `arg<const float>(a, ${i})`;
  const f = (i: number) => `arg<float>(a, ${i})`;
  const i32 = (i: number, mutable = false) => `arg<${mutable ? '' : 'const '}std::int32_t>(a, ${i})`;
  const last = k.args.length - 1;
  const n = 'a->n';
  const count = `static_cast<std::int64_t>(${n}) * ${c.count}`;
  const conv = `const Conv2dShape shape{${n}, ${c.C}, ${c.H}, ${c.W}, ${c.K}, ${c.R}, ${c.S}, ${c.sh}, ${c.sw}, ${c.ph}, ${c.pw}};`;
  const pool = `const Pool2dShape shape{${n}, ${c.C}, ${c.H}, ${c.W}, ${c.R}, ${c.S}, ${c.sh}, ${c.sw}, ${c.ph}, ${c.pw}};`;
  const bn = `const BatchNormShape shape{${n}, ${c.C}, ${c.HW}};`;
  const linear = `const LinearShape shape{${n}, ${c.in}, ${c.out}};`;
  const seed = dropoutSeedCpp('a->seed', k.layer);
  switch (k.op) {
    case 'conv_fwd':
    case 'conv_infer': {
      const algorithm = c.packed ? chooseConvAlgorithm(c as unknown as ConvConsts).algorithm : 'implicit_gemm';
      if (algorithm !== 'implicit_gemm') {
        return [conv, `conv2d_forward_winograd(${winogradKindCpp(algorithm)}, shape, ${cf(0)}, ${cf(1)}, ${c.bias ? cf(2) : 'nullptr'}, ${f(last)}, ${c.relu});`];
      }
      const w = c.packed ? `PackedConvWeights{${cf(1)}}` : cf(1);
      return [conv, `conv2d_forward(shape, ${cf(0)}, ${w}, ${c.bias ? cf(2) : 'nullptr'}, ${f(last)}, ${c.relu});`];
    }
    case 'conv_bwd_data':
      return [conv, `conv2d_backward_data(shape, ${cf(0)}, ${cf(1)}, ${f(2)});`];
    case 'conv_bwd_weight':
      return [conv, `conv2d_backward_weights(shape, ${cf(0)}, ${cf(1)}, ${f(2)}, ${c.bias ? f(3) : 'nullptr'});`];
    case 'fold_bn': {
      const o = c.bias ? 1 : 0;
      const fold = `fold_batchnorm(${c.K}, ${c.CRS}, ${cf(0)}, ${c.bias ? cf(1) : 'nullptr'}, ${cf(1 + o)}, ${cf(2 + o)}, ${cf(3 + o)}, ${cf(4 + o)}, ${f(5 + o)}, ${f(6 + o)}, ${cppDouble(c.eps)});`;
      if (!c.packed) return [fold];
      const algorithm = chooseConvAlgorithm(c as unknown as ConvConsts).algorithm;
      if (algorithm !== 'implicit_gemm') {
        const kind = winogradKindCpp(algorithm);
        return [
          fold,
          `static_assert(winograd_weights_size(${kind}, ${c.K}, ${c.C}) == ${winogradWeightsSize(algorithm, c.K, c.C)}, "packed weight buffer size");`,
          `const Conv2dShape shape{1, ${c.C}, ${c.H}, ${c.W}, ${c.K}, ${c.R}, ${c.S}, ${c.sh}, ${c.sw}, ${c.ph}, ${c.pw}};`,
          `pack_winograd_weights(${kind}, shape, ${cf(5 + o)}, ${f(7 + o)});`,
        ];
      }
      return [
        fold,
        `static_assert(packed_conv_weights_size(${c.K}, ${c.CRS}) == ${packedConvWeightsSize(c.K, c.CRS)}, "packed weight buffer size");`,
        `const Conv2dShape shape{1, ${c.C}, ${c.H}, ${c.W}, ${c.K}, ${c.R}, ${c.S}, ${c.sh}, ${c.sw}, ${c.ph}, ${c.pw}};`,
        `pack_conv_weights(shape, ${cf(5 + o)}, ${f(7 + o)});`,
      ];
    }
    case 'bn_fwd_train':
      return [bn, `batchnorm_forward_train(shape, ${cf(0)}, ${cf(1)}, ${cf(2)}, ${f(5)}, ${f(6)}, ${f(7)}, ${f(3)}, ${f(4)}, ${cppDouble(c.eps)}, ${cppDouble(c.momentum)});`];
    case 'bn_bwd':
      return [bn, `batchnorm_backward(shape, ${cf(0)}, ${cf(1)}, ${cf(2)}, ${cf(3)}, ${cf(4)}, ${f(5)}, ${f(6)}, ${f(7)});`];
    case 'bn_eval':
      return [bn, `batchnorm_forward_eval(shape, ${cf(0)}, ${cf(1)}, ${cf(2)}, ${cf(3)}, ${cf(4)}, ${f(5)}, ${cppDouble(c.eps)});`];
    case 'relu_fwd':
      return [`relu_forward(${count}, ${cf(0)}, ${f(1)});`];
    case 'relu_bwd':
      return [`relu_backward(${count}, ${cf(0)}, ${cf(1)}, ${f(2)});`];
    case 'maxpool_fwd':
      return [pool, `maxpool_forward(shape, ${cf(0)}, ${f(1)}, ${i32(2, true)});`];
    case 'maxpool_fwd_infer':
      return [pool, `maxpool_forward(shape, ${cf(0)}, ${f(1)}, nullptr);`];
    case 'maxpool_bwd':
      return [pool, `maxpool_backward(shape, ${cf(0)}, ${i32(1)}, ${f(2)});`];
    case 'avgpool_fwd':
      return [pool, `avgpool_forward(shape, ${cf(0)}, ${f(1)});`];
    case 'avgpool_bwd':
      return [pool, `avgpool_backward(shape, ${cf(0)}, ${f(1)});`];
    case 'linear_fwd':
    case 'linear_infer':
      return [linear, `linear_forward(shape, ${cf(0)}, ${cf(1)}, ${c.bias ? cf(2) : 'nullptr'}, ${f(last)}, ${c.relu ?? false});`];
    case 'linear_bwd_data':
      return [linear, `linear_backward_data(shape, ${cf(0)}, ${cf(1)}, ${f(2)});`];
    case 'linear_bwd_weight':
      return [linear, `linear_backward_weights(shape, ${cf(0)}, ${cf(1)}, ${f(2)}, ${c.bias ? f(3) : 'nullptr'});`];
    case 'logsoftmax_fwd':
      return [`log_softmax_forward(${n}, ${c.classes}, ${cf(0)}, ${f(1)});`];
    case 'logsoftmax_bwd':
      return [`log_softmax_backward(${n}, ${c.classes}, ${cf(0)}, ${cf(1)}, ${f(2)});`];
    case 'softmax_fwd':
      return [`softmax_forward(${n}, ${c.classes}, ${cf(0)}, ${f(1)});`];
    case 'softmax_bwd':
      return [`softmax_backward(${n}, ${c.classes}, ${cf(0)}, ${cf(1)}, ${f(2)});`];
    case 'dropout_fwd':
      return [`dropout_forward(${count}, ${cf(0)}, ${f(1)}, ${cppDouble(c.p)}f, ${seed});`];
    case 'dropout_bwd':
      return [`dropout_backward(${count}, ${cf(0)}, ${f(1)}, ${cppDouble(c.p)}f, ${seed});`];
    case 'nll_loss':
      return [`nll_loss_forward(${n}, ${c.classes}, ${cf(0)}, ${i32(1)}, ${f(2)});`, `nll_loss_backward(${n}, ${c.classes}, ${i32(1)}, ${f(3)});`];
    case 'sgd_update':
      return [
        '// scalars: lr, weight decay, momentum, first (the momentum buffer starts as the gradient)',
        `sgd_update(${c.count}, ${f(0)}, ${f(1)}, ${f(2)}, static_cast<float>(a->scalar[0]), static_cast<float>(a->scalar[1]), static_cast<float>(a->scalar[2]), a->scalar[3] != 0.0);`,
      ];
    default:
      // The fused ops belong to the cuda/emu training program; build.ts never hands them to this generator.
      throw new Error(`internal error: the cpu code generator has no kernel for ${k.op} (${k.kernel})`);
  }
}

export interface CpuSource {
  readonly text: string;
  readonly kernels: readonly string[];
}

/**
 * NINCC_PROFILE=1 when the library is built wraps every kernel in a timer that prints a per-kernel
 * table when the library unloads (runtime/include/nincc/cpu/profile.h). The generated source then
 * differs, so the compiled library is cached apart; build into a fresh directory to profile.
 */
const profiling = () => Boolean(process.env.NINCC_PROFILE);

/** What the kernel table records of each kernel: the buffers (space, elements) its steps pass, and its scalar count. */
interface KernelSignature {
  readonly args: readonly { readonly space: string; readonly size: number }[];
  readonly scalars: number;
}

/** The signature of every kernel the emitted plan's steps call; one kernel always gets the same buffers' sizes. */
function kernelSignatures(plan: Plan): Map<string, KernelSignature> {
  const out = new Map<string, KernelSignature>();
  for (const step of Object.values(plan.programs).flatMap((p) => p.steps)) {
    const signature = { args: step.args.map((a) => ({ space: a.space, size: a.size })), scalars: step.scalars.length };
    const seen = out.get(step.kernel);
    if (seen && JSON.stringify(seen) !== JSON.stringify(signature)) throw new Error(`internal error: kernel ${step.kernel} is called with two different signatures`);
    out.set(step.kernel, signature);
  }
  return out;
}

export function generateCpuSource(programs: readonly Program[], plan: Plan, info: { model: string; file: string; sourceHash: string }): CpuSource {
  const signatures = kernelSignatures(plan);
  const unique = new Map<string, KernelStep>();
  for (const step of programs.flatMap((p) => p.steps)) {
    const seen = unique.get(step.kernel);
    if (seen && JSON.stringify([seen.op, seen.consts]) !== JSON.stringify([step.op, step.consts])) {
      throw new Error(`internal error: kernel ${step.kernel} is used with two different meanings`);
    }
    unique.set(step.kernel, step);
  }
  const kernels = [...unique.values()].map((k) => {
    const signature = signatures.get(k.kernel);
    if (!signature) throw new Error(`internal error: kernel ${k.kernel} is in no step of the plan`);
    return { name: k.kernel, comment: k.comment, body: body(k), signature };
  });
  const text = env.renderString(templateText, { ...info, version: NINCC_VERSION, kernels, profile: profiling() });
  return { text, kernels: kernels.map((k) => k.name) };
}
