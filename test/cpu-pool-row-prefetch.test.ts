// The poolRowPrefetch ablation (compiler/ablations.ts) as generated code: by default an inference max pool calls
// maxpool_forward with its defaults, so planes wider than 32 columns prefetch their rows ahead (runtime pool.h
// plane_max_two_pass); with the switch off each inference max pool passes prefetch_rows=false, after the plain max's
// flag (both ablations at once pass both), and training's do not change. The kernels' numerics (float64 reference,
// 1, 2 and all threads, the same bits either way) are runtime/kernels-test/test_pool.cc's.
import { describe, expect, it } from 'vitest';
import { compiledNin, kernelSource as kernel } from './cpu-nin-compiled.js';

describe('poolRowPrefetch', () => {
  it('leaves the row prefetches to the kernel by default, and turns them off in every inference max pool when ablated', () => {
    const on = compiledNin(), off = compiledNin({ poolRowPrefetch: false }), both = compiledNin({ poolRowPrefetch: false, cpuPlainMaxPool: false });
    const inferPools = (c: typeof on) => c.lowered.programs.filter((p) => p.name === 'infer').flatMap((p) => p.steps).filter((s) => s.op === 'maxpool_fwd_infer');
    expect(inferPools(off).length).toBe(3); // NIN's three max pools
    for (const s of inferPools(off)) {
      expect(s.consts).toMatchObject({ unfetchedRows: true });
      expect(kernel(off.cpu.text, s.kernel)).toMatch(/maxpool_forward\(shape, [^\n]*, nullptr, PoolOutput\{\}, \/\*plain_max=\*\/true, \/\*prefetch_rows=\*\/false\);/);
    }
    for (const s of inferPools(both)) expect(kernel(both.cpu.text, s.kernel)).toMatch(/, nullptr, PoolOutput\{\}, \/\*plain_max=\*\/false, \/\*prefetch_rows=\*\/false\);/);
    for (const s of inferPools(on)) expect(s.consts).not.toHaveProperty('unfetchedRows');
    expect(on.cpu.text).not.toContain('prefetch_rows');
    expect(off.cpu.text.match(/prefetch_rows=\*\/false/g)).toHaveLength(3); // training's max pools keep the default
  });
});
