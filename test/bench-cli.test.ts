// `nincc bench`: measured images/s and GFLOP/s rows for inference at batch 1 and 16 and a training step.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nincc, root } from './cli-run.js';

describe('nincc bench', () => {
  it('prints one row per case with images/s, spread, GFLOP/s and ms per batch', () => {
    const r = nincc(['bench', 'models/nin-fashion.model', '--runs', '3', '--device', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('nin_fashion on cpu: 0.025 GFLOP forward per image, 3 runs each');
    const row = /^(infer|train step)\s+(\d+)\s+([\d.]+) \(([\d.]+)–([\d.]+)\)\s+([\d.]+)\s+([\d.]+)$/;
    const rows = lines.slice(2).map((l) => row.exec(l));
    expect(rows.map((m) => m && `${m[1]} ${m[2]}`)).toEqual(['infer 1', 'infer 16', 'train step 16']);
    for (const m of rows) {
      const [ips, lo, hi, gflops] = [Number(m![3]), Number(m![4]), Number(m![5]), Number(m![6])];
      expect(ips).toBeGreaterThan(0);
      expect(lo).toBeLessThanOrEqual(ips);
      expect(hi).toBeGreaterThanOrEqual(ips);
      expect(gflops).toBeGreaterThan(0);
    }
  });

  it('checks its options before building a spec (was: a bad --device only failed after the build)', () => {
    const work = mkdtempSync(join(tmpdir(), 'nincc-bench-'));
    try {
      for (const [extra, message] of [[['--device', 'tpu'], "unknown device 'tpu' (available: cpu, emu, cuda)"], [['--runs', '0'], "--runs must be an integer of at least 1, got '0'"]] as const) {
        const r = nincc(['bench', join(root, 'models/nin-fashion.model'), ...extra], { cwd: work });
        expect(r.code).toBe(2);
        expect(r.stderr).toBe(`nincc bench: ${message}\n`);
      }
      expect(existsSync(join(work, 'build'))).toBe(false);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
