// The bf16 epilogue stores in whole spans of 8 planes (compiler/backends/cuda/conv-mma-store-spans.ts): on blocks of
// whole images (6×6 planes, statistics rows padded to 64), a training forward's bf16 y and a data gradient's bf16 dX
// go through a span-major copy in shared memory, 16 bytes a lane, against the per-warp staging (`spanStores: false`,
// conv-mma-store-staged.ts). Only where each value is written from changes: both builds must agree bitwise (a training
// step, three SGD steps, inference), and the emulator's counters of a training step must show those kernels' stores
// at full coalescing with the spans and above it without, the same bytes in fewer sectors, no bank conflict added.
// The spec: NIN's last block in small (a tap-major 3×3, two 1×1s on 6×6), batch 3 on grids for 4 (a block's second
// image past the batch).
// CI checks the compiled kernels (no build, ~2 s); the emu builds run with NINCC_TEST_FULL=1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Compiled } from '../compiler/pipeline.js';
import { coalescing, fullyCoalesced } from '../runtime/profile/profile-coalescing.js';
import { load } from '../runtime/model.js';
import { randomizeAffine, rng, uniform } from './reference/artifacts.js';
import { buildEmuVariants, compileEmuVariant, type EmuVariants } from './reference/emu-variants.js';
import { spanLayout, spanWriteConflicts } from '../compiler/backends/cuda/conv-mma-store-spans-layout.js';
import { expectSameGradients, expectSameSteps } from './reference/same-training.js';
import { profiledLaunches } from './reference/emu-profile.js';

const INPUT = [32, 6, 6] as const;
const CLASSES = 3;
const SPEC = `model spans {
  input ${INPUT.join('x')}
  conv(32, 64, 3, 3, 1, 1, 1, 1)  bn(64)  relu
  conv(64, 64, 1, 1, 1, 1, 0, 0)  bn(64)  relu
  conv(64, 64, 1, 1, 1, 1, 0, 0)  bn(64)  relu
  avgpool(6, 6, 1, 1)  view(-1)  linear(64, ${CLASSES})  logsoftmax
}`;
/** The same on NIN's 7×7 planes (odd: the sector-phased, permuted slots). */
const SPEC7 = SPEC.replace('input 32x6x6', 'input 32x7x7').replace('avgpool(6, 6', 'avgpool(7, 7');

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-store-spans.test.ts: the emu builds, the bitwise comparison and the profiled stores run with NINCC_TEST_FULL=1; CI checks the compiled kernels');

const SPANS = /stored in whole spans of 8 planes|staged in shared memory into whole spans of 8 planes/;
/** The tensor-core forwards and data gradients by name, and the names of those that store in spans. */
function spanKernels(c: Compiled) {
  const kernels = new Map((c.cuda?.kernels ?? []).filter((k) => /_conv_(fwd_fused|dgrad_fused)$/.test(k.name)).map((k) => [k.name, k]));
  return { spans: [...kernels].filter(([, k]) => SPANS.test(k.fused ?? '')).map(([name]) => name).sort(), kernels };
}

