// The sampled profile of the bf16 weight gradients that sum their own splits (conv-mma-last-cta-wgrad.ts) against
// every block run (--sample 0). A sampled block never draws a tile's last ticket from memory, so the split sums
// the last blocks run are counted only because sample_grid (runtime/include/nincc/device/emu/grid.h) runs each
// ticket-drawing block again drawing the last one, weighted 1 in the ticket's period (the splits). Without that
// the sampled loads miss every split's partials (k7: 899 sectors sampled against 1,354 with every block run):
// the test compares each folded weight gradient's global load and store sectors (at this size every kernel's
// predicted µs is its launch overhead, so the µs cannot tell). Three small convs at batch 4, the shapes of
// test/emu-conv-mma-last-cta-wgrad.test.ts, without nvcc: the build dominates; each profile emulates in ~5 s.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KernelProfile, ProfileReport } from '../runtime/profile/run-profile.js';
import { nincc } from './cli-run.js';

const SPEC = `model fold_tail {
  input 4x7x5
  conv(4, 9, 3, 3, 1, 1, 1, 1)  bn(9)  relu
  conv(9, 14, 1, 1)  bn(14)  relu
  conv(14, 6, 3, 3, 2, 2, 1, 1)
  view(-1)  linear(72, 3)  logsoftmax
}
`;

describe('the sampled profile of weight gradients that sum their own splits', () => {
  let work: string;
  let sampled: ProfileReport;
  let full: ProfileReport;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'nincc-profile-fold-'));
    const spec = join(work, 'fold_tail.model');
    writeFileSync(spec, SPEC);
    const run = (sample: number): ProfileReport => {
      const r = nincc(['profile', spec, '--batch', '4', '--precision', 'bf16', '--sample', String(sample), '--json'], { cwd: work, env: { NINCC_NVCC: '0' }, timeoutMs: 300_000 });
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as ProfileReport;
    };
    sampled = run(2);
    full = run(0); // the artifact is built now: this run only emulates
  }, 600_000);
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const folded = (r: ProfileReport): KernelProfile[] => r.kernels.filter((k) => k.phase === 'train' && k.kernel.endsWith('_conv_wgrad_fused') && (k.counts.threadfences ?? 0) > 0);

  it('counts each folded weight gradient\'s global loads and stores as every block run does, within 5%', () => {
    expect(folded(full).map((k) => k.kernel)).toEqual(['k7_conv_wgrad_fused', 'k4_conv_wgrad_fused', 'k1_conv_wgrad_fused']);
    for (const s of folded(sampled)) {
      const f = full.kernels.find((k) => k.phase === 'train' && k.kernel === s.kernel)!;
      expect(s.counts.blocks, s.kernel).toBe(f.counts.blocks);
      for (const [what, got, want] of [
        ['global load sectors', s.counts.global_load_sectors, f.counts.global_load_sectors],
        ['global store sectors', s.counts.global_store_sectors, f.counts.global_store_sectors],
      ] as const) {
        expect(got / want, `${s.kernel} ${what}: sampled ${got}, every block ${want}`).toBeGreaterThan(0.95);
        expect(got / want, `${s.kernel} ${what}: sampled ${got}, every block ${want}`).toBeLessThan(1.05);
      }
    }
  });
});
