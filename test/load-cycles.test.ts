// Issue #21: load/infer/dispose of nin-fashion fast and without growth, and models dropped without
// dispose() freed by their finalizer. The full 10,000 cycles: bench/load-cycles.ts (fewer here, same bounds).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCpuArtifact, droppedModels, loadInferDisposeCycles } from '../bench/load-cycles.js';
import { root } from './cli-run.js';

describe('load/dispose cycles of nin-fashion', () => {
  let work: string;
  let dir: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'nincc-cycles-'));
    dir = buildCpuArtifact(join(root, 'models/nin-fashion.model'), join(work, 'fashion'));
  }, 300_000);
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  // The time bound is on this process's CPU time per cycle: vitest runs other files on the same two
  // cores, which stretches wall time without saying anything about this code (was: about 200 ms).
  // Contention still inflates CPU time (shared caches, a busy sibling hyperthread): about 15 ms was
  // measured on a quiet machine, so the bound leaves room; the 10,000-cycle target is the bench's.
  it('runs 600 load/infer/dispose cycles at under 30 ms each, memory held growing under 10 MiB after the first 100', async () => {
    const r = await loadInferDisposeCycles(dir, 600, 100);
    console.log(`load/infer/dispose: ${r.cycles} cycles in ${r.seconds.toFixed(1)} s (${r.msPerCycle.toFixed(1)} ms wall, ${r.cpuMsPerCycle.toFixed(1)} ms CPU each), RSS ${r.rssAfterWarmupMiB.toFixed(0)} -> ${r.rssEndMiB.toFixed(0)} MiB after warm-up; less V8's empty heap ${r.heldSamplesMiB.map((x) => x.toFixed(0)).join(' ')} MiB, growth ${r.growthMiB.toFixed(1)} MiB (medians of 3 at each end)`);
    expect(r.cpuMsPerCycle).toBeLessThan(30);
    expect(r.growthMiB).toBeLessThan(10);
  });

  it('frees 200 models dropped without dispose() (was: 1.46 GB before collection)', async () => {
    const r = await droppedModels(dir, 200);
    console.log(`200 dropped models: RSS ${r.rssBeforeMiB.toFixed(0)} MiB before, peak ${r.rssPeakMiB.toFixed(0)} MiB`);
    expect(r.rssPeakMiB - r.rssBeforeMiB).toBeLessThan(256);
  });
});
