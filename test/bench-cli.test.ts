// `nincc bench`: measured images/s and GFLOP/s rows for inference at batch 1 and 16 and a training step.
import { describe, expect, it } from 'vitest';
import { nincc } from './cli-run.js';

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
});
