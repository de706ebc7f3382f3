// An artifact records the CPU features its kernels.cpu.so was compiled for (plan.json cpuFeatures);
// loading it on a machine without one is a clear error naming it, not an illegal instruction.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hostCpuFlags, missingCpuFeatures } from '../runtime/cpu-features.js';
import { checkCpuFeatures } from '../runtime/model.js';
import { ErrorCodes, load, NinccError } from '../runtime/index.js';
import { buildSpec } from './reference/artifacts.js';
import { compileSpec } from '../compiler/pipeline.js';
import { buildArtifact } from '../compiler/build.js';
import { cpuFeatures } from '../compiler/backends/cpu/toolchain.js';

const work = mkdtempSync(join(tmpdir(), 'nincc-cpu-features-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('cpu features', () => {
  it('reads the flags of /proc/cpuinfo and lists the missing ones in order', () => {
    const host = hostCpuFlags('processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\nbogomips\t: 1\n')!;
    expect([...host]).toEqual(['fpu', 'sse2', 'avx', 'avx2', 'fma']);
    expect(missingCpuFeatures(['avx2', 'avx512f', 'fma', 'avx512bw'], host)).toEqual(['avx512f', 'avx512bw']);
    expect(hostCpuFlags('no flags here')).toBeUndefined();
  });

  it('refuses a plan whose features the host lacks, naming them; no list or no cpuinfo means no check', () => {
    const host = new Set(['avx2', 'fma']);
    let e: unknown;
    try {
      checkCpuFeatures('build/x', ['avx2', 'fma', 'avx512f'], host);
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(NinccError);
    expect((e as NinccError).code).toBe(ErrorCodes.cpu);
    expect((e as Error).message).toBe('build/x: its cpu kernels were compiled for a CPU with avx2, fma, avx512f; this machine lacks avx512f: rebuild the artifact on this machine, or with \'nincc build --cpu portable\' for any x86-64');
    expect(() => checkCpuFeatures('build/x', ['avx2'], host)).not.toThrow();
    expect(() => checkCpuFeatures('build/x', undefined, host)).not.toThrow();
    expect(() => checkCpuFeatures('build/x', ['avx512f'], undefined)).not.toThrow();
  });

  it('load() checks before the library runs', async () => {
    const built = buildSpec('feat', 'model feat {\n  input 1x4x4\n  view(-1) linear(16, 2) logsoftmax\n}\n', 2);
    const dir = join(work, 'feat');
    cpSync(built.dir, dir, { recursive: true });
    const plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'plan.json'), JSON.stringify({ ...plan, cpuFeatures: ['no_such_feature'] }));
    await expect(load(dir)).rejects.toThrow(`${dir}: its cpu kernels were compiled for a CPU with no_such_feature; this machine lacks no_such_feature`);
  });

  it('nincc build --cpu picks the instruction set, lists it in plan.json and compiles with exactly those flags', async () => {
    expect(cpuFeatures('portable')).toEqual([]);
    expect(cpuFeatures('avx2')).toEqual(['avx2', 'fma']);
    expect(cpuFeatures('avx512')).toEqual(['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512dq', 'avx512vl']);
    expect(cpuFeatures('native', new Set(['sse2']))).toEqual([]);
    expect(cpuFeatures('native', new Set(['avx2', 'fma', 'avx512f']))).toEqual(['avx2', 'fma']);
    expect(cpuFeatures('native', new Set(['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512dq', 'avx512vl']))).toHaveLength(6);
    // A small conv net (the conv/BN/pool kernels have vector paths): portable and native agree, and load.
    const source = 'model lvl {\n  input 3x12x12\n  conv(3, 8, 3, 3, 1, 1, 1, 1) bn(8) relu maxpool(2, 2, 2, 2)\n  view(-1) linear(288, 5) logsoftmax\n}\n';
    const m = compileSpec(source, 'lvl.model').model!;
    const outputs: Float32Array[] = [];
    for (const cpu of ['portable', 'native'] as const) {
      const dir = join(work, `lvl-${cpu}`);
      buildArtifact(m, source, { outDir: dir, target: 'cpu', maxBatch: 2, cpu });
      const plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as { cpuFeatures: string[] };
      expect(plan.cpuFeatures).toEqual(cpuFeatures(cpu));
      const command = readFileSync(join(dir, 'report.txt'), 'utf8');
      if (cpu === 'portable') expect(command).not.toMatch(/-mavx|-mfma/);
      else for (const f of plan.cpuFeatures) expect(command).toContain(`-m${f}`);
      const model = await load(dir, { seed: 3 });
      outputs.push(await model.infer(Float32Array.from({ length: 2 * 3 * 12 * 12 }, (_, i) => Math.sin(i))));
      await model.dispose();
    }
    for (let i = 0; i < outputs[0].length; i++) expect(Math.abs(outputs[0][i] - outputs[1][i])).toBeLessThan(1e-4);
  });
});
