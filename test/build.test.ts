// `nincc build`: the artifact's files, readable generated code, and the content-hash cache.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nincc } from './cli-run.js';

const work = mkdtempSync(join(tmpdir(), 'nincc-build-'));

describe('nincc build', () => {
  const out = join(work, 'fashion');

  it('writes plan.json, the generated C++, the library and report.txt; a second build is a cache hit', () => {
    const first = nincc(['build', 'models/nin-fashion.model', '-o', out, '--max-batch', '8']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^built .* \(model nin_fashion, max batch 8, new, [\d.]+ s\)\n$/);
    const plan = JSON.parse(readFileSync(join(out, 'plan.json'), 'utf8'));
    expect(plan).toMatchObject({ format: 'nincc-plan', version: 2, model: 'nin_fashion', maxBatch: 8, input: [1, 28, 28], output: [10] });
    expect(Object.keys(plan.programs).sort()).toEqual(['infer', 'prepare_infer', 'sgd_update', 'train_forward_backward']);
    // Only the BN folding runs once after the weights change: launched step by step, nothing held warm for it.
    expect(Object.entries(plan.programs).filter(([, p]) => (p as { oneShot?: boolean }).oneShot).map(([name]) => name)).toEqual(['prepare_infer']);

    const again = nincc(['build', 'models/nin-fashion.model', '-o', out, '--max-batch', '8']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/, cached, /);
    expect(again.stderr).toMatch(/up to date \(cache hit/);
  });

  it('generated code names the spec layer and line of every kernel', () => {
    const cc = readFileSync(join(out, 'kernels.cpu.cc'), 'utf8');
    expect(cc).toContain('// layer 1: nn.SpatialConvolution(1 -> 32, 5x5, 1,1, 2,2) at nin-fashion.model:10:5 in block(1, 32, 5, 2) at line 15');
    // The first block as one region in bands of rows (schedule/cpu-block-bands.ts), its 5x5 conv a lambda of the band's shape.
    expect(cc).toMatch(/NINCC_CPU_EXPORT void k1_block_band\(const NinccArgs\* a\) \{\n  const Conv2dShape shape\{a->n, 1, 28, 28, 32, 5, 5, 1, 1, 2, 2\};\n  const Pool2dShape pool\{a->n, 32, 28, 28, 3, 3, 2, 2, 1, 1\};\n  const auto conv = \[&\]\(const Conv2dShape& shape, const float\* x, float\* y\) \{\n    conv2d_forward<packed_forward_paths\(Conv2dShape\{1, 1, 28, 28, 32, 5, 5, 1, 1, 2, 2\}\)>\(shape, x, /);
    const report = readFileSync(join(out, 'report.txt'), 'utf8');
    expect(report).toContain('(1) + (2) + (3): nn.SpatialConvolution(1 -> 32, 5x5, 1,1, 2,2) + nn.SpatialBatchNormalization + nn.ReLU → k1_conv_infer');
  });

  it('kernels.cpu.so exports only the ABI, the kernel table and the kernels, so two artifacts in one process share nothing (not even the thread pool)', () => {
    const nm = spawnSync('nm', ['-D', '--defined-only', join(out, 'kernels.cpu.so')], { encoding: 'utf8' });
    if (nm.error) return; // no binutils here
    const plan = JSON.parse(readFileSync(join(out, 'plan.json'), 'utf8')) as { programs: Record<string, { steps: { kernel: string }[] }> };
    const kernels = new Set(Object.values(plan.programs).flatMap((p) => p.steps.map((s) => s.kernel)));
    const names = nm.stdout.split('\n').map((l) => l.trim().split(/\s+/)[2]).filter((n): n is string => Boolean(n));
    // Standard-library templates instantiated over the pool keep libstdc++'s default visibility; -Bsymbolic
    // binds the library's own references to its own copies of them.
    // The ABI's symbols (runtime/include/nincc/abi.h): the last three hand the batch split and the program hold the library's own pool.
    const abi = new Set(['nincc_abi', 'nincc_source_hash', 'nincc_kernels', 'nincc_cpu_part_threads', 'nincc_cpu_run_parts', 'nincc_cpu_hold_workers']);
    expect(names.filter((n) => !abi.has(n) && !kernels.has(n) && !/^_Z(N|T[ISV]N)St/.test(n))).toEqual([]);
    expect(names).toContain('k1_block_band');
    expect(names).toContain('nincc_cpu_hold_workers');
    expect(spawnSync('readelf', ['-d', join(out, 'kernels.cpu.so')], { encoding: 'utf8' }).stdout).toMatch(/\(SYMBOLIC\)|FLAGS.*SYMBOLIC/);
  });

  it('a changed spec rebuilds; a bad spec fails with diagnostics; an unknown target is a usage error', () => {
    const spec = join(work, 'tiny.model');
    writeFileSync(spec, 'model tiny { input 1x4x4 view(-1) linear(16, 3) logsoftmax }\n');
    expect(nincc(['build', spec, '-o', join(work, 'tiny')]).stdout).toMatch(/, new, /);
    writeFileSync(spec, 'model tiny { input 1x4x4 view(-1) linear(16, 4) logsoftmax }\n');
    expect(nincc(['build', spec, '-o', join(work, 'tiny')]).stdout).toMatch(/, new, /);
    writeFileSync(spec, 'model tiny { input 1x4x4 view(-1) linear(15, 4) logsoftmax }\n');
    const bad = nincc(['build', spec, '-o', join(work, 'tiny')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('error E033: linear(15, 4) expects 15 features');
    expect(nincc(['build', 'models/nin.model', '--target', 'tpu'])).toMatchObject({ code: 2, stderr: "nincc build: unknown target 'tpu' (available: cpu, emu, cuda)\n" });
  });
});
