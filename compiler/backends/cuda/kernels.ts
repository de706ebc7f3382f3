// The CUDA kernel of each op: its parameters, body and launch geometry. Each op family has its file
// (conv.ts, bn.ts, pool.ts, dense.ts, loss.ts, dropout.ts, sgd.ts; residual.ts: a residual add in training; zoo.ts: Torch7's zoo layers and the block
// merges, forward and backward; the other inference-only ops are here).
// The schedule pass (compiler/schedule/cuda-launch.ts) calls cudaKernel once per kernel before the
// plan is emitted; the renderer (render.ts) only prints them. Kernels are written against the device
// primitives (runtime/include/nincc/device/primitives.cuh). Activations are NCHW.
import type { KernelStep, OpKind, StepOf } from '../../lower/program-ir.js';
import { convBackwardData, convBackwardWeight, convForward, wgradReduce } from './conv.js';
import { convForwardMma } from './conv-mma.js';
import { convBackwardDataMma, convBackwardWeightMma } from './conv-mma-grad.js';
import { convWeightBf16 } from './conv-weight-bf16.js';
import { sgdConvBf16 } from './sgd-weight-bf16.js';
import type { Precision } from '../../ir.js';
import { actApply, actBackwardStats, bnStats, concatTakeStats, gradRebuild } from './bn.js';
import { bnBackwardFinalize, bnFinalize } from './bn-finalize-columns.js';
import { poolBackwardTiled } from './pool-vec-backward.js';
import { poolForwardTiled } from './pool-vec-tiles.js';
import { addApply, addBackwardFused, avgpoolAddBackward, avgpoolAddForward } from './residual.js';
import { linearBackwardData, linearBackwardWeight, linearForward } from './dense.js';
import { linearBackwardDataMma, linearBackwardWeightMma, linearForwardMma } from './dense-mma.js';
import { nllLoss, softmaxBackward } from './loss.js';
import { dropout } from './dropout.js';
import { sgdUpdate } from './sgd.js';
import { addInfer, concatApply, concatPlace, concatTake, lrnBackward, lrnForward, sigmoidBackward, sigmoidForward, tanhBackward, tanhForward, thresholdBackward, thresholdForward, zeropadBackward, zeropadForward } from './zoo.js';
import { cppDouble, element, params, perElement, BLOCK, type CudaKernel } from './parts.js';
import { isOn, type Ablations } from '../../ablations.js';
import { kernelAblations, type TunedChoices } from '../../tune/tune-record.js';

/** The training program's ops, each to its family's generator, which reads the step's typed consts. */
const trainingGenerators: { readonly [K in OpKind]?: (k: StepOf<K>) => CudaKernel } = {
  conv_fwd_fused: (k) => convForward(k, k.consts),
  conv_dgrad_fused: (k) => convBackwardData(k, k.consts),
  conv_wgrad_fused: (k) => convBackwardWeight(k, k.consts),
  wgrad_reduce: (k) => wgradReduce(k, k.consts),
  bn_stats: (k) => bnStats(k, k.consts),
  bn_finalize: (k) => bnFinalize(k, k.consts),
  bn_bwd_finalize: (k) => bnBackwardFinalize(k, k.consts),
  act_apply: (k) => actApply(k, k.consts),
  act_bwd_stats: (k) => actBackwardStats(k, k.consts),
  concat_apply: (k) => concatApply(k, k.consts),
  concat_take_stats: (k) => concatTakeStats(k, k.consts),
  add_apply: (k) => addApply(k, k.consts),
  add_bwd_fused: (k) => addBackwardFused(k, k.consts),
  grad_rebuild: (k) => gradRebuild(k, k.consts),
  maxpool_bwd_fused: (k) => poolBackwardTiled(k, k.consts, true),
  avgpool_bwd_fused: (k) => poolBackwardTiled(k, k.consts, false),
  avgpool_add_fwd: (k) => avgpoolAddForward(k, k.consts),
  avgpool_add_bwd: (k) => avgpoolAddBackward(k, k.consts),
  linear_fwd: (k) => linearForward(k, k.consts),
  linear_bwd_data: (k) => linearBackwardData(k, k.consts),
  linear_bwd_weight: (k) => linearBackwardWeight(k, k.consts),
  logsoftmax_bwd: (k) => softmaxBackward(k, k.consts, true),
  softmax_bwd: (k) => softmaxBackward(k, k.consts, false),
  dropout_fwd: (k) => dropout(k, k.consts, true),
  dropout_bwd: (k) => dropout(k, k.consts, false),
  nll_loss: (k) => nllLoss(k, k.consts),
  tanh_bwd: (k) => tanhBackward(k, k.consts),
  sigmoid_bwd: (k) => sigmoidBackward(k, k.consts),
  threshold_bwd: (k) => thresholdBackward(k, k.consts),
  lrn_bwd: (k) => lrnBackward(k, k.consts),
  zeropad_bwd: (k) => zeropadBackward(k, k.consts),
  sgd_update: (k) => sgdUpdate(k, k.consts),
  sgd_conv_bf16: (k) => sgdConvBf16(k, k.consts),
};

