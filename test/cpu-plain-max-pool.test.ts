// The cpuPlainMaxPool ablation (compiler/ablations.ts) as generated code: by default an inference max pool calls
// maxpool_forward with its defaults, so planes of at most 32 columns take a plain max and Torch's NaN rule only
// where a plane holds a NaN (runtime pool.h plane_max_in_registers); with the switch off each inference max pool
// passes plain_max=false, and training's do not change. The kernels' numerics (float64 reference, the NaN rule,
// 1, 2 and all threads, and the same bits either way) are runtime/kernels-test/test_pool.cc's.
import { describe, expect, it } from 'vitest';
import { compiledNin, kernelSource as kernel } from './cpu-nin-compiled.js';

describe('cpuPlainMaxPool', () => {
  it('leaves the plain max to the kernel by default, and asks for the rule in every inference max pool when ablated', () => {
    const on = compiledNin(), off = compiledNin({ cpuPlainMaxPool: false });
    const inferPools = (c: typeof on) => c.lowered.programs.filter((p) => p.name === 'infer').flatMap((p) => p.steps).filter((s) => s.op === 'maxpool_fwd_infer');
    expect(inferPools(off).length).toBe(3); // NIN's three max pools
    for (const s of inferPools(off)) {
      expect(s.consts).toMatchObject({ ruledMax: true });
      expect(kernel(off.cpu.text, s.kernel)).toMatch(/maxpool_forward\(shape, [^\n]*, nullptr, PoolOutput\{\}, \/\*plain_max=\*\/false\);/);
    }
    for (const s of inferPools(on)) expect(s.consts).not.toHaveProperty('ruledMax');
    expect(on.cpu.text).not.toContain('plain_max');
    expect(off.cpu.text.match(/plain_max=\*\/false/g)).toHaveLength(3); // training's max pools keep the default
  });
});
