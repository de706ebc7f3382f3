// CUDA kernel of the SGD update (torch/optim semantics, docs/design.md §3).
import { BLOCK, params, type Consts, type CudaKernel } from './parts.js';
import type { KernelStep } from '../../lower/program-ir.js';

/**
 * float4 chunks each thread updates, a block's width apart (each load instruction of a block reads
 * BLOCK·16 contiguous bytes). At one float per thread NIN's 8.66M parameters were 33,800 blocks, tens of
 * waves whose latency nothing hides (runtime/profile/time-model.ts); at 8 per thread, 4,227 blocks.
 */
export const SGD_CHUNKS_PER_THREAD = 2;

export function sgdUpdate(k: KernelStep, c: Consts<'sgd_update'>): CudaKernel {
  // torch/optim sgd in its order (runtime/include/nincc/cpu/sgd.h): weight decay into g, momentum
  // buffer (= g on the first step after a reset), then w ← w − lr·buf. The spaces start 64-byte
  // aligned (the Device contract), so a chunk of 4 from a multiple of 4 takes one 16-byte access; the
  // last count % 4 elements go one by one, with the same arithmetic.
  const chunks = Math.floor(c.count / 4);
  const perBlock = BLOCK * SGD_CHUNKS_PER_THREAD;
  // One lane of a chunk: grad in gv, weight in wv, the momentum buffer in mv; gv ends as the step.
  const update = (lane: string) => [
    `if (wd != 0.0f) gv.${lane} = gv.${lane} + wd * wv.${lane};`,
    `if (momentum != 0.0f) gv.${lane} = first != 0.0f ? gv.${lane} : momentum * mv.${lane} + gv.${lane};`,
  ];
  const body = [
    '(void)n;',
    `const long long first_chunk = (long long)blockIdx.x * ${perBlock} + threadIdx.x;`,
    'NINCC_UNROLL',
    `for (int r = 0; r < ${SGD_CHUNKS_PER_THREAD}; ++r) {`,
    `  const long long chunk = first_chunk + r * ${BLOCK};`,
    `  if (chunk < ${chunks}) {`,
    '    float4 gv = nincc::load_float4(&g[chunk * 4]);',
    '    float4 wv = nincc::load_float4(&w[chunk * 4]);',
    '    float4 mv = momentum != 0.0f && first == 0.0f ? nincc::load_float4(&mom[chunk * 4]) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);',
    ...['x', 'y', 'z', 'w'].flatMap(update).map((s) => `    ${s}`),
    '    if (wd != 0.0f) nincc::store_float4(&g[chunk * 4], gv);',
    '    if (momentum != 0.0f) nincc::store_float4(&mom[chunk * 4], gv);',
    '    nincc::store_float4(&w[chunk * 4], make_float4(wv.x - lr * gv.x, wv.y - lr * gv.y, wv.z - lr * gv.z, wv.w - lr * gv.w));',
    '  }',
    '}',
    ...(c.count % 4 === 0
      ? []
      : [
          `if (blockIdx.x == 0 && threadIdx.x < ${c.count % 4}) {`,
          `  const long long i = ${chunks * 4} + threadIdx.x;`,
          '  float grad = nincc::ld(&g[i]);',
          '  const float weight = nincc::ld(&w[i]);',
          '  if (wd != 0.0f) { grad = grad + wd * weight; nincc::st(&g[i], grad); }',
          '  if (momentum != 0.0f) { const float buf = first != 0.0f ? grad : momentum * nincc::ld(&mom[i]) + grad; nincc::st(&mom[i], buf); grad = buf; }',
          '  nincc::st(&w[i], weight - lr * grad);',
          '}',
        ]),
  ];
  const blocks = Math.max(1, Math.ceil(chunks / perBlock));
  return {
    params: params(k, [{ name: 'w', out: true }, { name: 'g', out: true }, { name: 'mom', out: true }], ['lr', 'wd', 'momentum', 'first']),
    body,
    launch: { grid: [blocks, 1, 1], block: [BLOCK, 1, 1], shared: 0 },
    fused: `SGD update (16-byte accesses, ${SGD_CHUNKS_PER_THREAD * 4} parameters per thread)`,
  };
}
