// The HBM rule on a sampled profile against the truth of a full one (docs/profile.md, "HBM traffic"):
// test/data/conv-mma.model at batch 32 in bf16, whose launches all fit in an H100's L2, so that HBM
// moves each launch's distinct sectors once — what a full run (--sample 0) counts exactly in
// unique_global_sectors. Sampled at 2 blocks per class the rule must come within 5% of that over all
// kernels and within 0.8–1.25× for each kernel of 5k sectors or more. Measured (bench/logs/
// i15r-sampled-vs-full-conv-mma.out): 0.984 over all, 0.86–1.08 per such kernel; the old rule (the
// sample's distinct sectors scaled) gave 1.80 over all and up to 3.03. NINCC_TEST_FULL=1: two profile
// runs, 21 s on 2 loaded cores with the kernels cached (profile-conv-mma.test.ts builds the same ones),
// minutes cold.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ProfileReport } from '../runtime/profile/run-profile.js';
import { nincc, root } from './cli-run.js';

const work = mkdtempSync(join(tmpdir(), 'nincc-profile-l2-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const profile = (sample: number): ProfileReport => {
  const r = nincc(['profile', join(root, 'test/data/conv-mma.model'), '--batch', '32', '--precision', 'bf16', '--sample', String(sample), '--json'], { cwd: work, env: { NINCC_NVCC: '0' }, timeoutMs: 600_000 });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as ProfileReport;
};

describe.runIf(process.env.NINCC_TEST_FULL === '1')('HBM sectors of a sampled profile (NINCC_TEST_FULL=1)', () => {
  it('come within 5% of a full run\'s distinct sectors over all kernels, and 0.8–1.25x for each large one', () => {
    const sampled = profile(2);
    const full = profile(0);
    let exact = 0;
    let predicted = 0;
    for (const k of sampled.kernels) {
      const f = full.kernels.find((x) => x.kernel === k.kernel && x.phase === k.phase);
      if (!f) throw new Error(`${k.kernel} (${k.phase}) is not in the full run`);
      exact += f.counts.unique_global_sectors;
      predicted += k.prediction.hbmSectors;
      if (f.counts.unique_global_sectors >= 5000) {
        const ratio = k.prediction.hbmSectors / f.counts.unique_global_sectors;
        expect(ratio, `${k.phase} ${k.kernel}: ${k.prediction.hbmSectors} sampled, ${f.counts.unique_global_sectors} distinct`).toBeGreaterThan(0.8);
        expect(ratio, `${k.phase} ${k.kernel}: ${k.prediction.hbmSectors} sampled, ${f.counts.unique_global_sectors} distinct`).toBeLessThan(1.25);
      }
    }
    expect(predicted / exact).toBeGreaterThan(0.95);
    expect(predicted / exact).toBeLessThan(1.05);
  }, 1_200_000);
});
