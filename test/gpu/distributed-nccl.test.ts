// The NCCL reduction path on the cuda device (npm run test:gpu; docs/distributed.md#nccl): one rank is
// enough to exercise it — libnccl.so.2 loaded at run time, a unique id, ncclCommInitRank, and the
// runtime's bucketed pre-multiplied all-reduce in place on the cuda arena, overlapped with backward on
// the communication stream and after it. With one rank the sum is this rank's own weighted gradient, so the result must be bitwise `weight` × the gradient of a plain
// forwardBackward (weight 0.5: exact in float). Skipped, saying why, without a GPU, nvcc or NCCL
// (NINCC_REQUIRE_GPU=1 makes a missing NCCL an error too).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildArtifact } from '../../compiler/build.js';
import type { ShapedModel } from '../../compiler/ir.js';
import { compileSpec } from '../../compiler/pipeline.js';
import { nativeReduce } from '../../runtime/distributed/data-parallel.js';
import { gradientBuckets } from '../../runtime/distributed/shard.js';
import { load } from '../../runtime/model.js';
import { loadNative } from '../../runtime/native.js';
import { randomImages, randomLabels, rng } from '../reference/artifacts.js';
import { NIN_SMALL } from '../reference/specs.js';
import { cudaSkipReason } from './cuda-device.js';

function ncclSkipReason(): string | undefined {
  const cuda = cudaSkipReason('cuda');
  if (cuda) return cuda;
  try {
    loadNative().nccl.version();
    return undefined;
  } catch (e) {
    if (process.env.NINCC_REQUIRE_GPU === '1') throw e;
    return (e as Error).message;
  }
}

const skip = ncclSkipReason();
if (skip) console.warn(`test/gpu/distributed-nccl.test.ts: skipped: ${skip}`);

let root: string | undefined;
let model: ShapedModel | undefined;

beforeAll(() => {
  if (skip) return;
  root = mkdtempSync(join(tmpdir(), 'nincc-nccl-'));
  const r = compileSpec(NIN_SMALL, 'nin_small.model');
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  model = r.model;
  buildArtifact(r.model, NIN_SMALL, { outDir: join(root, 'cuda'), target: 'cuda', maxBatch: 4 });
}, 600_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe.skipIf(Boolean(skip))('NCCL on the cuda device, one rank', () => {
  it('sums the weighted gradient buckets and statistics in place, bitwise weight × a plain forwardBackward', async () => {
    const nccl = loadNative().nccl;
    nccl.init(0, 1, nccl.uniqueId());
    const m = await load(join(root!, 'cuda'), { device: 'cuda', seed: 3 });
    try {
      const next = rng(41);
      const images = randomImages(model!, 3, next);
      const labels = randomLabels(model!, 3, next);
      const grad = m.info.spaces.grad;
      const state = m.info.spaces.state;
      const buckets = gradientBuckets(m.info.params, 1000); // many buckets, boundaries inside tensors' spans
      expect(buckets.length).toBeGreaterThan(2);
      const before = m.readSpace('state', 0, state);
      await m.forwardBackward(images, labels);
      const plainGrad = m.readSpace('grad', 0, grad);
      const plainState = m.readSpace('state', 0, state);
      expect(plainGrad.some((g) => g !== 0)).toBe(true);
      // Overlapped (each bucket queued on the communication stream behind its event) and after backward.
      for (const [weight, overlap] of [[0.5, true], [0.5, false], [1, true], [1, false]] as const) {
        m.writeSpace('state', 0, before);
        await m.forwardBackward(images, labels, { ...nativeReduce(buckets, weight, overlap, 'nccl'), state: true });
        const g = m.readSpace('grad', 0, grad);
        const s = m.readSpace('state', 0, state);
        let mismatches = 0;
        for (let i = 0; i < grad; i++) if (!Object.is(g[i], Math.fround(plainGrad[i] * weight))) mismatches++;
        for (let i = 0; i < state; i++) if (!Object.is(s[i], Math.fround(plainState[i] * weight))) mismatches++;
        expect(mismatches, `weight ${weight}, overlap ${overlap}`).toBe(0);
      }
    } finally {
      await m.dispose();
    }
  });
});
