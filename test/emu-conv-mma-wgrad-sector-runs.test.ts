// The weight gradients' operand rows off the sector grid: dY' copied whole images at a time into a shared ring
// (compiler/backends/cuda/conv-mma-wgrad-image-ring.ts, on by default) and x and a plain dY' through per-row windows loaded
// in whole sectors (conv-mma-wgrad-sector-window.ts, opted into by `wgradSectorWindows: true`), against both staged from
// global memory along positions. The windows and the ring hold the raw bf16, and each lane of the staging reads from them
// what its global load read: every gradient, the bias gradients too, must agree bitwise. The spec: 10×15 planes (150
// positions, 300 bytes: rows off the sector grid, slices that run into the next image), a 1×1 of 128 input channels
// (with the windows both operands in them: the ring of 2 × 64 × 150 does not fit beside x's window, nor beside its
// tiles alone) and a 3×3 after it (its dY' in the ring beside its input halo; the grad_rebuild pass gives both plain
// bf16 dY'), a batch of 3 on grids for 4. CI checks the compiled kernels and the layouts (no build, ~5 s); the emu
// builds, the bitwise comparison and a profile (the windows' kernel at full coalescing, no bank conflicts) run with
// NINCC_TEST_FULL=1.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Compiled } from '../compiler/pipeline.js';
import type { Ablations } from '../compiler/ablations.js';
import { chooseImageRing, ringReadConflicts } from '../compiler/backends/cuda/conv-mma-wgrad-image-ring.js';
import { load } from '../runtime/model.js';
import { randomizeAffine, rng, uniform } from './reference/artifacts.js';
import { buildEmuVariants, compileEmuVariant, type EmuVariants } from './reference/emu-variants.js';
import { profileDir } from './reference/wgrad-frag-profile.js';

const INPUT = [16, 10, 15] as const;
const CLASSES = 3;
const SPEC = `model wgrad_runs {
  input ${INPUT[0]}x${INPUT[1]}x${INPUT[2]}
  conv(16, 128, 1, 1, 1, 1, 0, 0)  bn(128)  relu
  conv(128, 64, 1, 1, 1, 1, 0, 0)  bn(64)  relu
  conv(64, 32, 3, 3, 1, 1, 1, 1)  bn(32)  relu
  view(-1)  linear(${32 * INPUT[1] * INPUT[2]}, ${CLASSES})  logsoftmax
}`;
const RING = /copied whole images of the block's \d+ channels at a time into a shared ring/;
const WINDOWS = /x and dY' loaded in whole sectors into per-row shared windows/;
// Every build here without the cp.async ring of slice windows (test/emu-conv-mma-wgrad-async-ring.test.ts), which takes a
// plain dY' on these even planes before the image ring and the windows.
// And with the grad_rebuild passes, which give the 1×1s a plain dY' (by default they rebuild it themselves: rebuildInWgrad).
const NO_ASYNC = { wgradAsyncRing: false, rebuildInWgrad: false } as const;
const WINDOWED = { ...NO_ASYNC, wgradSectorWindows: true } as const; // the windows opted into
const OFF = { ...NO_ASYNC, wgradImageRing: false } as const; // neither: the windows are off by default

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-wgrad-sector-runs.test.ts: the emu builds, the bitwise comparison and the profile run with NINCC_TEST_FULL=1; CI checks the compiled kernels');

const compiled = (text: string, ablations: Ablations = NO_ASYNC) => compileEmuVariant(text, 'wgrad_runs.model', ablations);

const wgrads = (c: Compiled) => new Map((c.cuda?.kernels ?? []).filter((k) => k.name.endsWith('_conv_wgrad_fused')).map((k) => [k.name, k]));

