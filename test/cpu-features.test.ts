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
    expect((e as Error).message).toBe('build/x: its cpu kernels were compiled for a CPU with avx2, fma, avx512f; this machine lacks avx512f: rebuild the artifact on this machine');
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
});
