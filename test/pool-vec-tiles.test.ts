// The tiled pooling forward (compiler/backends/cuda/pool-vec-tiles.ts): CI checks how layers split into
// segments (whole planes, or bands of rows whose tiles hold every window of their outputs); with
// NINCC_TEST_FULL=1 a spec whose first pool takes bands and whose second takes a partial multi-plane
// segment trains on emu against cpu, and repeats bitwise under another block order.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildArtifact } from '../compiler/build.js';
import { compileSpec } from '../compiler/pipeline.js';
import { POOL_TILE_FLOATS, poolSegments } from '../compiler/backends/cuda/pool-vec-tiles.js';
import { POOL_BWD_TILE_OUTPUTS, poolBackwardSegments } from '../compiler/backends/cuda/pool-vec-backward.js';
import { load } from '../runtime/model.js';
import { expectClose, expectGradientsClose, poisonArena, randomImages, randomizeAffine, randomLabels, rng } from './reference/artifacts.js';
import { withEnv } from './reference/env.js';

/** A pool's consts as lower/ops.ts gives them (K unused by pools). */
const pool = (C: number, H: number, W: number, P: number, Q: number, k: number, s: number, pad: number, ceil = false) => ({ C, H, W, K: C, P, Q, R: k, S: k, sh: s, sw: s, ph: pad, pw: pad, ceil, inBn: false, inRelu: false, outStats: false, outRelu: false });

describe('how a pool input splits into tiles', () => {
  it("NIN's pools at 224×224 take whole planes: one 54×54 plane, 27×27 → 1 plane, 13×13 → 24 planes, the 6×6 average pool 113", () => {
    expect(poolSegments(pool(96, 54, 54, 27, 27, 3, 2, 1))).toMatchObject({ wholePlanes: true, planes: 1, count: 96, tileFloats: 2916 });
    expect(poolSegments(pool(256, 27, 27, 13, 13, 3, 2, 0))).toMatchObject({ wholePlanes: true, planes: 5, count: 52 });
    expect(poolSegments(pool(384, 13, 13, 6, 6, 3, 2, 0))).toMatchObject({ wholePlanes: true, planes: 24, count: 16 });
    expect(poolSegments(pool(1000, 6, 6, 1, 1, 6, 1, 0))).toMatchObject({ wholePlanes: true, planes: 113, count: 9 });
  });

  for (const [what, c] of [
    ['a 100×99 plane, 3×3/2 pad 1 in ceil mode', pool(3, 100, 99, 51, 50, 3, 2, 1, true)],
    ['a 112×112 plane, 3×3/2 pad 1', pool(64, 112, 112, 56, 56, 3, 2, 1)],
    ['a 230×230 plane, 7×7/1', pool(3, 230, 230, 224, 224, 7, 1, 0)],
  ] as const) {
    it(`${what}: bands whose tiles fit and hold every row their outputs' windows read`, () => {
      const seg = poolSegments(c);
      expect(seg.wholePlanes).toBe(false);
      expect(seg.tileFloats).toBeLessThanOrEqual(POOL_TILE_FLOATS);
      expect(seg.bands * seg.bandRows).toBeGreaterThanOrEqual(c.P);
      expect((seg.bands - 1) * seg.bandRows).toBeLessThan(c.P); // no empty band
      for (let band = 0; band < seg.bands; band++) {
        const p0 = band * seg.bandRows;
        const rows = Math.min(seg.bandRows, c.P - p0);
        // The kernel's r0/r1 for this band.
        const r0 = Math.max(p0 * c.sh - c.ph, 0);
        const r1 = Math.min((p0 + rows - 1) * c.sh - c.ph + c.R, c.H);
        expect((r1 - r0) * c.W).toBeLessThanOrEqual(seg.tileFloats);
        for (let p = p0; p < p0 + rows; p++) {
          expect(Math.max(p * c.sh - c.ph, 0)).toBeGreaterThanOrEqual(r0);
          expect(Math.min(p * c.sh - c.ph + c.R, c.H)).toBeLessThanOrEqual(r1);
        }
      }
    });
  }
});

describe("how a pool backward splits a plane's 32-position tiles into staged segments", () => {
  it("NIN's first pool: the whole 54×54 plane (92 tiles) stages its 27×27 outputs", () => {
    expect(poolBackwardSegments(pool(96, 54, 54, 27, 27, 3, 2, 1))).toEqual({ tiles: 92, perPlane: 1, stageOutputs: 729 });
  });

  for (const [what, c] of [
    ['a 100×99 plane, 3×3/2 pad 1 in ceil mode (51×50 outputs)', pool(3, 100, 99, 51, 50, 3, 2, 1, true)],
    ['a 112×112 plane, 3×3/2 pad 1', pool(64, 112, 112, 56, 56, 3, 2, 1)],
    ['a 9×7 plane in floor mode, 2×2/2 (the last row in no window)', pool(3, 9, 7, 4, 3, 2, 2, 0)],
  ] as const) {
    it(`${what}: every segment's stage holds the output rows whose windows hold its positions`, () => {
      const seg = poolBackwardSegments(c);
      const HW = c.H * c.W;
      const planeTiles = Math.ceil(HW / 32);
      expect(seg.stageOutputs).toBeLessThanOrEqual(POOL_BWD_TILE_OUTPUTS);
      expect(seg.perPlane * seg.tiles).toBeGreaterThanOrEqual(planeTiles);
      for (let s = 0; s < seg.perPlane; s++) {
        // The window rows of every position, by brute force over the outputs.
        let lo = Infinity, hi = -Infinity;
        for (let j = s * seg.tiles * 32; j < Math.min((s + 1) * seg.tiles * 32, HW); j++) {
          const h = Math.floor(j / c.W);
          for (let p = 0; p < c.P; p++) if (p * c.sh - c.ph <= h && h < p * c.sh - c.ph + c.R) [lo, hi] = [Math.min(lo, p), Math.max(hi, p)];
        }
        if (hi >= lo) expect((hi - lo + 1) * c.Q).toBeLessThanOrEqual(seg.stageOutputs);
      }
    });
  }
});