describe('the windows and the ring (layout and compiled kernels, no build)', () => {
  it('a slot pitch of rows·positions whose slice crossing meets a bank conflict is padded to one that meets none', () => {
    // 32 planes of 63: unpadded, the tail of a row in slot 1 and its head in slot 0 share banks.
    expect(ringReadConflicts({ positions: 63, rows: 32, slotPitch: 32 * 63 })).toBeGreaterThan(0);
    const ring = chooseImageRing(63, 32, 0)!;
    expect(ring.slotPitch).toBeGreaterThan(32 * 63);
    expect(ringReadConflicts(ring)).toBe(0);
    // NIN's 7×7 at 128 channels: 6272 is a multiple of 64 elements, conflict-free as it is.
    expect(chooseImageRing(49, 128, 16384)).toEqual({ positions: 49, rows: 128, slotPitch: 6272 });
    expect(chooseImageRing(31, 128, 0)).toBeUndefined(); // a slice could reach three images
    expect(chooseImageRing(196, 128, 16384)).toBeUndefined(); // 100 KB: over the static shared memory
  });

  it('the 3×3 takes the ring; with the windows opted into the 1×1 takes them; with neither both stage from global memory, and only they change', () => {
    const on = wgrads(compiled(SPEC)), windowed = wgrads(compiled(SPEC, WINDOWED)), off = wgrads(compiled(SPEC, OFF));
    expect(on.get('k7_conv_wgrad_fused')!.fused).toMatch(RING);
    expect(on.get('k4_conv_wgrad_fused')!.fused).not.toMatch(/whole sectors|ring/); // the ring does not fit beside its tiles
    expect(windowed.get('k4_conv_wgrad_fused')!.fused).toMatch(WINDOWS);
    expect(windowed.get('k7_conv_wgrad_fused')!.fused).toMatch(RING);
    expect(windowed.get('k1_conv_wgrad_fused')!.fused).not.toMatch(/whole sectors|ring/); // its dY' is rebuilt from a dBN in the staging
    for (const [name, k] of off) expect(k.fused ?? '', name).not.toMatch(/whole sectors|ring/);
    // Without the ring the 3×3's dY' takes a window where the windows are opted into.
    expect(wgrads(compiled(SPEC, { ...WINDOWED, ...OFF })).get('k7_conv_wgrad_fused')!.fused).toMatch(/dY' loaded in whole sectors/);
    const all = (c: Compiled) => new Map((c.cuda?.kernels ?? []).map((k) => [k.name, JSON.stringify(k.body)]));
    const a = all(compiled(SPEC, WINDOWED)), b = all(compiled(SPEC, OFF));
    expect([...a].filter(([name, body]) => body !== b.get(name)).map(([name]) => name).sort()).toEqual(['k4_conv_wgrad_fused', 'k7_conv_wgrad_fused']);
  });

  it("NIN: the 7×7 1×1 weight gradients take the ring for dY'; with the windows opted into, the 14×14 and 7×7 ones take them instead", () => {
    const nin = readFileSync('models/nin.model', 'utf8');
    const taking = (kernels: ReturnType<typeof wgrads>, re: RegExp) => [...kernels].filter(([, k]) => re.test(k.fused ?? '')).map(([name]) => name).sort();
    const on = wgrads(compiled(nin)), windowed = wgrads(compiled(nin, WINDOWED));
    expect(taking(on, RING)).toEqual(['k34_conv_wgrad_fused', 'k37_conv_wgrad_fused']);
    expect(taking(on, /whole sectors/)).toEqual([]);
    expect(taking(windowed, WINDOWS)).toEqual(['k24_conv_wgrad_fused', 'k27_conv_wgrad_fused', 'k34_conv_wgrad_fused', 'k37_conv_wgrad_fused']);
    expect(taking(windowed, RING)).toEqual([]);
  });
});

describe.runIf(FULL)('the windows and the ring on emu (NINCC_TEST_FULL=1)', () => {
  let builds: EmuVariants<keyof typeof VARIANTS> | undefined;
  let dirs: EmuVariants<keyof typeof VARIANTS>['dirs'];
  const VARIANTS = { runs: WINDOWED, global: OFF } as const;
  beforeAll(() => {
    builds = buildEmuVariants(SPEC, 'wgrad_runs.model', VARIANTS);
    dirs = builds.dirs;
  }, 600_000);
  afterAll(() => builds?.remove());

  it('one training step: every gradient, the biases too, bitwise that of both operands staged from global memory', async () => {
    const n = 3; // below the grids' maximum of 4: a split's last slice and image cut short
    const images = uniform(n * INPUT[0] * INPUT[1] * INPUT[2], -1.5, 1.5, rng(211));
    const labels = Int32Array.from({ length: n }, (_, i) => (i + 1) % CLASSES);
    const [runs, global] = await Promise.all([dirs.runs, dirs.global].map((d) => load(d, { device: 'emu', seed: 43 })));
    try {
      randomizeAffine(runs, rng(223));
      for (const t of runs.tensorNames()) global.setTensor(t, runs.getTensor(t));
      await Promise.all([runs, global].map((m) => m.forwardBackward(images, labels)));
      const grads = runs.info.params.map((t) => t.name);
      expect(grads.length).toBe(14); // 3 convs, 3 BNs and the linear, weights and biases
      for (const t of grads) expect(Array.from(runs.getGradient(t)), t).toEqual(Array.from(global.getGradient(t)));
      for (const t of ['conv4.weight', 'conv4.bias', 'conv7.weight', 'conv7.bias']) expect(runs.getGradient(t).some((v) => v !== 0), t).toBe(true);
    } finally {
      await Promise.all([runs, global].map((m) => m.dispose()));
    }
  }, 600_000);

  it("the profile at batch 4: the windows' kernel loads the fewest sectors its bytes need but at the plane and split edges, and neither meets a bank conflict", () => {
    const kernels = profileDir(dirs.runs, 4); // the windowed build
    for (const name of ['k4_conv_wgrad_fused', 'k7_conv_wgrad_fused']) {
      const c = kernels.find((k) => k.kernel === name)!.counts;
      expect(c.global_load_sectors, name).toBeGreaterThan(0);
      expect(c.shared_bank_conflicts, name).toBe(0);
    }
    const w = kernels.find((k) => k.kernel === 'k4_conv_wgrad_fused')!.counts;
    expect(w.global_load_sectors / w.global_load_ideal_sectors).toBeLessThan(1.05);
  }, 600_000);
});
