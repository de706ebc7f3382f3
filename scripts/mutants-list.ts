// The source mutations `npm run test:mutants` applies, each of which the default test suite must catch,
// with the test files that can catch it (run alone, to keep each mutant to minutes on a small machine).

export interface Mutant {
  readonly name: string;
  /** Where the text is; when the file has moved, the runner finds the one tracked file that holds `find`. */
  readonly file: string;
  readonly find: string;
  readonly replace: string;
  /** The test files that run against this mutant. */
  readonly tests: readonly string[];
  /** Only the tests whose name matches (vitest -t, a regular expression): the emu suite whole takes too long per mutant. */
  readonly only?: string;
  /** Rebuild the native addon (the mutation is in its C++), not only the TypeScript. */
  readonly native?: boolean;
}

export const MUTANTS: readonly Mutant[] = [
  {
    name: "bf16 conv kernels' fused gradient rebuild without its x̂·dγ term",
    file: 'compiler/backends/cuda/conv-mma-channels.ts',
    find: "(${d} - ${from('g_dbeta')} * inv_m - xhat * ${from('g_dgamma')} * inv_m);",
    replace: "(${d} - ${from('g_dbeta')} * inv_m);",
    tests: ['test/emu-conv-mma-grad-bn.test.ts'],
  },
  {
    name: 'grad_rebuild pass without its x̂·dγ term',
    file: 'compiler/backends/cuda/parts.ts',
    find: ' - xhat * nincc::ld(&g_dgamma[${ch}]) * inv_m);',
    replace: ');',
    tests: ['test/emu-conv-mma-grad-bn.test.ts'],
  },
  {
    name: "bf16 data gradient's Σdz partial (BN dβ) summed before the ReLU mask",
    file: 'compiler/backends/cuda/conv-mma-grad.ts',
    find: "'  dz_sum += dz;',",
    replace: "'  dz_sum += dv;',",
    tests: ['test/emu-conv-mma-grad-bn.test.ts'],
  },
  {
    name: "bf16 data gradient's Σdz·x̂ partial (BN dγ) summed before the ReLU mask",
    file: 'compiler/backends/cuda/conv-mma-grad.ts',
    find: "'  dzx_sum += dz * ((yv",
    replace: "'  dzx_sum += dv * ((yv",
    tests: ['test/emu-conv-mma-grad-bn.test.ts'],
  },
  {
    name: 'CUDA SGD update without weight decay',
    file: 'compiler/backends/cuda/sgd.ts',
    find: "'if (wd != 0.0f) { grad = grad + wd * weight; nincc::st(&g[i], grad); }',",
    replace: "'',",
    tests: ['test/emu-train.test.ts'],
    only: 'two SGD steps',
  },
  {
    name: "CUDA BN backward's dγ scaled by 1.01",
    file: 'compiler/backends/cuda/bn.ts',
    find: 'nincc::st(&dgamma[ch], float(nincc::ld(&sdzx[0])));',
    replace: 'nincc::st(&dgamma[ch], float(1.01 * nincc::ld(&sdzx[0])));',
    tests: ['test/emu-train.test.ts'],
    only: 'fused_paths: forward\\+backward',
  },
  {
    name: "CPU BN+ReLU backward letting the gradient through where the ReLU's output is 0",
    file: 'runtime/include/nincc/cpu/batchnorm.h',
    find: 'dx[base + i] = relu_y[base + i] > 0.f ? g : 0.f;',
    replace: 'dx[base + i] = relu_y[base + i] >= 0.f ? g : 0.f;',
    tests: ['test/numerics-gradients.test.ts'],
    only: 'every layer kind',
  },
  {
    name: "CPU stride-1 backward-data as a conv with the weights not flipped in space",
    file: 'runtime/include/nincc/cpu/conv.h',
    find: 'to[t] = from[taps - 1 - t];',
    replace: 'to[t] = from[t];',
    tests: ['test/numerics-zoo-1thread.test.ts'],
    only: 'tiny_resnet.*gradients',
  },
  {
    name: 'CPU max-pool with the H and W strides swapped',
    file: 'compiler/backends/cpu/render.ts',
    find: 'const poolShape = (c: ConvShape) => `const Pool2dShape shape{${n}, ${c.C}, ${c.H}, ${c.W}, ${c.R}, ${c.S}, ${c.sh}, ${c.sw}',
    replace: 'const poolShape = (c: ConvShape) => `const Pool2dShape shape{${n}, ${c.C}, ${c.H}, ${c.W}, ${c.R}, ${c.S}, ${c.sw}, ${c.sh}',
    tests: ['test/numerics-kernels.test.ts', 'test/numerics-semantics.test.ts'],
  },
  {
    name: 'BN computing 1/(sqrt(var)+eps) (CPU training forward)',
    file: 'runtime/include/nincc/cpu/batchnorm.h',
    find: 'const float invstd = static_cast<float>(1.0 / std::sqrt(biased_var + eps));',
    replace: 'const float invstd = static_cast<float>(1.0 / (std::sqrt(biased_var) + eps));',
    tests: ['test/numerics-kernels.test.ts', 'test/numerics-semantics.test.ts'],
  },
  {
    name: 'an arena that never frees',
    file: 'runtime/core/arena.cc',
    find: 'Arena::~Arena() {\n  for (void* memory : base_)\n    if (memory) device_.release(memory);\n}',
    replace: 'Arena::~Arena() {}',
    tests: ['test/reliability-artifacts.test.ts'],
    native: true,
  },
  {
    name: 'cpu and cuda dropout salts differing',
    file: 'compiler/backends/cpu/render.ts',
    find: "const seed = dropoutSeedCpp('a->seed', k.layer);",
    replace: "const seed = dropoutSeedCpp('a->seed', k.layer + 1);",
    tests: ['test/emu-train.test.ts'],
    only: 'dropout_mlp: forward\\+backward',
  },
  {
    name: 'bf16 weight-gradient splits overlapping',
    file: 'compiler/backends/cuda/conv-mma-grad.ts',
    find: 'hi = total * (split + 1) / ${c.splits};',
    replace: 'hi = total * (split + 2) / ${c.splits};',
    tests: ['test/emu-conv-mma-grad.test.ts'],
    only: 'one step',
  },
  {
    name: 'bf16 data gradient without its dReLU prologue',
    file: 'compiler/backends/cuda/conv-mma-grad.ts',
    find: "        ...(useTable ? rebuildGradientFrom(c, 'v', 'at', fromRow) : rebuildGradient(c, 'v', 'at', 'kout')).map((s) => `    ${s}`),\n",
    replace: '',
    tests: ['test/emu-conv-mma-grad.test.ts'],
    only: 'one step',
  },
  {
    name: "CPU conv GEMM epilogue dropping a residual block's shortcut",
    file: 'runtime/include/nincc/cpu/conv_gemm.h',
    find: 'o.residual ? o.residual + skip : nullptr};',
    replace: 'nullptr};',
    tests: ['test/block-fusion.test.ts'],
    only: 'infer matches',
  },
  {
    name: "CPU Winograd epilogue dropping a residual block's shortcut",
    file: 'runtime/include/nincc/cpu/conv_winograd.h',
    find: '          if (residual) {',
    replace: '          if (false && residual) {',
    tests: ['test/block-fusion.test.ts'],
    only: 'infer matches',
  },
  {
    name: "CPU BN training pass dropping a residual block's shortcut",
    file: 'runtime/include/nincc/cpu/batchnorm.h',
    find: '      if (residual) v += residual[base + i];',
    replace: '',
    tests: ['test/numerics-zoo.test.ts'],
    only: 'forwardBackward',
  },
  {
    name: "CPU backward-data dropping another reader's gradient of its input",
    file: 'runtime/include/nincc/cpu/conv.h',
    find: 'dx[at + i] += addend[at + i];',
    replace: 'dx[at + i] += 0.f;',
    tests: ['test/numerics-zoo.test.ts'],
    only: 'gradients',
  },
  {
    name: "CUDA residual add backward without the block's dReLU",
    file: 'compiler/backends/cuda/residual.ts',
    find: "'if (valid && !(nincc::ld(&y[at]) > 0.0f)) d = 0.0f;', ",
    replace: '',
    tests: ['test/emu-blocks-train.test.ts'],
    only: 'tiny_resnet',
  },
  {
    name: "CUDA LRN backward without its cross term (the other channels' scales' dependence on x)",
    file: 'compiler/backends/cuda/zoo.ts',
    find: ' - ratio * nincc::ld(&x[at]) * sum);`,',
    replace: ');`,',
    tests: ['test/emu-zoo.test.ts'],
    only: 'zoo_train',
  },
  {
    name: "CUDA ceil-mode average pool backward dividing by the whole kernel (not the window's clipped size)",
    file: 'compiler/backends/cuda/pool.ts',
    find: '+ q]) / ${divisor(c)};` // each window its own divisor',
    replace: '+ q]) / ${cppDouble(c.R * c.S)}f;` // each window its own divisor',
    tests: ['test/emu-zoo.test.ts'],
    only: 'zoo_train',
  },
  {
    name: 'bf16 rebuild pass given to the 1×1 convs too (the lowering test pins which convs get it)',
    file: 'compiler/lower/train-fused.ts',
    find: 'grad.of.pending?.bn && a.kH * a.kW > 1 && needDx) grad =',
    replace: 'grad.of.pending?.bn && a.kH * a.kW >= 1 && needDx) grad =',
    tests: ['test/emu-rebuild-pass.test.ts'],
    only: 'lowering',
  },
  {
    name: "CUDA residual add backward: a projection block's ReLU mask recomputed from the main branch end only",
    file: 'compiler/backends/cuda/residual.ts',
    find: "'  if (valid && !(av + bv > 0.0f)) d = 0.0f;'",
    replace: "'  if (valid && !(av > 0.0f)) d = 0.0f;'",
    tests: ['test/emu-blocks-train.test.ts'],
    only: 'tiny_resnet',
  },
  {
    name: "CUDA concat_apply writing a branch end without its pending BN/ReLU",
    file: 'compiler/backends/cuda/zoo.ts',
    find: "`float v = nincc::ld(&x[(long long)img * ${part} + i]);`, ...applyPending(c, 'v', `i / ${c.HW}`),",
    replace: "`float v = nincc::ld(&x[(long long)img * ${part} + i]);`,",
    tests: ['test/emu-blocks-train.test.ts'],
    only: 'fused_blocks',
  },
  {
    name: "CUDA concat_take_stats reading the slice's first channel for every channel",
    file: 'compiler/backends/cuda/bn.ts',
    find: '+ ${c.offset} + ch) * ${c.HW} + j]) : 0.0f;`,',
    replace: '+ ${c.offset}) * ${c.HW} + j]) : 0.0f;`,',
    tests: ['test/emu-blocks-train.test.ts'],
    only: 'fused_blocks',
  },
  {
    name: "CPU uint8 stem gathers every channel through the first channel's table",
    file: 'runtime/include/nincc/cpu/conv_gather.h',
    find: '          value += 256;',
    replace: '          value += 0;',
    tests: ['test/u8-stem.test.ts'],
    only: 'cpu: the training output',
  },
  {
    name: "Native JPEG decoder ignores a uint8 model's batch slot",
    file: 'runtime/imagenet/decode-worker.ts',
    find: '      const out = slot ?? native.bytes;',
    replace: '      const out = native.bytes;',
    tests: ['test/imagenet-pack.test.ts'],
    only: 'straight into the batch slot',
  },
];