/**
 * maxpool 3/2/1 ceil on a 100×99 plane (9900 floats: forward in 3 bands of 17 output rows; its 51×50 outputs
 * over the backward's stage: 2 segments of 155 tiles), a pending BN+ReLU applied on load; an average pool
 * with a pending BN (its backward writes that BN's partials), one 51×50 plane per segment; then a 2×2 max
 * pool over 7 planes of 26×26, 6 per segment: the second segment has 1.
 */
const POOL_TILES = `
model pool_tiles {
  input 1x100x99
  conv(1, 3, 3, 3, 1, 1, 1, 1)  bn(3)  relu  maxpool(3, 3, 2, 2, 1, 1):ceil()   # 3x51x50
  conv(3, 5, 1, 1)  bn(5)  avgpool(3, 3, 2, 2, 1, 1):ceil()                     # 5x26x26
  conv(5, 7, 1, 1)  bn(7)  relu  maxpool(2, 2, 2, 2):ceil()                     # 7x13x13
  view(-1)  linear(1183, 4)  logsoftmax
}
`;

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/pool-vec-tiles.test.ts: the banded pool spec trains on emu against cpu with NINCC_TEST_FULL=1 (about 60 s of builds); CI checks the segment arithmetic');

describe.runIf(FULL)('banded and multi-plane pool tiles on emu (NINCC_TEST_FULL=1)', () => {
  const root = mkdtempSync(join(tmpdir(), 'nincc-pool-tiles-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('forward+backward at batch 3 matches cpu (output, loss, every gradient, running statistics) and repeats bitwise', async () => {
    const r = compileSpec(POOL_TILES, 'pool_tiles.model');
    expect(r.diagnostics).toEqual([]);
    // NINCC_EMU_CHECKS: the emu build bounds-checks every shared-memory index (the tiles and stages).
    const dirs = withEnv({ NINCC_NVCC: '0', NINCC_EMU_CHECKS: '1' }, () =>
      (['emu', 'cpu'] as const).map((target) => {
        const dir = join(root, target);
        buildArtifact(r.model!, POOL_TILES, { outDir: dir, target, maxBatch: 4 });
        return dir;
      }),
    );
    const cpu = await load(dirs[1], { device: 'cpu', seed: 5 });
    const next = rng(17);
    randomizeAffine(cpu, next);
    const images = randomImages(r.model!, 3, next);
    const labels = randomLabels(r.model!, 3, next);
    // The weights and running statistics before the cpu's step (which updates the running statistics).
    const initial = new Map(cpu.tensorNames().map((t) => [t, cpu.getTensor(t)]));
    poisonArena(cpu, Number.NaN);
    const a = await cpu.forwardBackward(images, labels);
    const runs: { loss: number; grads: Float32Array[] }[] = [];
    for (const order of ['forward', 'reverse']) {
      await withEnv({ NINCC_EMU_ORDER: order }, async () => {
        const emu = await load(dirs[0], { device: 'emu', seed: 5 });
        try {
          for (const [t, v] of initial) emu.setTensor(t, v);
          poisonArena(emu, Number.NaN);
          const b = await emu.forwardBackward(images, labels);
          expect(Math.abs(b.loss - a.loss), `emu loss ${b.loss}, cpu ${a.loss}`).toBeLessThanOrEqual(2e-5 * (1 + Math.abs(a.loss)));
          expectClose(b.output, a.output, 2e-5, 'output');
          expectGradientsClose(emu, cpu, 1e-4, 'pool_tiles');
          for (const t of cpu.tensorNames()) expectClose(emu.getTensor(t), cpu.getTensor(t), 2e-5, `running statistics: ${t}`);
          runs.push({ loss: b.loss, grads: emu.info.params.map((t) => emu.getGradient(t.name)) });
        } finally {
          emu.dispose();
        }
      });
    }
    cpu.dispose();
    expect(Object.is(runs[0].loss, runs[1].loss)).toBe(true);
    const bytes = (g: Float32Array) => Buffer.from(g.buffer, g.byteOffset, g.byteLength);
    runs[0].grads.forEach((g, i) => expect(bytes(runs[1].grads[i]).equals(bytes(g)), `gradient ${i}`).toBe(true));
  }, 400_000);
});
