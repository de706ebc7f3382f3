// The bf16 data gradients' statistics epilogue reading e_y in 16-byte runs transposed across lanes
// (compiler/backends/cuda/conv-mma-dgrad-stats-runs.ts, switch `dgradStatsRuns`): only where each e_y value is read
// from changes, so the builds must agree bitwise. The spec: 1×1 convs of 24 → 40 → 36 channels on a 4×6 plane (24
// positions: statistics rows padded to 32, so a part's last run of 8 lies past the plane), 40 and 36 channels (n8
// tiles past C), a batch of 3 on grids for 4 (parts past n). NIN's k4/k7 data gradients take the runs; its 14×14 and
// 7×7 planes (not whole runs) keep the direct reads. CI checks the compiled kernels; the emu builds run with NINCC_TEST_FULL=1.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Compiled } from '../compiler/pipeline.js';
import { compileEmuVariant } from './reference/emu-variants.js';
import { expectSameVariants } from './reference/same-variants.js';
import { dgradStatsSpec } from './reference/dgrad-stats-spec.js';

const FULL = process.env.NINCC_TEST_FULL === '1';
const CLASSES = 3;
const SPEC = dgradStatsSpec('runs', 4, 6, CLASSES);
const WORDS = "the input BN's y loaded in 16-byte runs, transposed across lanes";
const TRANSPOSE = 'nincc::shfl_xor(set ? ey[w] : ey[w + 2], 16)';
const DIRECT = 'const float yv = nincc::bf16_to_float(nincc::ld(&e_y[at]));';

const dgrads = (c: Compiled) => new Map((c.cuda?.kernels ?? []).filter((k) => /_conv_dgrad_fused$/.test(k.name)).map((k) => [k.name, k]));

describe('the data gradients\' e_y runs (compiled, no build)', () => {
  it('by default, both 1×1 data gradients with a statistics epilogue read e_y in runs and transpose them; dgradStatsRuns: false, directly; the same tiles', () => {
    const on = dgrads(compileEmuVariant(SPEC, 'runs.model')), off = dgrads(compileEmuVariant(SPEC, 'runs.model', { dgradStatsRuns: false }));
    const runs = [...on].filter(([, k]) => (k.fused ?? '').includes(WORDS)).map(([name]) => name).sort();
    expect(runs).toEqual(['k4_conv_dgrad_fused', 'k7_conv_dgrad_fused']);
    for (const name of runs) {
      const body = on.get(name)!.body.join('\n');
      expect(body, name).toContain(TRANSPOSE);
      expect(body, name).not.toContain(DIRECT);
      expect(on.get(name)!.tile, name).toBe(off.get(name)!.tile);
      expect(off.get(name)!.fused, name).not.toContain(WORDS);
      expect(off.get(name)!.body.join('\n'), name).toContain(DIRECT);
    }
  });

  it("NIN's k4/k7 data gradients (56×56) and k14/k17 (28×28) take the runs; the 14×14 and 7×7 ones (k24…k37) read e_y directly", () => {
    const nin = dgrads(compileEmuVariant(readFileSync('models/nin.model', 'utf8'), 'models/nin.model'));
    const runs = [...nin].filter(([, k]) => (k.fused ?? '').includes(WORDS)).map(([name]) => name).sort();
    expect(runs).toEqual(['k14_conv_dgrad_fused', 'k17_conv_dgrad_fused', 'k4_conv_dgrad_fused', 'k7_conv_dgrad_fused']);
    for (const name of ['k24_conv_dgrad_fused', 'k34_conv_dgrad_fused']) expect(nin.get(name)!.body.join('\n'), name).toContain(DIRECT);
  });
});

if (!FULL) console.warn('test/emu-conv-mma-dgrad-stats-runs.test.ts: the bitwise comparison on emu runs with NINCC_TEST_FULL=1; CI checks the compiled kernels');

describe.runIf(FULL)('the data gradients\' e_y runs on emu, bitwise the direct reads (NINCC_TEST_FULL=1)', () => {
  it('on: one step\'s gradients, three SGD steps and inference are bitwise those of it off', async () => {
    await expectSameVariants({ spec: SPEC, file: 'runs.model', input: [5, 4, 6], classes: CLASSES, on: {}, off: { dgradStatsRuns: false }, live: 'conv4.weight' }, 43);
  }, 1_800_000);
});
