// The few-channels stem's shared band (compiler/backends/cuda/conv-mma-stem-band.ts) against the per-slice gathers it
// replaces (`stemBand: false`). The band holds the values the gathers read, rounded to bf16 once as before, in the
// same k order, shared layout and B staging, so the two builds must agree bitwise: one step's every gradient, three
// SGD steps and inference — with NINCC_TEST_FULL=1. Both builds switch off the space-to-depth form (stemS2d:
// conv-mma-stem-s2d.ts), which takes these stems' forwards by default; the band is then the off path, and the
// forward of a stem the form refuses (the 7×7/2). CI checks without a build: NIN's stem geometry (rows padded to
// whole 128-row blocks, the row pitch that takes no bank conflicts), and which kernels of the padded case take the band. The edge cases: odd planes (3×37×29 → 10×8, 80 positions padded to 96 statistics rows, 128-row blocks
// across images), an RGBA 4×21×18 stem whose band fits only with each image's 32 rows padded to a whole 128-row
// block, a 7×7/2 stem, and a batch of 3 on grids sized for 4.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildArtifact } from '../compiler/build.js';
import { compileModel, compileSpec, type Compiled } from '../compiler/pipeline.js';
import { stemBand } from '../compiler/backends/cuda/conv-mma-stem-band.js';
import { stemConflicts } from '../compiler/backends/cuda/conv-mma-stem-banks.js';
import { bandWith, leastPitch } from '../compiler/backends/cuda/conv-mma-stem-geometry.js';
import { load } from '../runtime/model.js';
import { randomizeAffine, rng, uniform } from './reference/artifacts.js';
import { withEnv } from './reference/env.js';
import { expectSameGradients, expectSameSteps } from './reference/same-training.js';

const CLASSES = 3;
/** Each case: its spec, input, and the words its stem kernels' report must hold. */
const CASES = [
  {
    name: 'stem_odd',
    input: [3, 37, 29],
    spec: `model stem_odd { input 3x37x29  conv(3, 8, 11, 11, 4, 4, 5, 5)  bn(8)  relu  conv(8, 6, 3, 3, 1, 1, 1, 1)  view(-1)  linear(${6 * 10 * 8}, ${CLASSES})  logsoftmax }`,
    padded: false,
  },
  {
    name: 'stem_rgba',
    input: [4, 21, 18],
    spec: `model stem_rgba { input 4x21x18  conv(4, 64, 11, 11, 4, 4, 5, 5)  bn(64)  relu  conv(64, 6, 3, 3, 1, 1, 1, 1)  view(-1)  linear(${6 * 6 * 5}, ${CLASSES})  logsoftmax }`,
    padded: true,
  },
  {
    name: 'stem_7x7',
    input: [3, 23, 19],
    spec: `model stem_7x7 { input 3x23x19  conv(3, 12, 7, 7, 2, 2, 3, 3)  relu  conv(12, 6, 3, 3, 2, 2, 1, 1)  view(-1)  linear(${6 * 6 * 5}, ${CLASSES})  logsoftmax }`,
    padded: false,
  },
] as const;

/** A case's compiled program and cuda kernels, without g++ or nvcc (the CI part). */
function compiled(spec: string, gather: boolean): Compiled {
  const r = compileSpec(spec, 'stem.model', { device: 'emu' });
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return compileModel(r.model, { target: 'emu', maxBatch: 4, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision: 'bf16', ablations: gather ? { stemBand: false, stemS2d: false } : { stemS2d: false } });
}

/** Each bf16 conv forward kernel's report words (tile and fused parts), by kernel name. */
const forwards = (c: Compiled) => new Map((c.cuda?.kernels ?? []).filter((k) => /_conv_(infer|fwd_fused)$/.test(k.name)).map((k) => [k.name, `${k.tile} | ${k.fused}`]));

