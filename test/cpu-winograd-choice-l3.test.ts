// The conv cost model's L3 input (compiler/schedule/cpu-winograd-choice-l3.ts): the size read from sysfs,
// which builds read it, and what it changes: NIN's 3x3 384→1024 on 7x7 (k31) takes Winograd F(4x4,3x3)
// from batch 5 up where its 56 MB of transformed weights fit the L3 (measured 0.37× the implicit GEMM at
// batch 16 on the 300 MiB VM, bench/logs/i19s-winograd-k31-f4x3.out), and keeps F(2x2,3x3) at batch 1.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chooseConvAlgorithm, convAlgorithmReport, convPackedWeightsFloats, defaultL3Bytes, winogradWeightsSize, packedWeightsFloatsOf } from '../compiler/schedule/cpu-conv-algorithm.js';
import { buildL3Bytes, hostL3Bytes, parseCacheSize } from '../compiler/schedule/cpu-winograd-choice-l3.js';
import { compileSpec, lowerModel } from '../compiler/pipeline.js';
import { root } from './cli-run.js';

const k31 = { C: 384, H: 7, W: 7, K: 1024, R: 3, S: 3, sh: 1, sw: 1, ph: 1, pw: 1 };
const mib = 2 ** 20;

/** A fake sysfs cache directory: one index per [level, type, size]. */
function fakeCacheDir(entries: readonly (readonly [string, string, string])[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'nincc-l3-'));
  entries.forEach(([level, type, size], i) => {
    mkdirSync(join(dir, `index${i}`));
    writeFileSync(join(dir, `index${i}`, 'level'), `${level}\n`);
    writeFileSync(join(dir, `index${i}`, 'type'), `${type}\n`);
    writeFileSync(join(dir, `index${i}`, 'size'), `${size}\n`);
  });
  return dir;
}

describe('the conv cost model reads the L3 of the machine a native build runs on', () => {
  it('parses sysfs cache sizes and finds the unified level-3 cache', () => {
    expect(parseCacheSize('307200K')).toBe(300 * mib);
    expect(parseCacheSize('32M')).toBe(32 * mib);
    expect(parseCacheSize('512')).toBe(512);
    expect(parseCacheSize('lots')).toBeUndefined();
    const vm = fakeCacheDir([['1', 'Data', '48K'], ['1', 'Instruction', '32K'], ['2', 'Unified', '2048K'], ['3', 'Unified', '307200K']]);
    expect(hostL3Bytes(vm)).toBe(300 * mib);
    expect(hostL3Bytes(fakeCacheDir([['1', 'Data', '48K'], ['2', 'Unified', '2048K']]))).toBeUndefined(); // no L3 listed
    expect(hostL3Bytes(join(vm, 'absent'))).toBeUndefined(); // not Linux
  });

  it('reads it for native builds only, and not with the hostL3 ablation off', () => {
    const host = () => 300 * mib;
    expect(buildL3Bytes(undefined, undefined, host)).toBe(300 * mib);
    expect(buildL3Bytes('native', {}, host)).toBe(300 * mib);
    expect(buildL3Bytes('avx2', undefined, host)).toBeUndefined();
    expect(buildL3Bytes('portable', undefined, host)).toBeUndefined();
    expect(buildL3Bytes('native', { hostL3: false }, host)).toBeUndefined();
  });

  it('holds NIN k31 F(4x4,3x3) in a large L3 from batch 5 up, and keeps F(2x2,3x3) at batch 1', () => {
    // Past the default 32 MiB the model streams F(4,3)'s 56 MB from memory: F(2,3) at every batch.
    expect(4 * winogradWeightsSize('winograd_f4x3', 1024, 384)).toBeGreaterThan(defaultL3Bytes);
    const small = chooseConvAlgorithm(k31);
    expect(small.algorithm).toBe('winograd_f2x3');
    expect(small.large).toBeUndefined();
    expect(chooseConvAlgorithm({ ...k31, l3Bytes: 32 * mib }).large).toBeUndefined();
    const big = chooseConvAlgorithm({ ...k31, l3Bytes: 300 * mib });
    expect(big.algorithm).toBe('winograd_f2x3');
    expect(big.large).toMatchObject({ algorithm: 'winograd_f4x3', fromBatch: 5 });
    // Modeled against the measured 1-thread times (i19s): batch 1 F(4,3) 2.2× the GEMM, batch 16 0.37×.
    const f43 = big.relative.get('winograd_f4x3')!;
    expect(f43[0]).toBeGreaterThan(1.8);
    expect(f43[1]).toBeLessThan(0.45);
    expect(convPackedWeightsFloats({ ...k31, l3Bytes: 300 * mib })).toBe(packedWeightsFloatsOf('winograd_f2x3', k31) + packedWeightsFloatsOf('winograd_f4x3', k31));
    // An artifact whose calls stay below batch 5 neither packs nor runs it.
    expect(chooseConvAlgorithm({ ...k31, l3Bytes: 300 * mib, maxBatch: 4 }).large).toBeUndefined();
  });

  it('carries the L3 from the lowering options into the conv steps and the report', () => {
    const spec = join(root, 'models/nin.model');
    const model = compileSpec(readFileSync(spec, 'utf8'), spec).model!;
    const lowered = (cpuL3Bytes?: number) => lowerModel(model, { maxBatch: 16, trainKernels: 'cpu', ...(cpuL3Bytes !== undefined && { cpuL3Bytes }) }).programs;
    const k31Line = (lines: string[]) => lines.filter((l) => l.includes('k31_conv_infer'));
    const held = lowered(300 * mib);
    const step = held.flatMap((p) => p.steps).find((s) => s.kernel === 'k31_conv_infer')!;
    expect(step.consts).toMatchObject({ l3Bytes: 300 * mib, maxBatch: 16 });
    expect(k31Line(convAlgorithmReport(held))).toEqual([
      expect.stringMatching(/k31_conv_infer +3x3\/1 384→1024 on 7x7: Winograd F\(2x2,3x3\)/),
      expect.stringMatching(/k31_conv_infer +3x3\/1 384→1024 on 7x7, from batch 5: Winograd F\(4x4,3x3\): the model has it ahead/),
    ]);
    expect(k31Line(convAlgorithmReport(lowered()))).toHaveLength(1);
  });
});
