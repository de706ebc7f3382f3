// The data gradients' statistics-epilogue parameters read once a column (compiler/backends/cuda/conv-mma-grad.ts,
// switch `dgradStatsOnce`): every data gradient with a statistics epilogue reads the input BN's four parameters once per
// column and 32-row part, not per accumulator. Only where each parameter is read from changes, so the builds must agree
// bitwise. The spec: 1×1 convs of 24 → 40 → 36 channels on an odd 7×9 plane (63 positions, statistics rows padded to
// 64), a batch of 3 on grids for 4. CI checks the compiled kernels; the emu builds run with NINCC_TEST_FULL=1.
import { describe, expect, it } from 'vitest';
import type { Compiled } from '../compiler/pipeline.js';
import { compileEmuVariant } from './reference/emu-variants.js';
import { expectSameVariants } from './reference/same-variants.js';
import { dgradStatsSpec } from './reference/dgrad-stats-spec.js';

const FULL = process.env.NINCC_TEST_FULL === '1';
const CLASSES = 3;
const SPEC = dgradStatsSpec('stats', 7, 9, CLASSES);

const dgrads = (c: Compiled) => new Map((c.cuda?.kernels ?? []).filter((k) => /_conv_dgrad_fused$/.test(k.name)).map((k) => [k.name, k]));

describe('the data gradients\' statistics-epilogue parameters (compiled, no build)', () => {
  it('by default, the statistics epilogues read the input BN\'s parameters once a column and part; dgradStatsOnce: false, per accumulator', () => {
    const on = dgrads(compileEmuVariant(SPEC, 'stats.model')), off = dgrads(compileEmuVariant(SPEC, 'stats.model', { dgradStatsOnce: false }));
    expect([...on.keys()].sort()).toEqual(['k4_conv_dgrad_fused', 'k7_conv_dgrad_fused']);
    for (const [name, k] of on) {
      expect(k.fused, name).toContain("the input BN's parameters loaded once a column and 32-row part");
      expect(k.body.join('\n'), name).toContain('const float s_e_invstd = col < ');
      expect(k.body.join('\n'), name).not.toContain('nincc::ld(&e_invstd[col]));');
    }
    for (const [name, k] of off) {
      expect(k.fused, name).not.toMatch(/once a column/);
      expect(k.body.join('\n'), name).toContain('nincc::ld(&e_invstd[col]));');
    }
  });
});

if (!FULL) console.warn('test/emu-conv-mma-dgrad-stats-once.test.ts: the bitwise comparison on emu runs with NINCC_TEST_FULL=1; CI checks the compiled kernels');

describe.runIf(FULL)('the data gradients\' statistics parameters on emu, bitwise the per-accumulator reads (NINCC_TEST_FULL=1)', () => {
  it('on: one step\'s gradients, three SGD steps and inference are bitwise those of it off', async () => {
    await expectSameVariants({ spec: SPEC, file: 'stats.model', input: [5, 7, 9], classes: CLASSES, on: {}, off: { dgradStatsOnce: false }, live: 'conv4.weight' }, 41);
  }, 1_800_000);
});
