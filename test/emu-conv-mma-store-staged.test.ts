// The staged bf16 epilogue stores (compiler/backends/cuda/conv-mma-store-staged.ts): a training forward's bf16 y
// and a data gradient's bf16 dX go through the dead operand tiles in shared memory to contiguous runs of
// positions, against the direct stores from the accumulator layout (`stagedStores: false`). Only where each value
// is written from changes: both builds must agree bitwise — every gradient of a training step, three SGD steps,
// inference. The chain: odd 9×11 planes (99 positions, statistics rows padded to 128: a channel-major halo forward,
// a tap-major halo data gradient staging in its halo) and 8×8 ones (a 64-row warp twin forward, a 1×1 conv, an
// 8-warp 1×1 data gradient, a strided 3×3 one),
// a batch of 3 on grids sized for 4 (a partial row tile). The 8×8 planes' blocks hold whole images, where the
// default stores whole spans of 8 planes instead (conv-mma-store-spans.ts): both builds here turn that off
// (`spanStores: false`), test/emu-conv-mma-store-spans.test.ts compares the spans with these parts. CI checks the compiled kernels and the shared layout's
// bank conflicts (no build, ~2 s); the two emu builds and the comparisons run with NINCC_TEST_FULL=1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileModel, compileSpec, type Compiled } from '../compiler/pipeline.js';
import { STAGED_ROW_WORDS } from '../compiler/backends/cuda/conv-mma-store-staged.js';
import { stagedConflicts } from '../compiler/backends/cuda/conv-mma-store-banks.js';
import { load } from '../runtime/model.js';
import { randomizeAffine, rng, uniform } from './reference/artifacts.js';
import { buildEmuVariants, type EmuVariants } from './reference/emu-variants.js';
import { expectSameGradients, expectSameSteps } from './reference/same-training.js';

const INPUT = [16, 9, 11] as const;
const CLASSES = 3;
const SPEC = `model staged {
  input ${INPUT.join('x')}
  conv(16, 48, 3, 3, 1, 1, 1, 1)  bn(48)  relu
  conv(48, 128, 4, 2, 1, 1, 0, 0)  bn(128)  relu
  conv(128, 32, 1, 1, 1, 1, 0, 0)  bn(32)  relu
  conv(32, 40, 3, 3, 2, 2, 1, 1)  relu
  view(-1)  linear(640, ${CLASSES})  logsoftmax
}`;

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-store-staged.test.ts: the two emu builds and the bitwise comparison run with NINCC_TEST_FULL=1; CI checks the compiled kernels');

function compiled(staged: boolean): Compiled {
  const r = compileSpec(SPEC, 'staged.model', { device: 'emu' });
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return compileModel(r.model, { target: 'emu', maxBatch: 4, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision: 'bf16', ablations: staged ? { spanStores: false } : { stagedStores: false } });
}

/** Each tensor-core forward and data gradient kernel: its tile text, fused text and source, by name. */
const kernels = (c: Compiled) => new Map((c.cuda?.kernels ?? []).filter((k) => /_conv_(fwd_fused|dgrad_fused)$/.test(k.name)).map((k) => [k.name, k]));

describe('the staged bf16 epilogue stores (compiled, no build)', () => {
  it('the shared piece is bank-conflict-free for the pair writes and the row reads; a padded row is not', () => {
    expect(stagedConflicts(STAGED_ROW_WORDS)).toEqual({ writes: 0, reads: 0 });
    expect(stagedConflicts(8).writes).toBeGreaterThan(0);
    expect(stagedConflicts(8).reads).toBeGreaterThan(0);
  });

  it('every bf16 y and dX is staged, stored one channel a warp instruction; stagedStores: false stores them directly (fp32 y: conv-mma-store-fp32-staged)', () => {
    const on = kernels(compiled(true)), off = kernels(compiled(false));
    const stagedOnes = [...on].filter(([, k]) => /staged in shared memory(, stored| into)/.test(k.fused ?? '')).map(([name]) => name).sort();
    expect(stagedOnes).toEqual(['k10_conv_dgrad_fused', 'k1_conv_fwd_fused', 'k4_conv_dgrad_fused', 'k4_conv_fwd_fused', 'k7_conv_dgrad_fused', 'k7_conv_fwd_fused']);
    for (const [name, k] of off) expect(k.fused ?? '', name).not.toMatch(/staged in shared memory(, stored| into)/);
    const source = (name: string) => on.get(name)!.body.join('\n');
    for (const name of stagedOnes) expect(source(name), name).toMatch(/for \(int c8 = 0; c8 < 8; \+\+c8\) \{  \/\/ one channel a store/);
    expect(source('k4_conv_dgrad_fused')).toMatch(/reinterpret_cast<uint32_t\*>\(&taps_halo\[0\]\)/); // no A tile: the halo
    expect(source('k4_conv_fwd_fused')).toMatch(/reinterpret_cast<uint32_t\*>\(&as\[0\]\)/);
    expect(on.get('k4_conv_fwd_fused')!.tile).toMatch(/ of 64×64/); // a 64-row warp twin
    // The same tiles and grids in both builds.
    for (const [name, k] of on) expect(k.tile, name).toBe(off.get(name)!.tile);
  });
});

describe.runIf(FULL)('the staged bf16 epilogue stores on emu (NINCC_TEST_FULL=1)', () => {
  let builds: EmuVariants<keyof typeof VARIANTS> | undefined;
  const VARIANTS = { on: { spanStores: false }, off: { stagedStores: false } } as const;
  beforeAll(() => {
    builds = buildEmuVariants(SPEC, 'staged.model', VARIANTS);
  }, 600_000);
  afterAll(() => builds?.remove());

  it('one training step, then three SGD steps and inference: bitwise those of the direct stores', async () => {
    const n = 3; // below the grids' maximum of 4
    const images = uniform(n * INPUT[0] * INPUT[1] * INPUT[2], -1.5, 1.5, rng(97));
    const labels = Int32Array.from({ length: n }, (_, i) => (i + 2) % CLASSES);
    const [on, off] = await Promise.all([builds!.dirs.on, builds!.dirs.off].map((d) => load(d, { device: 'emu', seed: 37 })));
    try {
      randomizeAffine(on, rng(101)); // non-trivial BN γ and β: the pending transforms and statistics matter
      const grads = await expectSameGradients(on, off, images, labels);
      expect(grads.length).toBe(16); // 4 convs, 3 BNs and the linear, weights and biases
      for (const t of ['conv1.weight', 'conv4.weight', 'conv7.weight', 'conv10.weight']) expect(on.getGradient(t).some((v) => v !== 0), t).toBe(true);
      await expectSameSteps(on, off, images, labels, n);
    } finally {
      await Promise.all([on, off].map((m) => m.dispose()));
    }
  }, 600_000);
});