describe('the span stores (compiled, no build)', () => {
  it('every bf16 y and dX on 6×6 planes is stored in spans, 16 bytes a lane after a block barrier; spanStores: false keeps the per-warp parts; the same tiles', () => {
    const on = spanKernels(compileEmuVariant(SPEC, 'spans.model')), off = spanKernels(compileEmuVariant(SPEC, 'spans.model', { spanStores: false }));
    expect(on.spans).toEqual(['k1_conv_fwd_fused', 'k4_conv_dgrad_fused', 'k4_conv_fwd_fused', 'k7_conv_dgrad_fused', 'k7_conv_fwd_fused']);
    expect(off.spans).toEqual([]);
    for (const name of on.spans) {
      const body = on.kernels.get(name)!.body.join('\n');
      expect(body, name).toMatch(/nincc::st\(reinterpret_cast<int4\*>\(&(y|dx)\[/);
      expect(body, name).not.toMatch(/for \(int c8 = 0; c8 < 8; \+\+c8\)/);
      expect(off.kernels.get(name)!.body.join('\n'), name).toMatch(/for \(int c8 = 0; c8 < 8; \+\+c8\) \{  \/\/ one channel a store/);
    }
    for (const [name, k] of on.kernels) expect(k.tile, name).toBe(off.kernels.get(name)!.tile);
  });

  it('a plane of 7×7 (49 positions, odd) takes the spans through sector-phased slots permuted within groups of 8 (their writes priced conflict-free); swizzledSpans: false keeps the per-warp stores', () => {
    const on = spanKernels(compileEmuVariant(SPEC7, 'spans.model')), off = spanKernels(compileEmuVariant(SPEC7, 'spans.model', { swizzledSpans: false }));
    expect(on.spans).toEqual(['k1_conv_fwd_fused', 'k4_conv_dgrad_fused', 'k4_conv_fwd_fused', 'k7_conv_dgrad_fused', 'k7_conv_fwd_fused']);
    expect(off.spans).toEqual([]);
    for (const name of on.spans) expect(on.kernels.get(name)!.body.join('\n'), name).toMatch(/i16 < \d+; .*\n.*i16 \/ 50, slot = i16 % 50;/);
    // The unpermuted layout's writes on 7×7 share banks (i15f's 2-way conflict); the chosen one's do not; 6×6 needs none.
    expect(spanWriteConflicts(49, { slots: 50, xor: 0 }, 4)).toBeGreaterThan(0);
    expect(spanLayout(49, 4, true)).toEqual({ slots: 50, xor: 2 });
    expect(spanWriteConflicts(49, { slots: 50, xor: 2 }, 16)).toBe(0);
    expect(spanLayout(36, 4, true)).toEqual({ slots: 36, xor: 0 });
    expect([36, 49, 64, 196].map((p) => spanLayout(p, 4, false) !== undefined)).toEqual([true, false, false, true]);
  });
});

for (const [plane, spec] of [['6×6', SPEC], ['7×7', SPEC7]] as const) describe.runIf(FULL)(`the span stores on emu, ${plane} planes (NINCC_TEST_FULL=1)`, () => {
  let builds: EmuVariants<keyof typeof VARIANTS> | undefined;
  const VARIANTS = { on: {}, off: { spanStores: false } } as const;
  beforeAll(() => {
    builds = buildEmuVariants(spec, 'spans.model', VARIANTS);
  }, 600_000);
  afterAll(() => builds?.remove());

  it('one training step, three SGD steps and inference: bitwise those of the per-warp staging; the span kernels\' stores at full coalescing, in fewer sectors', async () => {
    const n = 3; // below the grids' maximum of 4
    const side = plane === '6×6' ? 6 : 7;
    const images = uniform(n * INPUT[0] * side * side, -1.5, 1.5, rng(53));
    const labels = Int32Array.from({ length: n }, (_, i) => (i + 1) % CLASSES);
    const [on, off] = await Promise.all([builds!.dirs.on, builds!.dirs.off].map((d) => load(d, { device: 'emu', seed: 19 })));
    try {
      randomizeAffine(on, rng(43)); // non-trivial BN γ and β: the pending transforms and statistics matter
      const grads = await expectSameGradients(on, off, images, labels);
      expect(grads.length).toBe(14); // 3 convs, 3 BNs and the linear, weights and biases
      // One profiled training step each (the same tensors: expectSameGradients copied them), one at a time.
      const step = (m: typeof on) => () => m.forwardBackward(images, labels);
      const pOn = await profiledLaunches(step(on));
      const pOff = await profiledLaunches(step(off));
      for (const name of ['k1_conv_fwd_fused', 'k4_conv_fwd_fused', 'k7_conv_fwd_fused', 'k4_conv_dgrad_fused', 'k7_conv_dgrad_fused']) {
        const [a, b] = [coalescing(pOn.get(name) as never).store, coalescing(pOff.get(name) as never).store];
        expect(a.requestedBytes, name).toBe(b.requestedBytes);
        expect(fullyCoalesced(a), `${name}: ${a.sectors} sectors for ${a.idealSectors}`).toBe(true);
        expect(fullyCoalesced(b), `${name}: ${b.sectors} sectors for ${b.idealSectors}`).toBe(false);
        expect(a.sectors, name).toBeLessThan(b.sectors);
        // The padding rows' writes go to the sink at their would-be banks: no conflict added to the per-warp staging's.
        expect(pOn.get(name)!.shared_bank_conflicts, name).toBe(pOff.get(name)!.shared_bank_conflicts);
      }
      await expectSameSteps(on, off, images, labels, n);
    } finally {
      await Promise.all([on, off].map((m) => m.dispose()));
    }
  }, 1_800_000);
});
