// The pooling forwards' input staged and outputs stored from the sector holding each segment's first element (compiler/backends/cuda/
// pool-vec-tiles.ts, switch poolSectorRuns), against the loop from the segment's first output (`poolSectorRuns:
// false`), whose warps straddle one more sector wherever a segment's run starts inside one. Only which lane stores which
// output changes: both builds must agree bitwise (a training step, three SGD steps, inference), and the emulator's
// profile must show the same bytes in fewer sectors where a segment's run starts inside a sector. A max
// pool of 24 planes of 14×14 (segments of 20 planes: the second starts 980 outputs in) and an average pool of 20
// 7×7 planes (one segment an image, image 1 starting 20 outputs in), batch 3 on grids for 4.
// CI checks the compiled kernels (no build, ~2 s); the emu builds run with NINCC_TEST_FULL=1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { coalescing } from '../runtime/profile/profile-coalescing.js';
import { buildEmuVariants, compileEmuVariant, type EmuVariants } from './reference/emu-variants.js';
import { sameStepsProfiledInference } from './reference/same-training.js';

const INPUT = [3, 14, 14] as const;
const CLASSES = 3;
const SPEC = `model poolsectors {
  input ${INPUT.join('x')}
  conv(3, 24, 3, 3, 1, 1, 1, 1)  bn(24)  relu
  maxpool(3, 3, 2, 2, 1, 1)
  conv(24, 20, 1, 1, 1, 1, 0, 0)  bn(20)  relu
  avgpool(7, 7, 1, 1)  view(-1)  linear(20, ${CLASSES})  logsoftmax
}`;

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-pool-sector-stores.test.ts: the emu builds, the bitwise comparison and the profiled stores run with NINCC_TEST_FULL=1; CI checks the compiled kernels');

const VARIANTS = { on: {}, off: { poolSectorRuns: false } } as const;
const POOLS = ['k4_maxpool_fwd_fused', 'k4_maxpool_fwd_infer', 'k8_avgpool_fwd', 'k8_avgpool_fwd_fused'];

describe('the pools\' sector-aligned stores (compiled, no build)', () => {
  it('every pooling forward starts its output loop at the sector holding the segment\'s first output; poolSectorRuns: false at that output', () => {
    const kernels = (v: keyof typeof VARIANTS) => new Map((compileEmuVariant(SPEC, 'poolsectors.model', VARIANTS[v]).cuda?.kernels ?? []).map((k) => [k.name, k.body.join('\n')]));
    const on = kernels('on'), off = kernels('off');
    expect([...on.keys()].filter((k) => /pool_fwd/.test(k)).sort()).toEqual(POOLS);
    for (const name of POOLS) {
      expect(on.get(name), name).toMatch(/o_warp = t \/ 32 \* 32 - int\(seg_base % (8|16)\)/);
      expect(off.get(name), name).toMatch(/for \(int o = t; o < planes \* rows_out/);
    }
    // A bf16 pooled output (the training max pool read by a conv) aligns to 16 outputs a sector, fp32 to 8.
    expect(on.get('k4_maxpool_fwd_fused')).toContain('seg_base % 16');
    expect(on.get('k4_maxpool_fwd_infer')).toContain('seg_base % 8');
  });
});

describe.runIf(FULL)('the pools\' sector-aligned stores on emu (NINCC_TEST_FULL=1)', () => {
  let builds: EmuVariants<keyof typeof VARIANTS> | undefined;
  beforeAll(() => {
    builds = buildEmuVariants(SPEC, 'poolsectors.model', VARIANTS);
  }, 600_000);
  afterAll(() => builds?.remove());

  it('one training step, three SGD steps and inference: bitwise; the same bytes in fewer sectors', async () => {
    const { on: pOn, off: pOff } = await sameStepsProfiledInference(builds!.dirs, INPUT, CLASSES); // batch 3, below the grids' 4
    // The max pool's outputs (a second segment 980 outputs in) and the average pool's input (an image's 20 planes of
    // 49, 980 floats, image 1 starting inside a sector); the average pool's 20 outputs an image stay as they are (a
    // run of 20 inside the block's own sectors either way).
    for (const [name, d] of [['k4_maxpool_fwd_infer', 'store'], ['k8_avgpool_fwd', 'load']] as const) {
      const [a, b] = [coalescing(pOn.get(name)! as never)[d], coalescing(pOff.get(name)! as never)[d]];
      console.log(`${name}: ${d} sectors ${b.sectors} (ideal ${b.idealSectors}) → ${a.sectors} (ideal ${a.idealSectors})`);
      expect(a.requestedBytes, name).toBe(b.requestedBytes);
      expect(a.sectors, name).toBeLessThan(b.sectors);
      expect(a.sectors, name).toBe(a.idealSectors); // whole sectors a warp: full coalescing
    }
  }, 900_000);
});
