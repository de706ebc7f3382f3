// The pool backwards that finalize their BN's gradients (compiler/backends/cuda/conv-mma-last-cta-bn-bwd-finalize.ts:
// the last block to write each channel's Σdz, Σdz·x̂ partials, by an integer ticket after a fence) against the
// bn_bwd_finalize launch they replace (`bnBwdLastBlock: false`). The order of the sum is the same, so the two builds
// must agree bitwise: every gradient of a step and the weights after two SGD steps (the tickets must be 0 again
// after each launch), in several emu schedules; a step cut short inside a pool backward must not spoil the next
// (plan.json `tickets`). Edge cases: a batch of 3 on grids sized for 4, a max pool whose 20 channels span two
// blocks (16 segments a block), an average pool whose 6 channels share one block. CI checks the compiled programs
// (no build); the emu builds and the bitwise comparisons run with NINCC_TEST_FULL=1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Compiled } from '../compiler/pipeline.js';
import { load } from '../runtime/model.js';
import { randomizeAffine, rng, uniform } from './reference/artifacts.js';
import { buildEmuVariants, compileEmuVariant, type EmuVariants } from './reference/emu-variants.js';
import { withEnv } from './reference/env.js';

const INPUT = [3, 8, 8] as const;
const CLASSES = 3;
const SPEC = `model bn_bwd_fold {
  input ${INPUT.join('x')}
  conv(3, 20, 3, 3, 1, 1, 1, 1)  bn(20)  relu
  maxpool(2, 2, 2, 2)
  conv(20, 6, 3, 3, 1, 1, 1, 1)  bn(6)  relu
  avgpool(2, 2, 2, 2)
  view(-1)  linear(${6 * 2 * 2}, ${CLASSES})  logsoftmax
}`;

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-last-cta-bn-bwd-finalize.test.ts: the two emu builds and the bitwise comparisons run with NINCC_TEST_FULL=1; CI checks the compiled programs');

const compiled = (precision: 'bf16' | 'fp32', launch: boolean): Compiled =>
  compileEmuVariant(SPEC, 'bn_bwd_fold.model', launch ? { bnBwdLastBlock: false } : {}, precision);

/** The training program's kernels in order. */
const trainKernels = (c: Compiled) => c.lowered.programs.find((p) => p.name === 'train_forward_backward')!.steps.map((s) => s.kernel);

describe('pool backwards that finalize their BN (compiled, no build)', () => {
  it('bf16 and fp32: no bn_bwd_finalize for the BNs before the pools, each pool backward takes the tickets and writes dγ, dβ; bnBwdLastBlock: false keeps the launches', () => {
    for (const precision of ['bf16', 'fp32'] as const) {
      const folded = compiled(precision, false);
      expect(trainKernels(folded).filter((k) => k.includes('bwd_finalize') || k.includes('pool_bwd')), precision).toEqual(['k8_avgpool_bwd_fused', 'k4_maxpool_bwd_fused']);
      for (const k of ['k8_avgpool_bwd_fused', 'k4_maxpool_bwd_fused']) {
        expect(folded.cuda!.source.fused.get(k)).toContain('bn_bwd_finalize folded in');
        const body = folded.cuda!.source.text.split(` ${k}(`)[1].split('NINCC_EXPORT')[0];
        expect(body).toContain('float* dgamma');
        expect(body).toContain('atomicInc(reinterpret_cast<unsigned*>(tickets) + ch, last) == last');
      }
      const tickets = folded.lowered.memory.buffers.filter((b) => b.id.endsWith('bn.bwd.tickets'));
      expect(tickets.map((b) => [b.space, b.size])).toEqual([['fixed', 20]]);
      expect(folded.plan.tickets).toContainEqual({ space: 'fixed', offset: tickets[0].offset, size: 20, dtype: 'f32' });
      expect(trainKernels(compiled(precision, true)).filter((k) => k.includes('bwd_finalize') || k.includes('pool_bwd'))).toEqual(['k8_avgpool_bwd_fused', 'k6_bn_bwd_finalize', 'k4_maxpool_bwd_fused', 'k2_bn_bwd_finalize']);
    }
  });
});

