// The CPU fast paths as generated code: folded conv weights packed once at fold time (and the packed
// buffer's size cross-checked by a static_assert), conv inference reading them packed, the per-layer
// algorithm choice (implicit GEMM or Winograd, compiler/schedule/cpu-conv-algorithm.ts) and its report lines, and the
// NINCC_PROFILE build whose per-kernel timing table is written when the process exits.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildArtifact } from '../compiler/build.js';
import { chooseConvAlgorithm, chooseTrainingConvAlgorithm, convAlgorithmReport, convPackedWeightsFloats, packedConvWeightsSize } from '../compiler/schedule/cpu-conv-algorithm.js';
import { compileSpec, lowerModel } from '../compiler/pipeline.js';
import { nincc, root } from './cli-run.js';

const work = mkdtempSync(join(tmpdir(), 'nincc-perf-'));
const spec = join(root, 'models/nin-fashion.model');
const source = readFileSync(spec, 'utf8');

/** Without the block regions (schedule/cpu-block-bands.ts), which call the first two blocks' convs from lambdas of a band's shape. */
function build(dir: string): string {
  buildArtifact(compileSpec(source, spec).model!, source, { outDir: dir, target: 'cpu', maxBatch: 8, ablations: { cpuBlockBands: false } });
  return readFileSync(join(dir, 'kernels.cpu.cc'), 'utf8');
}

afterEach(() => {
  delete process.env.NINCC_PROFILE;
});

