// CUDA kernel of the SGD update (torch/optim semantics, docs/design.md §3).
import { BLOCK, params, type Consts, type CudaKernel } from './parts.js';
import type { KernelStep } from '../../lower/program-ir.js';

/**
 * float4 chunks each thread updates, a block's width apart (each load instruction of a block reads
 * BLOCK·16 contiguous bytes). At one float per thread NIN's 8.66M parameters were 33,800 blocks, tens of
 * waves whose latency nothing hides (runtime/profile/time-model.ts); at 8 per thread, 4,227 blocks.
 */
export const SGD_CHUNKS_PER_THREAD = 2;

/**
 * One parameter `i` updated alone, leaving its new value in `updated`: the float4 path's arithmetic on one
 * lane, so both give the same bits (the kernels that also write bf16 copies use it: sgd-weight-bf16.ts).
 */
export const sgdOneWeight = (i: string, updated: string): string[] => [
  `float grad = nincc::ld(&g[${i}]);`,
  `const float weight = nincc::ld(&w[${i}]);`,
  `if (wd != 0.0f) { grad = grad + wd * weight; nincc::st(&g[${i}], grad); }`,
  `if (momentum != 0.0f) { const float buf = first != 0.0f ? grad : momentum * nincc::ld(&mom[${i}]) + grad; nincc::st(&mom[${i}], buf); grad = buf; }`,
  `const float ${updated} = weight - lr * grad;`,
  `nincc::st(&w[${i}], ${updated});`,
];

/** The parts of [0, count) no other step updates: the complement of `skip`'s [offset, size] pairs. */
export function sgdRanges(count: number, skip: readonly number[] = []): { start: number; end: number }[] {
  const ranges: { start: number; end: number }[] = [];
  let at = 0;
  for (let i = 0; i < skip.length; i += 2) {
    if (skip[i] < at || skip[i] + skip[i + 1] > count) throw new Error(`internal error: sgd_update's skip list ${skip.join(', ')} is not in order within ${count}`);
    if (skip[i] > at) ranges.push({ start: at, end: skip[i] });
    at = skip[i] + skip[i + 1];
  }
  if (at < count) ranges.push({ start: at, end: count });
  return ranges;
}

export function sgdUpdate(k: KernelStep, c: Consts<'sgd_update'>): CudaKernel {
  // torch/optim sgd in its order (runtime/include/nincc/cpu/sgd.h): weight decay into g, momentum
  // buffer (= g on the first step after a reset), then w ← w − lr·buf. The spaces start 64-byte
  // aligned (the Device contract), so a chunk of 4 from a multiple of 4 takes one 16-byte access; a
  // range's elements before its first such chunk and after its last go one by one, with the same arithmetic.
  const perBlock = BLOCK * SGD_CHUNKS_PER_THREAD;
  // One lane of a chunk: grad in gv, weight in wv, the momentum buffer in mv; gv ends as the step.
  const update = (lane: string) => [
    `if (wd != 0.0f) gv.${lane} = gv.${lane} + wd * wv.${lane};`,
    `if (momentum != 0.0f) gv.${lane} = first != 0.0f ? gv.${lane} : momentum * mv.${lane} + gv.${lane};`,
  ];
  /** A range's code, run by `blocks` blocks from block `first`. */
  const rangeCode = ({ start, end }: { start: number; end: number }) => {
    const aligned = Math.min(end, Math.ceil(start / 4) * 4);
    const chunks = Math.max(0, Math.floor((end - aligned) / 4));
    const tail = aligned + chunks * 4;
    const loose = aligned - start + end - tail;
    const base = (i: string) => (aligned === 0 ? i : `${aligned} + ${i}`);
    const body = [
      `const long long first_chunk = (long long)block * ${perBlock} + threadIdx.x;`,
      'NINCC_UNROLL',
      `for (int r = 0; r < ${SGD_CHUNKS_PER_THREAD}; ++r) {`,
      `  const long long chunk = first_chunk + r * ${BLOCK};`,
      `  if (chunk < ${chunks}) {`,
      `    const long long at = ${base('chunk * 4')};`,
      '    float4 gv = nincc::load_float4(&g[at]);',
      '    float4 wv = nincc::load_float4(&w[at]);',
      '    float4 mv = momentum != 0.0f && first == 0.0f ? nincc::load_float4(&mom[at]) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);',
      ...['x', 'y', 'z', 'w'].flatMap(update).map((s) => `    ${s}`),
      '    if (wd != 0.0f) nincc::store_float4(&g[at], gv);',
      '    if (momentum != 0.0f) nincc::store_float4(&mom[at], gv);',
      '    nincc::store_float4(&w[at], make_float4(wv.x - lr * gv.x, wv.y - lr * gv.y, wv.z - lr * gv.z, wv.w - lr * gv.w));',
      '  }',
      '}',
      ...(loose === 0
        ? []
        : [
            `if (block == 0 && threadIdx.x < ${loose}) {`,
            `  const long long i = threadIdx.x < ${aligned - start} ? ${start} + threadIdx.x : ${tail - (aligned - start)} + threadIdx.x;`,
            ...sgdOneWeight('i', 'updated').map((s) => `  ${s}`),
            '  (void)updated;',
            '}',
          ]),
    ];
    return { body, blocks: Math.max(1, Math.ceil(chunks / perBlock)) };
  };
  const ranges = sgdRanges(c.count, c.skip).map(rangeCode);
  // Each range runs on blocks of its own, in order: block is the block's index within its range.
  let first = 0;
  const body = ranges.length === 1
    ? ['(void)n;', 'const long long block = blockIdx.x;', ...ranges[0].body]
    : [
        '(void)n;',
        ...ranges.flatMap((r, i) => {
          const code = [`${i === 0 ? '' : 'else '}if (blockIdx.x < ${first + r.blocks}) {`, `  const long long block = blockIdx.x - ${first};`, ...r.body.map((s) => `  ${s}`), '}'];
          first += r.blocks;
          return code;
        }),
      ];
  const blocks = ranges.reduce((s, r) => s + r.blocks, 0);
  return {
    params: params(k, [{ name: 'w', out: true }, { name: 'g', out: true }, { name: 'mom', out: true }], ['lr', 'wd', 'momentum', 'first']),
    body,
    launch: { grid: [blocks, 1, 1], block: [BLOCK, 1, 1], shared: 0 },
    fused: `SGD update (16-byte accesses, ${SGD_CHUNKS_PER_THREAD * 4} parameters per thread${c.skip?.length ? `, ${c.skip.length / 2} conv weights left to their own updates` : ''})`,
  };
}