/** The emu schedules of i15F's and i15J's FULL runs (docs/emu.md), read per launch: the blocks' order, the workers, the threads' order. */
const SCHEDULES: readonly Record<string, string>[] = [
  { NINCC_EMU_ORDER: 'forward', NINCC_EMU_WORKERS: '1' },
  { NINCC_EMU_ORDER: 'reverse', NINCC_EMU_WORKERS: '4' },
  { NINCC_EMU_ORDER: 'shuffled:5', NINCC_EMU_WORKERS: '3', NINCC_EMU_REVERSE_THREADS: '1' },
  { NINCC_EMU_ORDER: 'shuffled:11', NINCC_EMU_WORKERS: '8' },
];

describe.runIf(FULL)('pool backwards that finalize their BN on emu (NINCC_TEST_FULL=1)', () => {
  const VARIANTS = { folded: {}, launch: { bnBwdLastBlock: false } } as const;
  let builds: EmuVariants<keyof typeof VARIANTS> | undefined;
  beforeAll(() => {
    builds = buildEmuVariants(SPEC, 'bn_bwd_fold.model', VARIANTS);
  }, 600_000);
  afterAll(() => builds?.remove());

  for (const schedule of SCHEDULES) {
    it(`a step's gradients, then the weights after two SGD steps, bitwise those of the bn_bwd_finalize build (${Object.values(schedule).join(' ')})`, async () => {
      const n = 3; // below the grids' maximum of 4
      const images = uniform(n * INPUT[0] * INPUT[1] * INPUT[2], -1.5, 1.5, rng(101));
      const labels = Int32Array.from({ length: n }, (_, i) => (i + 1) % CLASSES);
      await withEnv(schedule, async () => {
        const [folded, launch] = await Promise.all([builds!.dirs.folded, builds!.dirs.launch].map((d) => load(d, { device: 'emu', seed: 41 })));
        try {
          randomizeAffine(folded, rng(103));
          for (const t of folded.tensorNames()) launch.setTensor(t, folded.getTensor(t));
          await Promise.all([folded, launch].map((m) => m.forwardBackward(images, labels)));
          const grads = folded.info.params.map((t) => t.name);
          for (const t of grads) expect(Array.from(folded.getGradient(t)), t).toEqual(Array.from(launch.getGradient(t)));
          for (const t of ['bn2.weight', 'bn2.bias', 'bn6.weight', 'bn6.bias']) expect(folded.getGradient(t).some((v) => v !== 0), t).toBe(true);
          for (let step = 0; step < 2; ++step) {
            await Promise.all([folded, launch].map((m) => m.trainStep(images, labels, { lr: 0.05, momentum: 0.9 })));
            for (const t of folded.tensorNames()) expect(Array.from(folded.getTensor(t)), `${t} after step ${step + 1}`).toEqual(Array.from(launch.getTensor(t)));
          }
        } finally {
          await Promise.all([folded, launch].map((m) => m.dispose()));
        }
      });
    }, 600_000);
  }

  it('a step cut short inside a pool backward leaves no stale ticket: the next step is bitwise that of the bn_bwd_finalize build', async () => {
    // The max pool's backward runs one block and fails in both builds; the folded build's block has taken its
    // channels' tickets, which the runtime must zero before the next run (plan.json `tickets`).
    const n = 4;
    const images = uniform(n * INPUT[0] * INPUT[1] * INPUT[2], -1.5, 1.5, rng(107));
    const labels = Int32Array.from({ length: n }, (_, i) => i % CLASSES);
    const [folded, launch] = await Promise.all([builds!.dirs.folded, builds!.dirs.launch].map((d) => load(d, { device: 'emu', seed: 43 })));
    try {
      randomizeAffine(folded, rng(109));
      for (const t of folded.tensorNames()) launch.setTensor(t, folded.getTensor(t));
      await withEnv({ NINCC_EMU_CUT_SHORT: 'k4_maxpool_bwd_fused:1' }, async () => {
        for (const m of [folded, launch]) await expect(m.trainStep(images, labels, { lr: 0.05, momentum: 0.9 })).rejects.toThrow('k4_maxpool_bwd_fused`: cut short after 1 block(s)');
      });
      for (let step = 0; step < 2; ++step) {
        await Promise.all([folded, launch].map((m) => m.trainStep(images, labels, { lr: 0.05, momentum: 0.9 })));
        for (const t of folded.tensorNames()) expect(Array.from(folded.getTensor(t)), `${t} after good step ${step + 1}`).toEqual(Array.from(launch.getTensor(t)));
      }
    } finally {
      await Promise.all([folded, launch].map((m) => m.dispose()));
    }
  }, 600_000);
});