describe('the stem band (no build)', () => {
  const NIN_STEM = { C: 3, H: 224, W: 224, P: 56, Q: 56, R: 11, S: 11, sh: 4, sw: 4, ph: 5, pw: 5 };
  const TILE = { bm: 128, bn: 96, warpsM: 4, warpsN: 2, nt: 6 }; // the 96-channel stem's tile (conv-mma-tile.ts)

  it('NIN\'s stem at batch 128: rows padded to whole blocks, the least pitch without bank conflicts, the band within static shared memory', () => {
    const band = stemBand(NIN_STEM, TILE, 3136, 128);
    expect(band).toEqual({ rows: 3200, zw: 234, zhw: 234 * 231, window: 4995, bytes: 3 * 4995 * 2 });
    expect(stemConflicts(NIN_STEM, band!, TILE, 128)).toBe(0);
    // The check means something: the least pitch (231) conflicts, and without padding no band fits (blocks across images).
    const least = bandWith(NIN_STEM, TILE, 3200, 128, leastPitch(NIN_STEM), 0);
    expect(least?.zw).toBe(231);
    expect(stemConflicts(NIN_STEM, least!, TILE, 128)).toBe(1568);
    expect(bandWith(NIN_STEM, TILE, 3136, 128, 234, 0)).toBeUndefined();
  });

  // CI compiles the padded case; NINCC_TEST_FULL=1 all three.
  for (const c of CASES.filter((k) => k.padded || process.env.NINCC_TEST_FULL === '1')) {
    it(`${c.name}: the stem's forwards take the band${c.padded ? ' (rows padded to whole blocks)' : ''}, the later convs and the gathering build none`, () => {
      const band = forwards(compiled(c.spec, false)), gather = forwards(compiled(c.spec, true));
      expect(band.size).toBe(4); // inference and training forwards of the two convs
      for (const [kernel, words] of band) {
        if (kernel.startsWith('k1_')) {
          expect(words, kernel).toMatch(/x staged once per block in a shared band of \d channels × \d+ padded positions/);
          expect(words.includes('padded to whole 128-row blocks'), kernel).toBe(c.padded);
        } else expect(words, kernel).not.toMatch(/band/);
      }
      expect(gather.size).toBe(band.size);
      for (const words of gather.values()) expect(words).not.toMatch(/band|blocks/);
    });
  }
});

// The emulated comparison builds two artifacts per case (g++ for each): over CI's budget.
if (process.env.NINCC_TEST_FULL !== '1') console.warn('test/emu-conv-mma-stem.test.ts: the band and gathering builds and their bitwise comparison run with NINCC_TEST_FULL=1; CI checks the geometry and the compiled kernels');
describe.runIf(process.env.NINCC_TEST_FULL === '1')('the stem band on emu, bitwise the gathers (NINCC_TEST_FULL=1)', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'nincc-mma-stem-'));
  });
  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  for (const c of CASES) {
    it(`${c.name}: one step's gradients, three SGD steps and inference are bitwise those of the gathers`, async () => {
      const r = compileSpec(c.spec, `${c.name}.model`);
      if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
      const dirs = { band: join(root, `${c.name}-band`), gather: join(root, `${c.name}-gather`) };
      withEnv({ NINCC_NVCC: '0' }, () => {
        buildArtifact(r.model!, c.spec, { outDir: dirs.band, target: 'emu', maxBatch: 4, precision: 'bf16', ablations: { stemS2d: false } });
        buildArtifact(r.model!, c.spec, { outDir: dirs.gather, target: 'emu', maxBatch: 4, precision: 'bf16', ablations: { stemBand: false, stemS2d: false } });
      });
      const n = 3; // below the grids' maximum of 4
      const next = rng(71);
      const images = uniform(n * c.input[0] * c.input[1] * c.input[2], -1.5, 1.5, next);
      const labels = Int32Array.from({ length: n }, (_, i) => (2 * i + 1) % CLASSES);
      const [band, gather] = await Promise.all([dirs.band, dirs.gather].map((d) => load(d, { device: 'emu', seed: 29 })));
      try {
        randomizeAffine(band, rng(73));
        const grads = await expectSameGradients(band, gather, images, labels);
        expect(grads.length).toBeGreaterThanOrEqual(6); // both convs and the linear, weights and biases: all compared
        // The comparison means something: the stem's weight gradient is not zero.
        expect(band.getGradient('conv1.weight').some((v) => v !== 0)).toBe(true);
        await expectSameSteps(band, gather, images, labels, n); // the stem's forward output feeds every later step; inference's band
      } finally {
        await Promise.all([band, gather].map((m) => m.dispose()));
      }
    }, 300_000);
  }
});
