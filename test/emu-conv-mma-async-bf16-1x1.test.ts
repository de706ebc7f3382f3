// The 1×1 bf16 training forwards' ring of raw cp.async copies (compiler/backends/cuda/conv-mma-async-bf16-1x1.ts, opt-in
// `trainingAsyncRing`): bf16 x copied S − 1 slices ahead, converted after a barrier by the gather's own items. The values
// and their k order are the gather's, so both builds must agree bitwise: one training step's gradients, three SGD steps
// and inference. The spec makes every path run: 24-position planes padded to 32 statistics rows (whole runs of 8
// zero-filled), 40 channels (a slice with an 8-channel tail), 136 (5 slices: the 4-stage ring wraps), batch 3 on grids
// for 4 (images past n zero-filled). CI checks the compiled kernels; the emu builds run with NINCC_TEST_FULL=1.
import { describe, expect, it } from 'vitest';
import type { Compiled } from '../compiler/pipeline.js';
import { compileEmuVariant } from './reference/emu-variants.js';
import { expectSameVariants } from './reference/same-variants.js';

const FULL = process.env.NINCC_TEST_FULL === '1';
const CLASSES = 3;
const SPEC = `model ring {
  input 5x4x6
  conv(5, 40, 3, 3, 1, 1, 1, 1)  bn(40)  relu
  conv(40, 136, 1, 1, 1, 1, 0, 0)  bn(136)  relu
  conv(136, 24, 1, 1, 1, 1, 0, 0)  bn(24)  relu
  avgpool(6, 4)  view(-1)  linear(24, ${CLASSES})  logsoftmax
}`;

const forwards = (c: Compiled) => new Map((c.cuda?.kernels ?? []).filter((k) => /_conv_fwd_fused$/.test(k.name)).map((k) => [k.name, k]));

describe('the 1×1 training forwards\' raw cp.async ring (compiled, no build)', () => {
  it('opted in, both 1×1 forwards of bf16 x copy x into a 4-stage ring and read it by the gather\'s items; by default they gather; the same tiles', () => {
    const on = forwards(compileEmuVariant(SPEC, 'ring.model', { trainingAsyncRing: true })), off = forwards(compileEmuVariant(SPEC, 'ring.model'));
    const ring = [...on].filter(([, k]) => /copied raw by cp\.async into a 4-stage ring/.test(k.fused ?? '')).map(([name]) => name).sort();
    expect(ring).toEqual(['k4_conv_fwd_fused', 'k7_conv_fwd_fused']);
    for (const name of ring) {
      const body = on.get(name)!.body.join('\n');
      expect(body, name).toContain('nincc::cp_async_wait_group<2>();');
      expect(body, name).toMatch(/v = nincc::bf16_to_float\(nincc::ld\(&xr\[\(\(it % 4\) \* 32 \+ \(ko\)\) \* 128 \+ \(row\)\]\)\);/);
    }
    for (const [name, k] of off) expect(k.body.join('\n'), name).not.toMatch(/cp_async/);
    for (const [name, k] of on) expect(k.tile, name).toBe(off.get(name)!.tile);
    // 5×5 = 25 positions: a run of 8 would cross planes, so the gather.
    const odd = forwards(compileEmuVariant(SPEC.replace('input 5x4x6', 'input 5x5x5').replace('avgpool(6, 4)', 'avgpool(5, 5)'), 'ring.model', { trainingAsyncRing: true }));
    expect(odd.get('k4_conv_fwd_fused')!.fused).not.toMatch(/cp\.async/);
  });
});

if (!FULL) console.warn('test/emu-conv-mma-async-bf16-1x1.test.ts: the bitwise comparison on emu runs with NINCC_TEST_FULL=1; CI checks the compiled kernels');

describe.runIf(FULL)('the 1×1 training forwards\' raw cp.async ring on emu, bitwise the gather (NINCC_TEST_FULL=1)', () => {
  it('one step\'s gradients, three SGD steps and inference are bitwise the gather\'s', async () => {
    await expectSameVariants({ spec: SPEC, file: 'ring.model', input: [5, 4, 6], classes: CLASSES, on: { trainingAsyncRing: true }, off: {}, live: 'conv4.weight' }, 53);
  }, 1_800_000);
});