/** A training op's kernel from its generator (the table is indexed by the step's own op, so the types correlate). */
function trainingKernel<K extends OpKind>(k: StepOf<K>): CudaKernel {
  const generate: ((k: StepOf<K>) => CudaKernel) | undefined = trainingGenerators[k.op];
  if (!generate) throw new Error(`internal error: no cuda kernel for ${k.op} (${k.kernel})`);
  return generate(k);
}

/** The step's buffers named in order, those in `outputs` writable. */
const withOutputs = (k: KernelStep, names: readonly string[], outputs: ReadonlySet<string>) => params(k, names.map((name) => ({ name, out: outputs.has(name) })));

/** What the schedule pass decides for every kernel: the GEMMs' arithmetic, and the largest batch (grids of batch-folded GEMMs). */
export interface CudaSchedule {
  readonly precision: Precision;
  readonly maxBatch: number;
  /** the bf16 optimizations this build leaves out, for A/B checks (ablations.ts) */
  readonly ablations?: Ablations;
  /** per-layer choices over `ablations` (compiler/tune/tune-record.ts): from `nincc tune`, applied by `nincc build --tuned` */
  readonly tuned?: TunedChoices;
}

export function cudaKernel(k: KernelStep, schedule: CudaSchedule): CudaKernel {
  const ablations = kernelAblations(schedule.ablations, schedule.tuned, k);
  // bf16: the convolution forward (conv-mma.ts) and gradients (conv-mma-grad.ts), and the linear layer (dense-mma.ts), on tensor cores; the other kernels stay fp32.
  const bf16 = schedule.precision === 'bf16';
  switch (k.op) {
    case 'fold_bn': {
      const c = k.consts;
      // The folded weights go to both w_out and the `packed` buffer; the cuda conv reads plain K×CRS rows.
      const names = [...['w', ...(c.bias ? ['bias'] : []), 'gamma', 'beta', 'mean', 'var', 'w_out', 'b_out'], ...(c.packed ? ['packed'] : [])];
      const body = [
        'const int k = int(blockIdx.x * blockDim.x + threadIdx.x);',
        `if (k >= ${c.K}) return;`,
        '(void)n;',
        `const double scale = double(nincc::ld(&gamma[k])) / sqrt(double(nincc::ld(&var[k])) + ${cppDouble(c.eps)});`,
        `for (int j = 0; j < ${c.CRS}; ++j) {`,
        `  const float v = float(double(nincc::ld(&w[k * ${c.CRS} + j])) * scale);`,
        `  nincc::st(&w_out[k * ${c.CRS} + j], v);`,
        ...(c.packed ? [`  nincc::st(&packed[k * ${c.CRS} + j], v);`] : []),
        '}',
        `nincc::st(&b_out[k], float((${c.bias ? 'double(nincc::ld(&bias[k]))' : '0.0'} - double(nincc::ld(&mean[k]))) * scale + double(nincc::ld(&beta[k]))));`,
      ];
      const block = Math.min(BLOCK, Math.ceil(c.K / 32) * 32);
      return { params: withOutputs(k, names, new Set(['w_out', 'b_out', 'packed'])), body, launch: { grid: [Math.ceil(c.K / block), 1, 1], block: [block, 1, 1], shared: 0 } };
    }
    case 'conv_infer':
      // The training forward's kernel with nothing pending and no statistics: BN is folded into w and b.
      // A block's conv adds its shortcut or writes its concat slice in the epilogue, on either kernel.
      // A uint8 stem stays on the fp32 kernel (conv-mma reads float activations only).
      return bf16 && !k.consts.u8Mean ? convForwardMma(k, k.consts, schedule.maxBatch, ablations) : convForward(k, k.consts);
    case 'linear_infer':
    case 'linear_fwd':
      return bf16 ? linearForwardMma(k, k.consts, schedule.maxBatch) : linearForward(k, k.consts);
    case 'linear_bwd_data':
      return bf16 ? linearBackwardDataMma(k, k.consts, schedule.maxBatch) : linearBackwardData(k, k.consts);
    case 'linear_bwd_weight':
      return bf16 ? linearBackwardWeightMma(k, k.consts) : linearBackwardWeight(k, k.consts);
    case 'bn_eval': {
      const c = k.consts;
      const names = ['x', 'gamma', 'beta', 'mean', 'var', 'y'];
      const out = c.C * c.HW;
      const body = [
        ...element(out),
        `const int ch = i / ${c.HW};`,
        `const float invstd = float(1.0 / sqrt(double(var[ch]) + ${cppDouble(c.eps)}));`,
        `const long long at = (long long)img * ${out} + i;`,
        'nincc::st(&y[at], (nincc::ld(&x[at]) - nincc::ld(&mean[ch])) * (invstd * nincc::ld(&gamma[ch])) + nincc::ld(&beta[ch]));',
      ];
      return { params: withOutputs(k, names, new Set(['y'])), body, launch: perElement(out) };
    }
    case 'relu_fwd': {
      const c = k.consts;
      const body = [...element(c.count), `const long long at = (long long)img * ${c.count} + i;`, 'const float v = nincc::ld(&x[at]);', 'nincc::st(&y[at], v > 0.0f ? v : 0.0f);'];
      return { params: withOutputs(k, ['x', 'y'], new Set(['y'])), body, launch: perElement(c.count) };
    }
    case 'maxpool_fwd_fused':
    case 'avgpool_fwd_fused': {
      const max = k.op === 'maxpool_fwd_fused';
      return poolForwardTiled(k, k.consts, max, max, isOn(ablations, 'poolSectorRuns'));
    }
    case 'maxpool_fwd_infer':
    case 'avgpool_fwd':
      // The training kernel with nothing pending (the layer before has been folded or applied) and no argmax.
      return poolForwardTiled(k, k.consts, k.op === 'maxpool_fwd_infer', false, isOn(ablations, 'poolSectorRuns'));
    case 'logsoftmax_fwd':
    case 'softmax_fwd': {
      // One warp per image: the row's max and sum of exponentials with warp reductions.
      const c = k.consts;
      const log = k.op === 'logsoftmax_fwd';
      const body = [
        'const int img = int(blockIdx.z), lane = int(threadIdx.x);',
        'if (img >= n) return;',
        `const float* xr = x + (long long)img * ${c.classes};`,
        `float* yr = y + (long long)img * ${c.classes};`,
        'float m = -INFINITY;',
        `for (int j = lane; j < ${c.classes}; j += 32) m = max(m, nincc::ld(&xr[j]));`,
        'm = nincc::warp_max(m);',
        'float s = 0.0f;',
        `for (int j = lane; j < ${c.classes}; j += 32) s += expf(nincc::ld(&xr[j]) - m);`,
        'const float log_sum = logf(nincc::warp_sum(s));',
        `for (int j = lane; j < ${c.classes}; j += 32) nincc::st(&yr[j], ${log ? 'nincc::ld(&xr[j]) - m - log_sum' : 'expf(nincc::ld(&xr[j]) - m - log_sum)'});`,
      ];
      return { params: withOutputs(k, ['x', 'y'], new Set(['y'])), body, launch: { grid: [1, 1, 1], batchAxis: 2, block: [32, 1, 1], shared: 0 } };
    }
    case 'tanh_fwd':
      return tanhForward(k, k.consts);
    case 'sigmoid_fwd':
      return sigmoidForward(k, k.consts);
    case 'threshold_fwd':
      return thresholdForward(k, k.consts);
    case 'lrn_fwd':
      return lrnForward(k, k.consts);
    case 'add_infer':
    case 'add':
      return addInfer(k, k.consts);
    case 'concat_take':
      return concatTake(k, k.consts);
    case 'concat_place':
      return concatPlace(k, k.consts);
    case 'zeropad_fwd':
      return zeropadForward(k, k.consts);
    case 'conv_fwd_fused':
      // A uint8 stem stays on the fp32 kernels at bf16: conv-mma reads float activations only.
      return bf16 && !k.consts.u8Mean ? convForwardMma(k, k.consts, schedule.maxBatch, ablations) : convForward(k, k.consts);
    case 'conv_dgrad_fused':
      return bf16 ? convBackwardDataMma(k, k.consts, schedule.maxBatch, ablations) : convBackwardData(k, k.consts);
    case 'conv_weight_bf16':
      return convWeightBf16(k, k.consts, schedule.maxBatch, ablations);
    case 'conv_wgrad_fused':
      return bf16 && !k.consts.u8Mean ? convBackwardWeightMma(k, k.consts, ablations) : convBackwardWeight(k, k.consts);
    default:
      return trainingKernel(k);
  }
}