describe('generated CPU code', () => {
  it('packs each folded conv weight once, at fold time, and conv inference reads the packed panels', () => {
    const cc = build(join(work, 'plain'));
    // layer 21: conv(64, 128, 3x3) of the third block, on 7x7 (an implicit GEMM): 128 channels round up to 132 rows of 12.
    expect(packedConvWeightsSize(128, 64 * 9)).toBe(132 * 576);
    expect(cc).toContain(`static_assert(packed_conv_weights_size(128, 576) == ${132 * 576}, "packed weight buffer size");`);
    expect(cc).toMatch(/(?:extern "C"|NINCC_CPU_EXPORT) void k21_fold_bn\(const NinccArgs\* a\) \{\n  fold_batchnorm\([^\n]*\n  static_assert[^\n]*\n  static_assert[^\n]*\n  const Conv2dShape shape\{1, 64, 7, 7, 128, 3, 3, 1, 1, 1, 1\};\n  pack_conv_weights\(shape, /);
    // Below batch 5; from 5 up it runs Winograd F(4x4,3x3) (the next test).
    expect(cc).toMatch(/(?:extern "C"|NINCC_CPU_EXPORT) void k21_conv_infer\(const NinccArgs\* a\) \{\n  const Conv2dShape shape\{a->n, 64, 7, 7, 128, 3, 3, 1, 1, 1, 1\};\n  if \(a->n < 5\) conv2d_forward<packed_forward_paths\(Conv2dShape\{1, 64, 7, 7, 128, 3, 3, 1, 1, 1, 1\}\)>\(shape, \/\*x=\*\/arg<const float>\(a, 0\), PackedConvWeights\{\/\*w=\*\/arg<const float>\(a, 1\)\}, /);
    // Every folded conv but the Winograd one (layer 11, below) reads GEMM panels: k1 and k21 as PackedConvWeights,
    // the six 1x1s in three pair regions (schedule/cpu-pointwise-pair-region.ts), each reading both convs' packed panels.
    expect(cc.match(/PackedConvWeights\{/g)).toHaveLength(2);
    expect(cc.match(/pointwise_pair_forward\(Conv2dShape\{[^\n]*\/\*w1=\*\/[^\n]*\/\*w2=\*\//g)).toHaveLength(3);
    expect(cc).not.toContain('ScopedKernelTimer');
  });

  it('picks the conv algorithm per layer from the cost model, packs Winograd weights at fold time, and reports why', () => {
    const cc = build(join(work, 'plain'));
    // layer 11: conv(32, 64, 3x3) on 14x14 runs as Winograd F(2,3): 4x4 transformed 72 x 32 matrices.
    const c11 = { C: 32, H: 14, W: 14, K: 64, R: 3, S: 3, sh: 1, sw: 1, ph: 1, pw: 1 };
    expect(chooseConvAlgorithm(c11).algorithm).toBe('winograd_f2x3');
    // ... at batch 1; from batch 2 up as F(4,3), whose 6x6 transformed matrices follow in the same buffer.
    expect(chooseConvAlgorithm(c11).large).toMatchObject({ algorithm: 'winograd_f4x3', fromBatch: 2 });
    expect(convPackedWeightsFloats(c11)).toBe(16 * 72 * 32 + 36 * 72 * 32);
    expect(cc).toMatch(/(?:extern "C"|NINCC_CPU_EXPORT) void k11_fold_bn\(const NinccArgs\* a\) \{\n  fold_batchnorm\([^\n]*\n  static_assert\(winograd_weights_size\(WinogradKind::F2x3, 64, 32\) == 36864, "packed weight buffer size"\);\n  static_assert\(winograd_weights_size\(WinogradKind::F4x3, 64, 32\) == 82944, "packed weight buffer size"\);\n  const Conv2dShape shape\{1, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1\};\n  pack_winograd_weights<WinogradKind::F2x3>\(shape, \/\*w_out=\*\/arg<const float>\(a, 6\), \/\*packed=\*\/arg<float>\(a, 8\)\);\n  pack_winograd_weights<WinogradKind::F4x3>\(shape, \/\*w_out=\*\/arg<const float>\(a, 6\), \/\*packed=\*\/arg<float>\(a, 8\) \+ 36864\);\n\}/);
    expect(cc).toMatch(/(?:extern "C"|NINCC_CPU_EXPORT) void k11_conv_infer\(const NinccArgs\* a\) \{\n  const Conv2dShape shape\{a->n, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1\};\n  if \(a->n < 2\) conv2d_forward_winograd<WinogradKind::F2x3>\(shape, \/\*x=\*\/arg<const float>\(a, 0\), \/\*w=\*\/arg<const float>\(a, 1\), [^\n]*\n  else conv2d_forward_winograd<WinogradKind::F4x3>\(shape, \/\*x=\*\/arg<const float>\(a, 0\), \/\*w=\*\/arg<const float>\(a, 1\) \+ 36864, /);
    // No Winograd for strided or 1x1 convs; 3x3 on 7x7 planes loses at batch 1 (tiles a quarter empty).
    expect(chooseConvAlgorithm({ ...c11, sh: 2, sw: 2 }).algorithm).toBe('implicit_gemm');
    expect(chooseConvAlgorithm({ ...c11, R: 1, S: 1, ph: 0, pw: 0 }).algorithm).toBe('implicit_gemm');
    const c21 = { C: 64, H: 7, W: 7, K: 128, R: 3, S: 3, sh: 1, sw: 1, ph: 1, pw: 1 };
    expect(chooseConvAlgorithm(c21).algorithm).toBe('implicit_gemm');
    // ... but from batch 5 up F(4,3) fills its lanes (measured at 1 thread: 2.6x the GEMM's time at batch 1, 0.43x at 16).
    expect(chooseConvAlgorithm(c21).large).toMatchObject({ algorithm: 'winograd_f4x3', fromBatch: 5 });
    expect(convPackedWeightsFloats(c21)).toBe(132 * 576 + 36 * 132 * 64);
    // An artifact whose calls never reach batch 5 neither packs nor runs F(4,3) there.
    expect(chooseConvAlgorithm({ ...c21, maxBatch: 4 }).large).toBeUndefined();
    expect(convPackedWeightsFloats({ ...c21, maxBatch: 4 })).toBe(132 * 576);
    expect(chooseConvAlgorithm({ ...c21, maxBatch: 5 }).large).toMatchObject({ fromBatch: 5 });
    expect(cc).toMatch(/\n  else conv2d_forward_winograd<WinogradKind::F4x3>\(shape, \/\*x=\*\/arg<const float>\(a, 0\), \/\*w=\*\/arg<const float>\(a, 1\) \+ 76032, [^\n]*\n\}\n\n\/\/ layer 24/);
    // No second algorithm for a 1x1 conv, nor where F(4,3)'s weights outgrow L3 (NIN's 384 -> 1024 on 7x7).
    expect(chooseConvAlgorithm({ ...c11, R: 1, S: 1, ph: 0, pw: 0 }).large).toBeUndefined();
    expect(chooseConvAlgorithm({ C: 384, H: 7, W: 7, K: 1024, R: 3, S: 3, sh: 1, sw: 1, ph: 1, pw: 1 }).large).toBeUndefined();
    // NIN's 5x5 96 -> 256 layer on 28x28 (its biggest) takes F(2,5).
    expect(chooseConvAlgorithm({ C: 96, H: 28, W: 28, K: 256, R: 5, S: 5, sh: 1, sw: 1, ph: 2, pw: 2 }).algorithm).toBe('winograd_f2x5');
    // Training transforms its weights every call and models batch 16 alone, without F(4,3): NIN's 3x3
    // on 14x14 takes F(2,3) (inference's cost model would pick F(4,3) at batch 16), its 5x5 F(2,5).
    expect(chooseTrainingConvAlgorithm({ C: 256, H: 14, W: 14, K: 384, R: 3, S: 3, sh: 1, sw: 1, ph: 1, pw: 1 })).toBe('winograd_f2x3');
    expect(chooseConvAlgorithm({ C: 256, H: 14, W: 14, K: 384, R: 3, S: 3, sh: 1, sw: 1, ph: 1, pw: 1 }).relative.get('winograd_f4x3')![1]).toBeLessThan(0.5);
    expect(chooseTrainingConvAlgorithm({ C: 96, H: 28, W: 28, K: 256, R: 5, S: 5, sh: 1, sw: 1, ph: 2, pw: 2 })).toBe('winograd_f2x5');
    expect(chooseTrainingConvAlgorithm({ ...c11, sh: 2, sw: 2 })).toBe('implicit_gemm');
    expect(chooseTrainingConvAlgorithm({ C: 1, H: 28, W: 28, K: 32, R: 5, S: 5, sh: 1, sw: 1, ph: 2, pw: 2 })).toBe('implicit_gemm');
    expect(cc).toMatch(/(?:extern "C"|NINCC_CPU_EXPORT) void k11_conv_fwd\(const NinccArgs\* a\) \{\n  const Conv2dShape shape\{a->n, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1\};\n  conv2d_forward_winograd_training<WinogradKind::F2x3>\(shape, \/\*x=\*\/arg<const float>\(a, 0\), \/\*w=\*\/arg<const float>\(a, 1\), /);
    expect(cc).toMatch(/void k1_conv_fwd\(const NinccArgs\* a\) \{\n  const Conv2dShape shape\{a->n, 1, 28, 28, 32, 5, 5, 1, 1, 2, 2\};\n  conv2d_forward\(shape, /);
    const lines = convAlgorithmReport(lowerModel(compileSpec(source, spec).model!, { maxBatch: 8, trainKernels: 'cpu' }).programs);
    expect(lines[0]).toBe('CPU convolution algorithms (cost model at batch 1 and 16; relative time, lower is faster):');
    expect(lines.find((l) => l.includes('k11_conv_infer'))).toMatch(/3x3\/1 32→64 on 14x14: Winograd F\(2x2,3x3\): modeled 0\.\d\d× at batch 1, 0\.\d\d× at batch 16 of the implicit GEMM's time/);
    expect(lines.find((l) => l.includes('k4_conv_infer'))).toContain('1x1/1 32→32 on 28x28: implicit GEMM: a 1x1 conv');
    expect(lines.find((l) => l.includes('k21_conv_infer') && l.includes('from batch'))).toMatch(/3x3\/1 64→128 on 7x7, from batch 5: Winograd F\(4x4,3x3\): the model has it ahead of implicit GEMM from this batch up: 0\.\d\d× its time at batch 16/);
    expect(lines).toHaveLength(1 + 9 + 2);
    // The artifact's report.txt carries the same lines for the convs outside its 1x1 pair regions (k4+k7,
    // k14+k17, k24+k27: schedule/cpu-pointwise-pair-region.ts, the cpu target's default).
    const reportText = readFileSync(join(work, 'plain', 'report.txt'), 'utf8');
    const built = convAlgorithmReport(lowerModel(compileSpec(source, spec).model!, { maxBatch: 8, trainKernels: 'cpu', cpuPairBands: true }).programs);
    expect(built).toEqual(lines.filter((l) => !/k(4|7|14|17|24|27)_conv_infer/.test(l)));
    expect(reportText).toContain(built.join('\n'));
    expect(cc).not.toContain('ScopedKernelTimer');
  });

  it('NINCC_PROFILE at build time times every kernel; the table is written when the process exits', () => {
    process.env.NINCC_PROFILE = '1';
    const dir = join(work, 'profiled');
    const cc = build(dir);
    expect(cc).toMatch(/(?:extern "C"|NINCC_CPU_EXPORT) void k1_conv_infer\(const NinccArgs\* a\) \{\n  const ScopedKernelTimer timer\("k1_conv_infer"\);\n/);
    const table = join(work, 'profile.txt');
    // At run time NINCC_PROFILE says where the table goes. The kernel library stays loaded until the
    // process exits (its thread-local scratch makes it non-unloadable), so run one in a child.
    const r = nincc(['bench', dir, '--runs', '2'], { env: { NINCC_PROFILE: table } });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(table)).toBe(true);
    const text = readFileSync(table, 'utf8');
    expect(text).toMatch(/^nincc profile: [\d.]+ s in \d+ kernels\n/);
    // Each kernel's median beside its mean and max (the median is what to read on a loaded machine).
    expect(text).toMatch(/\nkernel\s+calls\s+ms\/call\s+median ms\s+max ms\s+%\n/);
    expect(text).toMatch(/\nk1_conv_infer\s+3\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\n/);
    expect(text).toMatch(/\nk1_conv_infer\s+3\s/); // warm-up and two timed runs at batch 1
    expect(text).toMatch(/\nk1_fold_bn\s+1\s/);
    expect(text).toMatch(/\nk1_conv_bwd_weight\s+3\s/);
    // NINCC_PROFILE_CLOCK=thread: the same table in the calling thread's CPU time, and it says so.
    const threadTable = join(work, 'profile-thread.txt');
    const t = nincc(['bench', dir, '--runs', '2'], { env: { NINCC_PROFILE: threadTable, NINCC_PROFILE_CLOCK: 'thread' } });
    expect(t.code, t.stderr).toBe(0);
    expect(readFileSync(threadTable, 'utf8')).toMatch(/^nincc profile: [\d.]+ s in \d+ kernels \(thread CPU time, NINCC_PROFILE_CLOCK=thread\)\n/);
    expect(text).not.toContain('thread CPU time');
  });
});
