// The tap-major k×k forwards' and data gradients' B through a cp.async ring (compiler/backends/cuda/conv-mma-b-ring.ts):
// the bf16 weight copy's slices copied global → shared S − 1 slices ahead into the same swizzled places the plain
// staging stored them, so a build with the ring and one without (`kxkBRing: false`) must agree bitwise: one training
// step's gradients, three SGD steps and inference. The spec runs a 5×5 pad-2 and a 3×3 pad-1 forward (padding in the
// halo, the pending BN + ReLU on the staged x; 25 and 9 slices a group, so the 4-stage ring wraps mid-group and
// across groups), the 5×5's and a pad-0 3×3's data gradients, 14×12 then 7×6 planes (partial tiles: statistics rows
// padded; batch 3 on grids for 4: whole blocks past the batch) and a stride-2 3×3 (not tap-major: no ring, unchanged).
// CI checks the compiled kernels; the emu builds run with NINCC_TEST_FULL=1.
import { describe, expect, it } from 'vitest';
import type { Compiled } from '../compiler/pipeline.js';
import { compileEmuVariant } from './reference/emu-variants.js';
import { expectSameVariants } from './reference/same-variants.js';

const INPUT = [8, 14, 12] as const;
const CLASSES = 3;
const SPEC = `model bring {
  input ${INPUT.join('x')}
  conv(8, 32, 3, 3, 1, 1, 1, 1)  bn(32)  relu
  conv(32, 64, 5, 5, 1, 1, 2, 2)  bn(64)  relu
  maxpool(2, 2, 2, 2, 0, 0)
  conv(64, 80, 3, 3, 1, 1, 1, 1)  bn(80)  relu
  conv(80, 32, 3, 3, 2, 2, 1, 1)  bn(32)  relu
  conv(32, 32, 3, 3, 1, 1, 0, 0)  relu
  view(-1)  linear(64, ${CLASSES})  logsoftmax
}`;

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-b-ring.test.ts: the emu builds and the bitwise comparison run with NINCC_TEST_FULL=1; CI checks the compiled kernels');

const RING = /B staged by cp\.async from the bf16 copy in a (\d)-stage ring/;
/** Each k×k conv kernel's ring stages ('' where it stages B with plain loads). */
function stages(c: Compiled): Record<string, string> {
  const kernels = (c.cuda?.kernels ?? []).filter((k) => /_conv_(infer|fwd_fused|dgrad_fused)$/.test(k.name));
  return Object.fromEntries(kernels.map((k) => [k.name, RING.exec(k.fused ?? '')?.[1] ?? '']));
}

describe('the k×k B ring (compiled, no build)', () => {
  it('the tap-major forwards and data gradients take the ring, with its wait and no plain B staging; kxkBRing: false has none; the same tiles', () => {
    const on = compileEmuVariant(SPEC, 'bring.model'), off = compileEmuVariant(SPEC, 'bring.model', { kxkBRing: false });
    const ringed = Object.entries(stages(on)).filter(([, s]) => s !== '').map(([name]) => name).sort();
    // The 5×5 (k4) and the pad-1 3×3 (k8) forwards, training's and inference's, and the data gradients of the 5×5 and the pad-0 3×3 (k14: a pad-2
    // full conv); k8's data gradient (80 channels of dY', not whole groups of 32), the stride-2 k11 and k14's forward (past 48 KiB) are not tap-major.
    expect(ringed).toEqual(['k14_conv_dgrad_fused', 'k4_conv_dgrad_fused', 'k4_conv_fwd_fused', 'k4_conv_infer', 'k8_conv_fwd_fused', 'k8_conv_infer']);
    const kernels = new Map((on.cuda?.kernels ?? []).map((k) => [k.name, k]));
    for (const name of ringed) {
      const body = kernels.get(name)!.body.join('\n');
      const s = Number(stages(on)[name]);
      expect(body, name).toContain(`nincc::cp_async_wait_group<${s - 1}>();`);
      expect(body, name).not.toMatch(/Stage B from the bf16 copy/);
    }
    for (const [name, s] of Object.entries(stages(off))) expect(s, name).toBe('');
    const offKernels = new Map((off.cuda?.kernels ?? []).map((k) => [k.name, k]));
    for (const [name, k] of kernels) expect(k.tile, name).toBe(offKernels.get(name)?.tile);
  });
});

describe.runIf(FULL)('the k×k B ring on emu (NINCC_TEST_FULL=1)', () => {
  it('one training step, three SGD steps and inference: bitwise those of the plain B staging', async () => {
    await expectSameVariants({ spec: SPEC, file: 'bring.model', input: INPUT, classes: CLASSES, on: {}, off: { kxkBRing: false }, live: 'conv4.weight' }, 91);
  }, 1_800_000);
});
